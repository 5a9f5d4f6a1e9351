package section203_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var testProviders = []section203.Provider{
	{
		Name: "mistral", Jurisdiction: section203.EU, Models: []string{"large"},
		Endpoints: []section203.Endpoint{
			{URL: "https://api.eu.example.com/v1", Region: "FR"},
			{URL: "https://api.global.example.com/v1", Region: "global"},
		},
		ZDRAttestation: "att-2026-01", Commitment: "§203-NDA-7",
	},
	{
		Name: "cortecs", Jurisdiction: section203.EUControlled, Models: []string{"llama"},
		Endpoints:      []section203.Endpoint{{URL: "https://eu.cortecs.example.com", Region: "eu"}},
		ZDRAttestation: "att-9", Commitment: "§203-NDA-9",
	},
	{
		Name: "bigus", Jurisdiction: section203.NonEU, Models: []string{"gpt"},
		Endpoints:      []section203.Endpoint{{URL: "https://eu.bigus.example.com", Region: "IE"}},
		ZDRAttestation: "att-3", Commitment: "§203-NDA-3",
	},
	{
		Name: "noatt", Jurisdiction: section203.EU, Models: []string{"m"},
		Endpoints:  []section203.Endpoint{{URL: "https://noatt.example.com", Region: "DE"}},
		Commitment: "§203-NDA-4",
	},
	{
		Name: "nocommit", Jurisdiction: section203.EU, Models: []string{"m"},
		Endpoints:      []section203.Endpoint{{URL: "https://nocommit.example.com", Region: "DE"}},
		ZDRAttestation: "att-5",
	},
	{
		Name: "usregion", Jurisdiction: section203.EU, Models: []string{"m"},
		Endpoints:      []section203.Endpoint{{URL: "https://us.eu-provider.example.com", Region: "US"}, {URL: "https://x.eu-provider.example.com", Region: ""}},
		ZDRAttestation: "att-6", Commitment: "§203-NDA-6",
	},
}

var testTools = []section203.Tool{
	{Name: "kb_search", Kind: section203.ToolLocal},
	{Name: "web_search", Kind: section203.ToolWebSearch},
	{Name: "fetch_url", Kind: section203.ToolWebFetch},
	{Name: "gmail", Kind: section203.ToolConnector},
	{Name: "mystery"},
	{Name: "future", Kind: 99},
}

func newGuard(t testing.TB, log audit.Logger) (*section203.Guard, *section203.Modes) {
	t.Helper()
	g, err := section203.New(section203.Config{Logger: log, Providers: testProviders, Tools: testTools, Egress: section203.EgressConfig{Allow: testAllow}})
	if err != nil {
		t.Fatal(err)
	}
	return g, mustModes(t, log, map[string]section203.Mode{"normal": section203.Off, "kanzlei": section203.On})
}

func TestModel(t *testing.T) {
	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	on, off := bound(modes, "kanzlei"), bound(modes, "normal")
	cases := []struct {
		provider, model, endpoint string
		on, off                   bool // allowed in § 203 mode, in normal operation
	}{
		{"mistral", "large", "https://api.eu.example.com/v1", true, true},
		{"mistral", "large", "https://API.EU.EXAMPLE.COM./v1/chat", true, true},
		{"mistral", "large", "https://api.eu.example.com:443/other", true, true},
		{"mistral", "large", "https://api.global.example.com/v1", false, true},
		{"mistral", "small", "https://api.eu.example.com/v1", false, false},
		{"mistral", "large", "https://api.eu.example.com:8443/v1", false, false},
		{"mistral", "large", "http://api.eu.example.com/v1", false, false},
		{"mistral", "large", "https://elsewhere.example.com/v1", false, false},
		{"mistral", "large", "://bad", false, false},
		{"cortecs", "llama", "https://eu.cortecs.example.com", true, true},
		{"bigus", "gpt", "https://eu.bigus.example.com", false, true},
		{"noatt", "m", "https://noatt.example.com", false, true},
		{"nocommit", "m", "https://nocommit.example.com", false, true},
		{"usregion", "m", "https://us.eu-provider.example.com", false, true},
		{"usregion", "m", "https://x.eu-provider.example.com", false, true},
		{"unknown", "m", "https://api.eu.example.com/v1", false, false},
	}
	for _, c := range cases {
		for _, m := range []struct {
			ctx  context.Context
			want bool
		}{{on, c.on}, {off, c.off}} {
			d, err := g.Model(m.ctx, c.provider, c.model, c.endpoint)
			if (err == nil) != m.want || d.Allowed != m.want || d.ID == "" {
				t.Errorf("Model(%s, %s, %s) in mode %v: %+v, %v; want allowed=%v", c.provider, c.model, c.endpoint, section203.ModeFrom(m.ctx), d, err, m.want)
			}
			if err != nil && !errors.Is(err, section203.ErrProvider) {
				t.Errorf("err %v, want ErrProvider", err)
			}
		}
	}
	if _, err := g.Model(context.Background(), "mistral", "large", "https://api.eu.example.com/v1"); !errors.Is(err, section203.ErrRefused) {
		t.Errorf("no tenant: err %v", err)
	}
	if n := len(rec.Events()); n != 2*len(cases)+1 {
		t.Errorf("%d audit events, want %d", n, 2*len(cases)+1)
	}
}

func TestTool(t *testing.T) {
	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	on, off := bound(modes, "kanzlei"), bound(modes, "normal")
	cases := []struct {
		tool    string
		on, off bool
	}{
		{"kb_search", true, true},
		{"web_search", false, true},
		{"fetch_url", false, true},
		{"gmail", false, true},
		{"mystery", false, false},
		{"future", false, false},
		{"not_listed", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		if _, err := g.Tool(on, c.tool); (err == nil) != c.on || (err != nil && !errors.Is(err, section203.ErrTool)) {
			t.Errorf("Tool(%q) in § 203 mode: %v, want allowed=%v", c.tool, err, c.on)
		}
		if _, err := g.Tool(off, c.tool); (err == nil) != c.off {
			t.Errorf("Tool(%q) in normal operation: %v, want allowed=%v", c.tool, err, c.off)
		}
	}
	// An unresolvable mode is § 203 mode.
	if _, err := g.Tool(audit.WithActor(context.Background(), audit.Actor{Subject: "a", Tenant: "normal"}), "web_search"); !errors.Is(err, section203.ErrTool) {
		t.Errorf("unbound ctx: web_search allowed: %v", err)
	}
}

func TestAccess(t *testing.T) {
	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	cases := []struct {
		ctx    context.Context
		scope  section203.Scope
		owner  string
		wantOK bool
	}{
		{bound(modes, "kanzlei"), section203.KnowledgeBase, "kanzlei", true},
		{bound(modes, "kanzlei"), section203.Storage, "kanzlei", true},
		{bound(modes, "kanzlei"), section203.KnowledgeBase, "normal", false},
		{bound(modes, "normal"), section203.KnowledgeBase, "kanzlei", false},
		{bound(modes, "normal"), section203.Storage, "kanzlei", false},
		{bound(modes, "kanzlei"), section203.Storage, "", false},
		{bound(modes, "kanzlei"), "other", "kanzlei", false},
		{context.Background(), section203.Storage, "", false},
	}
	for i, c := range cases {
		_, err := g.Access(c.ctx, c.scope, c.owner, "doc-17")
		if (err == nil) != c.wantOK || (err != nil && !errors.Is(err, section203.ErrCrossTenant)) {
			t.Errorf("case %d: err %v, want ok=%v", i, err, c.wantOK)
		}
	}
}

func TestRetentionAndTraining(t *testing.T) {
	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	cases := []struct {
		ctx       context.Context
		requested time.Duration
		want      time.Duration
		err       error
	}{
		{bound(modes, "kanzlei"), 90 * 24 * time.Hour, 0, nil},
		{bound(modes, "normal"), 90 * 24 * time.Hour, 90 * 24 * time.Hour, nil},
		{bound(modes, "normal"), -time.Hour, 0, nil},
		{bound(modes, "unknown"), time.Hour, 0, nil},
		{context.Background(), time.Hour, 0, section203.ErrNoTenant},
	}
	for i, c := range cases {
		got, _, err := g.ContentRetention(c.ctx, c.requested)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("case %d: %v, %v; want %v, %v", i, got, err, c.want, c.err)
		}
	}
	for _, tenant := range []string{"kanzlei", "normal"} {
		if _, err := g.Training(bound(modes, tenant), "fine-tune"); !errors.Is(err, section203.ErrTraining) {
			t.Errorf("training for %s: %v", tenant, err)
		}
	}
}

// TestAuditFailureDenies checks that a decision that cannot be recorded is
// a refusal, for every guard.
func TestAuditFailureDenies(t *testing.T) {
	g, err := section203.New(section203.Config{Logger: failLogger{}, Providers: testProviders, Tools: testTools, Egress: section203.EgressConfig{Allow: testAllow}})
	if err != nil {
		t.Fatal(err)
	}
	var rec audit.Recorder
	ctx := bound(mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off}), "normal")
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, section203.ErrRefused) || !errors.Is(err, section203.ErrAudit) {
			t.Errorf("%s: err %v, want ErrRefused and ErrAudit", name, err)
		}
	}
	_, err = g.Model(ctx, "mistral", "large", "https://api.eu.example.com/v1")
	check("model", err)
	_, err = g.Tool(ctx, "kb_search")
	check("tool", err)
	_, err = g.Access(ctx, section203.Storage, "normal", "x")
	check("access", err)
	ttl, _, err := g.ContentRetention(ctx, time.Hour)
	check("retention", err)
	if ttl != 0 {
		t.Errorf("retention %v after audit failure, want 0", ttl)
	}
	n := newTestNet(t)
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()
	_, err = get(ctx, client, "https://eu.example.com/", "")
	check("egress", err)
	if len(n.hits()) != 0 {
		t.Errorf("egress reached %v although the decision was not recorded", n.hits())
	}
}

func TestBadConfig(t *testing.T) {
	var rec audit.Recorder
	cases := []section203.Config{
		{Providers: []section203.Provider{{}}},
		{Providers: []section203.Provider{{Name: "a"}, {Name: "a"}}},
		{Providers: []section203.Provider{{Name: "a", Endpoints: []section203.Endpoint{{URL: "ftp://x.example"}}}}},
		{Providers: []section203.Provider{{Name: "a", Endpoints: []section203.Endpoint{{URL: "https://u@x.example"}}}}},
		{Providers: []section203.Provider{{Name: "a", Endpoints: []section203.Endpoint{{URL: "https://2130706433"}}}}},
		{Tools: []section203.Tool{{}}},
		{Tools: []section203.Tool{{Name: "a"}, {Name: "a"}}},
		{Egress: section203.EgressConfig{Allow: []string{"ftp://x.example"}}},
		{Egress: section203.EgressConfig{Allow: []string{"*.example.com"}}},
		{Egress: section203.EgressConfig{Allow: []string{"x.example/path"}}},
		{Egress: section203.EgressConfig{AllowOff: []string{"a@b"}}},
	}
	for i, c := range cases {
		c.Logger = &rec
		if _, err := section203.New(c); !errors.Is(err, section203.ErrInvalidConfig) {
			t.Errorf("case %d: err %v, want ErrInvalidConfig", i, err)
		}
	}
}

// TestBodiesNeverReachTelemetry sends a request and response full of
// secrets through the guard, with an SDK tracer recording, and checks
// that neither the spans nor the audit events carry any of it, while
// they do carry the decision.
func TestBodiesNeverReachTelemetry(t *testing.T) {
	const secret = "MANDANTENGEHEIMNIS-4711"
	n := newTestNet(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	ctx, span := tp.Tracer("test").Start(bound(modes, "kanzlei"), "request")
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://eu.example.com/"+secret+"?q="+secret, strings.NewReader(secret))
	req.Header.Set("X-Note", secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), secret) {
		t.Fatalf("the server did not echo the secret (%q); the test proves nothing", body)
	}
	if _, err := g.Tool(ctx, "web_search"); err == nil {
		t.Fatal("web search allowed")
	}
	span.End()

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	var decisions int
	for _, ev := range spans[0].Events {
		if strings.HasPrefix(ev.Name, "section203.") {
			decisions++
		}
	}
	dump := fmt.Sprintf("%+v", spans)
	if decisions < 3 || !strings.Contains(dump, "section203.decision_id") || !strings.Contains(dump, "eu.example.com") {
		t.Fatalf("decisions missing from the trace: %s", dump)
	}
	if strings.Contains(dump, secret) {
		t.Fatalf("secret in trace: %s", dump)
	}
	events := rec.Events()
	if len(events) < 3 {
		t.Fatalf("%d audit events", len(events))
	}
	for _, e := range events {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("secret in audit event: %s", b)
		}
	}
}

func TestDecisionIDsAreUnique(t *testing.T) {
	var rec audit.Recorder
	g, modes := newGuard(t, &rec)
	ctx := bound(modes, "kanzlei")
	seen := map[string]bool{}
	for range 1000 {
		d, _ := g.Tool(ctx, "kb_search")
		if seen[d.ID] || !strings.HasPrefix(d.ID, "d203-") {
			t.Fatalf("decision id %q repeated or malformed", d.ID)
		}
		seen[d.ID] = true
	}
	g2, _ := newGuard(t, &rec)
	if d, _ := g2.Tool(ctx, "kb_search"); seen[d.ID] {
		t.Fatalf("a second guard repeats decision id %q", d.ID)
	}
}
