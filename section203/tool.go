package section203

import (
	"context"
	"fmt"
)

// ToolKind classifies a tool an assistant may call. The zero ToolKind is
// [ToolUnclassified], which is refused in every mode.
type ToolKind uint8

// The tool kinds.
const (
	ToolUnclassified ToolKind = iota
	// ToolLocal runs inside the tenant's boundary: a lookup in the
	// tenant's own knowledge base, a calculator. Allowed in every mode.
	ToolLocal
	// ToolWebSearch queries a search engine. Refused in § 203 mode.
	ToolWebSearch
	// ToolWebFetch retrieves a URL. Refused in § 203 mode.
	ToolWebFetch
	// ToolConnector reaches an external system (mail, CRM, cloud
	// drive). Refused in § 203 mode.
	ToolConnector
)

func (k ToolKind) String() string {
	switch k {
	case ToolLocal:
		return "local"
	case ToolWebSearch:
		return "web_search"
	case ToolWebFetch:
		return "web_fetch"
	case ToolConnector:
		return "connector"
	default:
		return "unclassified"
	}
}

// Tool is one entry of the tool list.
type Tool struct {
	Name string
	Kind ToolKind
}

type toolEntry struct {
	kind     ToolKind
	resource string
}

func compileTools(ts []Tool) (map[string]toolEntry, error) {
	out := make(map[string]toolEntry, len(ts))
	for _, t := range ts {
		if t.Name == "" {
			return nil, fmt.Errorf("%w: tool without name", ErrInvalidConfig)
		}
		if _, dup := out[t.Name]; dup {
			return nil, fmt.Errorf("%w: tool %q listed twice", ErrInvalidConfig, t.Name)
		}
		out[t.Name] = toolEntry{t.Kind, "tool/" + t.Name}
	}
	return out, nil
}

// Tool decides whether the tenant in ctx may call the named tool. The list
// is default-deny: an unknown or unclassified tool is refused in every
// mode. In § 203 mode only [ToolLocal] tools are allowed: web search, web
// fetch and external connectors are refused.
func (g *Guard) Tool(ctx context.Context, name string) (Decision, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.tool", Mode: mode}
	entry, known := g.tools[name]
	kind, resource := entry.kind, entry.resource
	if !known {
		resource = "tool/" + name
	}
	switch {
	case actor.Tenant == "":
		d.Reason = "no tenant"
	case !known:
		d.Reason = "unknown tool"
	case kind == ToolUnclassified || kind > ToolConnector:
		d.Reason = "unclassified tool"
	case kind == ToolLocal:
		d.Allowed, d.Reason = true, "local tool"
	case mode == Off:
		d.Allowed, d.Reason = true, kind.String()+" tool in normal operation"
	default:
		d.Reason = kind.String() + " is off in § 203 mode"
	}
	return g.decide(ctx, actor, d, resource, ErrTool)
}
