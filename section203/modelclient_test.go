package section203_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
)

// registry has an eligible EU provider, an EU provider whose endpoint is
// global, and a non-EU provider; no EgressConfig.Allow entries.
var registry = []section203.Provider{
	{Name: "eu", Jurisdiction: section203.EU, Models: []string{"m"}, ZDRAttestation: "zdr", Commitment: "203",
		Endpoints: []section203.Endpoint{{URL: "https://eu.example.com/v1", Region: "FR"}}},
	{Name: "euglobal", Jurisdiction: section203.EU, Models: []string{"m"}, ZDRAttestation: "zdr", Commitment: "203",
		Endpoints: []section203.Endpoint{{URL: "https://eu2.example.com/v1", Region: "global"}}},
	{Name: "us", Jurisdiction: section203.NonEU, Models: []string{"m"},
		Endpoints: []section203.Endpoint{{URL: "https://us.example.com/v1", Region: "global"}}},
}

func registryGuard(t *testing.T, n *testNet, log audit.Logger) *section203.Guard {
	t.Helper()
	g, err := section203.New(section203.Config{Logger: log, Providers: registry,
		Egress: section203.EgressConfig{Base: n.base(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestEgressDerivedFromProviders: the registry is the allowlist. In § 203
// mode only the eligible EU endpoint is reachable; in normal operation
// every registered endpoint is; nothing else in either mode.
func TestEgressDerivedFromProviders(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off, "kanzlei": section203.On})
	client := registryGuard(t, n, &rec).Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()
	cases := []struct {
		tenant, url string
		ok          bool
	}{
		{"kanzlei", "https://eu.example.com/v1/chat", true},
		{"kanzlei", "https://eu2.example.com/v1/chat", false},
		{"kanzlei", "https://us.example.com/v1/chat", false},
		{"kanzlei", "https://evil.example.com/", false},
		{"normal", "https://eu.example.com/v1/chat", true},
		{"normal", "https://eu2.example.com/v1/chat", true},
		{"normal", "https://us.example.com/v1/chat", true},
		{"normal", "https://evil.example.com/", false},
		{"normal", "http://us.example.com/v1/chat", false}, // another scheme is another origin
	}
	for _, c := range cases {
		n.reset()
		_, err := get(bound(modes, c.tenant), client, c.url, "")
		if (err == nil) != c.ok {
			t.Errorf("%s %s: err %v, want ok=%v", c.tenant, c.url, err, c.ok)
		}
		if !c.ok && (!errors.Is(err, section203.ErrEgress) || len(n.hits()) != 0) {
			t.Errorf("%s %s: refusal %v reached %v", c.tenant, c.url, err, n.hits())
		}
	}
}

// TestModelClient: one call checks the model and returns a client pinned
// to its endpoint. The client's requests are still decided per request,
// for the tenant of the request's ctx.
func TestModelClient(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off, "kanzlei": section203.On})
	g := registryGuard(t, n, &rec)
	kanzlei, normal := bound(modes, "kanzlei"), bound(modes, "normal")

	c, err := g.ModelClient(kanzlei, "eu", "m", "https://eu.example.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if body, err := get(kanzlei, c, "https://eu.example.com/v1/chat", ""); err != nil || body != "eu:" {
		t.Fatalf("model call: %q, %v", body, err)
	}
	// Pinned: another allowlisted origin, or a redirect to one, is refused.
	n.reset()
	for _, u := range []string{"https://eu2.example.com/v1/chat", "https://eu.example.com:8443/v1", "http://eu.example.com/v1",
		"https://eu.example.com/redirect?to=https://eu2.example.com/v1"} {
		if _, err := get(normal, c, u, ""); !errors.Is(err, section203.ErrEgress) {
			t.Errorf("%s through a pinned client: %v, want ErrEgress", u, err)
		}
	}
	if h := n.hits(); h["eu2"] != 0 || h["evil"] != 0 {
		t.Errorf("pinned client reached %v", h)
	}

	// The model check refuses in § 203 mode, with no client.
	for _, p := range []string{"us", "euglobal"} {
		ep := registry[map[string]int{"euglobal": 1, "us": 2}[p]].Endpoints[0].URL
		if c, err := g.ModelClient(kanzlei, p, "m", ep); !errors.Is(err, section203.ErrProvider) || c != nil {
			t.Errorf("%s in § 203 mode: %v, %v; want ErrProvider and no client", p, c, err)
		}
	}
	// A client obtained for a normal tenant does not carry a § 203
	// tenant's request to a non-EU endpoint: the request's ctx decides.
	us, err := g.ModelClient(normal, "us", "m", "https://us.example.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(normal, us, "https://us.example.com/v1/chat", ""); err != nil {
		t.Errorf("normal tenant to its model: %v", err)
	}
	n.reset()
	if _, err := get(kanzlei, us, "https://us.example.com/v1/chat", ""); !errors.Is(err, section203.ErrEgress) || len(n.hits()) != 0 {
		t.Errorf("§ 203 tenant through a normal tenant's client: %v, reached %v", err, n.hits())
	}
	// No tenant: refused.
	if _, err := g.ModelClient(context.Background(), "eu", "m", "https://eu.example.com/v1"); !errors.Is(err, section203.ErrRefused) {
		t.Errorf("no tenant: %v", err)
	}
	// Every refusal above was audited.
	var denies int
	for _, e := range rec.Events() {
		if e.Outcome == audit.OutcomeDeny {
			denies++
		}
	}
	if denies < 8 {
		t.Errorf("%d deny events, want at least 8", denies)
	}
}
