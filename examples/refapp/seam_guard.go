package main

import (
	"context"
	"fmt"

	"github.com/tomkit/tomkit/section203"
)

// The simulated model registry: which provider serves which model, where.
// In § 203 mode only EU or EU-controlled providers with a zero-data-
// retention attestation and a § 203 commitment, at EU endpoints, pass.
var aiProviders = []section203.Provider{
	{
		Name: "mistral", Jurisdiction: section203.EU,
		Models:         []string{"mistral-large-eu"},
		Endpoints:      []section203.Endpoint{{URL: "https://api.mistral.ai/v1", Region: "FR"}},
		ZDRAttestation: "demo-zdr-mistral-2026", Commitment: "demo-203-mistral-2026",
	},
	{
		Name: "openai", Jurisdiction: section203.NonEU,
		Models:    []string{"gpt-4o"},
		Endpoints: []section203.Endpoint{{URL: "https://api.openai.com/v1", Region: "global"}},
	},
}

// providerOf finds the provider and endpoint of a model.
func providerOf(model string) (provider, endpoint string) {
	for _, p := range aiProviders {
		for _, m := range p.Models {
			if m == model {
				return p.Name, p.Endpoints[0].URL
			}
		}
	}
	return "unknown", "https://unknown.invalid"
}

// sectionGuard is the § 203 guard: section203.Guard with the tenants'
// modes from tenants.json. A tenant missing there is in § 203 mode.
type sectionGuard struct {
	modes *section203.Modes
	guard *section203.Guard
}

func openGuard(_ context.Context, a *app) (aiGuard, error) {
	tm := map[string]section203.Mode{}
	for name, t := range a.tenants {
		tm[name] = section203.Off
		if t.Section203 {
			tm[name] = section203.On
		}
	}
	modes, err := section203.NewModes(section203.ModesConfig{Tenants: tm, Logger: a.audit})
	if err != nil {
		return nil, err
	}
	g, err := section203.New(section203.Config{
		Logger:    a.audit,
		Providers: aiProviders,
		Tools:     []section203.Tool{{Name: "web_search", Kind: section203.ToolWebSearch}},
	})
	if err != nil {
		return nil, err
	}
	return sectionGuard{modes: modes, guard: g}, nil
}

func (g sectionGuard) ModelCall(ctx context.Context, tenant, model string) error {
	provider, endpoint := providerOf(model)
	if _, err := g.guard.Model(g.modes.Bind(ctx), provider, model, endpoint); err != nil {
		return fmt.Errorf("%w: %v", errSection203, err)
	}
	return nil
}

func (g sectionGuard) WebSearch(ctx context.Context, tenant string) error {
	if _, err := g.guard.Tool(g.modes.Bind(ctx), "web_search"); err != nil {
		return fmt.Errorf("%w: %v", errSection203, err)
	}
	return nil
}

const integrationGuard = "section203 (per-tenant mode, model registry, tool list, knowledge-base access of § 203 tenants)"

func (g sectionGuard) KnowledgeBase(ctx context.Context, owner, resource string) error {
	if _, err := g.guard.Access(g.modes.Bind(ctx), section203.KnowledgeBase, owner, resource); err != nil {
		return fmt.Errorf("%w: %v", errSection203, err)
	}
	return nil
}
