package section203_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
	"golang.org/x/net/http/httpproxy"
)

var testAllow = []string{"eu.example.com", "eu2.example.com", "http://plain.example.com"}

func newEgress(t testing.TB, log audit.Logger, cfg section203.EgressConfig) *section203.Guard {
	t.Helper()
	if cfg.Allow == nil {
		cfg.Allow = testAllow
	}
	g, err := section203.New(section203.Config{Logger: log, Egress: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func get(ctx context.Context, c *http.Client, rawURL string, host string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestEgressBypassBattery sends each attack through the guarded client and,
// as a control that proves the attack is real in this setup, through the
// same base transport without the guard.
func TestEgressBypassBattery(t *testing.T) {
	n := newTestNet(t)
	proxyURL, _ := url.Parse("http://proxy.example.com:3128")
	cases := []struct {
		name    string
		url     string
		host    string // Host header override
		allowed string // server that must answer when allowed; "" means refused
		control string // server the unguarded client reaches
	}{
		{"plain allowlisted", "https://eu.example.com/ok", "", "eu", "eu"},
		{"upper case", "https://EU.EXAMPLE.COM/ok", "", "eu", "evil"},
		{"trailing dot", "https://eu.example.com./ok", "", "eu", "evil"},
		{"upper case and trailing dot with port", "https://Eu.Example.Com.:443/ok", "", "eu", "evil"},
		{"full-width letters map to the same name", "https://ｅｕ.example.com/ok", "", "eu", "eu"},
		{"userinfo trick", "https://eu.example.com@evil.example.com/", "", "", "evil"},
		{"userinfo trick with colon", "https://eu.example.com:443@evil.example.com/", "", "", "evil"},
		{"userinfo on an allowlisted host", "https://user:secret@eu.example.com/", "", "", "eu"},
		{"decimal IPv4", "https://2130706433/", "", "", "evil"},
		{"hex IPv4", "https://0x7f000001/", "", "", "evil"},
		{"octal IPv4", "https://0177.0.0.1/", "", "", "evil"},
		{"short IPv4", "https://127.1/", "", "", "evil"},
		{"dotted IPv4", "https://127.0.0.1/", "", "", "evil"},
		{"IPv6 loopback", "https://[::1]/", "", "", "evil"},
		{"IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/", "", "", "evil"},
		{"redirect to non-EU host", "https://eu.example.com/redirect?to=https://us.example.com/x", "", "", "us"},
		{"redirect to userinfo trick", "https://eu.example.com/redirect?to=https://eu.example.com@evil.example.com/", "", "", "evil"},
		{"redirect to decimal IP", "https://eu.example.com/redirect?to=https://2130706433/", "", "", "evil"},
		{"redirect within allowlist", "https://eu.example.com/redirect?to=https://EU2.example.com./y", "", "eu2", "evil"},
		{"redirect loop", "https://eu.example.com/loop", "", "", ""},
		{"IDN look-alike (Cyrillic e)", "https://\u0435u.example.com/", "", "", "lookalike"},
		{"IDN look-alike in punycode", "https://xn--u-itb.example.com/", "", "", "lookalike"},
		{"port not allowlisted", "https://eu.example.com:8443/", "", "", "evil"},
		{"scheme not allowlisted", "http://eu.example.com/", "", "", "evil"},
		{"plain http allowlisted", "http://plain.example.com/ok", "", "plain", "plain"},
		{"Host header names another host", "https://eu.example.com/", "evil.example.com", "", ""},
		{"non-EU host", "https://us.example.com/", "", "", "us"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rec audit.Recorder
			modes := mustModes(t, &rec, nil)
			g := newEgress(t, &rec, section203.EgressConfig{})
			ctx := bound(modes, "kanzlei")

			n.reset()
			client := g.Transport(n.base(nil)).Client()
			defer client.CloseIdleConnections()
			body, err := get(ctx, client, c.url, c.host)
			hits := n.hits()
			if c.allowed != "" {
				if err != nil || !strings.HasPrefix(body, c.allowed+":") {
					t.Fatalf("got %q, %v; want an answer from %s", body, err, c.allowed)
				}
			} else {
				if !errors.Is(err, section203.ErrEgress) || !errors.Is(err, section203.ErrRefused) {
					t.Fatalf("got %q, %v; want ErrEgress", body, err)
				}
				var de *section203.RefusedError
				if !errors.As(err, &de) || de.Decision.ID == "" {
					t.Fatalf("error %v carries no decision", err)
				}
			}
			for name := range hits {
				if name != "eu" && name != "eu2" && name != "plain" {
					t.Fatalf("non-allowlisted server %s reached: %v", name, hits)
				}
			}
			checkEgressAudit(t, rec.Events(), c.allowed != "")

			if c.control == "" {
				return
			}
			n.reset()
			unguarded := &http.Client{Transport: n.base(nil)}
			defer unguarded.CloseIdleConnections()
			_, _ = get(ctx, unguarded, c.url, c.host)
			if n.hits()[c.control] == 0 {
				t.Fatalf("control: the unguarded client did not reach %s (hits %v); the case proves nothing", c.control, n.hits())
			}
		})
	}

	t.Run("HTTPS_PROXY to a non-EU proxy", func(t *testing.T) {
		t.Setenv("HTTPS_PROXY", proxyURL.String())
		t.Setenv("HTTP_PROXY", proxyURL.String())
		t.Setenv("NO_PROXY", "")
		// Like http.ProxyFromEnvironment, but reads the environment on
		// every call, so the t.Setenv above takes effect.
		fromEnv := func(r *http.Request) (*url.URL, error) {
			return httpproxy.FromEnvironment().ProxyFunc()(r.URL)
		}
		var rec audit.Recorder
		g := newEgress(t, &rec, section203.EgressConfig{})
		ctx := bound(mustModes(t, &rec, nil), "kanzlei")

		n.reset()
		unguarded := &http.Client{Transport: n.base(fromEnv)}
		defer unguarded.CloseIdleConnections()
		if _, err := get(ctx, unguarded, "https://eu.example.com/", ""); err == nil {
			t.Log("control request succeeded")
		}
		if n.proxy.hits.Load() == 0 {
			t.Fatalf("control: the unguarded client did not use the proxy (hits %v)", n.hits())
		}

		n.reset()
		client := g.Transport(n.base(fromEnv)).Client()
		defer client.CloseIdleConnections()
		body, err := get(ctx, client, "https://eu.example.com/ok", "")
		if err != nil || !strings.HasPrefix(body, "eu:") {
			t.Fatalf("got %q, %v; want a direct answer from eu", body, err)
		}
		if h := n.hits(); h["proxy"] != 0 || h["eu"] != 1 {
			t.Fatalf("hits %v; want eu only, never the proxy", h)
		}
		// http.ProxyFromEnvironment itself is removed too.
		n.reset()
		client = g.Transport(&http.Transport{DialContext: n.dial, TLSClientConfig: n.base(nil).TLSClientConfig, Proxy: http.ProxyURL(proxyURL)}).Client()
		defer client.CloseIdleConnections()
		if _, err := get(ctx, client, "https://eu.example.com/ok", ""); err != nil || n.hits()["proxy"] != 0 {
			t.Fatalf("with Proxy set: %v, hits %v", err, n.hits())
		}
	})
}

func checkEgressAudit(t *testing.T, events []audit.Event, allowed bool) {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("no audit event")
	}
	ids := map[string]bool{}
	sawDeny := false
	for _, e := range events {
		if !strings.HasPrefix(e.Action, "section203.") {
			t.Fatalf("unexpected action %q", e.Action)
		}
		id := ""
		for _, a := range e.Attributes {
			if a.Key == "decision_id" {
				id = a.Value
			}
		}
		if id == "" || ids[id] {
			t.Fatalf("event %+v: missing or repeated decision id", e)
		}
		ids[id] = true
		if e.Actor.Tenant != "kanzlei" {
			t.Fatalf("event %+v: wrong tenant", e)
		}
		if e.Outcome == audit.OutcomeDeny {
			sawDeny = true
		}
	}
	if sawDeny == allowed {
		t.Fatalf("allowed=%v but deny events=%v: %+v", allowed, sawDeny, events)
	}
}

// TestEgressModes checks that the allowlist follows the tenant's mode and
// that an unresolvable mode is § 203 mode.
func TestEgressModes(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off, "kanzlei": section203.On})
	g := newEgress(t, &rec, section203.EgressConfig{AllowOff: []string{"us.example.com", "eu.example.com"}})
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()

	normal := bound(modes, "normal")
	cases := []struct {
		name string
		ctx  context.Context
		url  string
		ok   bool
	}{
		{"normal tenant, normal allowlist", normal, "https://us.example.com/", true},
		{"normal tenant, § 203 only host", normal, "https://eu2.example.com/", false},
		{"§ 203 tenant", bound(modes, "kanzlei"), "https://us.example.com/", false},
		{"unknown tenant", bound(modes, "nobody-configured-me"), "https://us.example.com/", false},
		{"no binding", audit.WithActor(context.Background(), audit.Actor{Subject: "a", Tenant: "normal"}), "https://us.example.com/", false},
		{"binding for another tenant", audit.WithActor(normal, audit.Actor{Subject: "a", Tenant: "kanzlei"}), "https://us.example.com/", false},
		{"no actor", modes.Bind(context.Background()), "https://eu.example.com/", false},
	}
	for _, c := range cases {
		n.reset()
		_, err := get(c.ctx, client, c.url, "")
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if !c.ok && len(n.hits()) != 0 {
			t.Errorf("%s: refused but reached %v", c.name, n.hits())
		}
	}
}

// TestEgressResolvedAddresses checks the anti-rebinding dialer: only
// resolved addresses inside AllowedCIDRs are dialled.
func TestEgressResolvedAddresses(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	res := fakeResolver{
		"eu.example.com":  {netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("127.0.0.2")},
		"eu2.example.com": {netip.MustParseAddr("169.254.169.254")},
	}
	g := newEgress(t, &rec, section203.EgressConfig{
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolver:     res,
	})
	ctx := bound(mustModes(t, &rec, nil), "kanzlei")
	// At connect time, the name would resolve to the evil server (DNS
	// rebinding): the guard must connect to the address it checked.
	n.routes["eu.example.com:443"] = n.evil.addr()
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()

	body, err := get(ctx, client, "https://eu.example.com/ok", "")
	if err != nil || !strings.HasPrefix(body, "eu:") {
		t.Fatalf("got %q, %v", body, err)
	}
	if h := n.hits(); h["evil"] != 0 || h["eu"] != 1 {
		t.Fatalf("hits %v: dialled an address outside the CIDRs", h)
	}
	n.reset()
	if _, err := get(ctx, client, "https://eu2.example.com/", ""); !errors.Is(err, section203.ErrEgress) {
		t.Fatalf("metadata address: err %v, want ErrEgress", err)
	}
	if len(n.hits()) != 0 {
		t.Fatalf("hits %v", n.hits())
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// TestEgressNeverReachesNonAllowlisted is a property test: random URLs and
// redirect chains, sent in § 203 mode, never open a connection to a server
// outside the allowlist, and every response comes from an allowlisted
// server.
func TestEgressNeverReachesNonAllowlisted(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	g := newEgress(t, &rec, section203.EgressConfig{})
	ctx := bound(mustModes(t, &rec, nil), "kanzlei")
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()

	hosts := []string{"eu.example.com", "EU.example.COM.", "eu2.example.com", "plain.example.com", "evil.example.com",
		"us.example.com", "\u0435u.example.com", "xn--u-itb.example.com", "127.0.0.1", "127.0.0.2", "[::1]", "2130706433",
		"0x7f.1", "eu.example.com@evil.example.com", "proxy.example.com", "eu.example.com.evil.example.com",
		"ｅｕ.example.com", "eu-example.com", "example.com"}
	ports := []string{"", "", ":443", ":80", ":8443", ":3128"}
	schemes := []string{"https", "https", "http"}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	good := []string{"https://eu.example.com", "https://EU.example.COM.", "https://eu2.example.com:443", "http://plain.example.com", "https://ｅｕ.example.com"}
	randOrigin := func() string {
		if r.IntN(2) == 0 {
			return good[r.IntN(len(good))]
		}
		return schemes[r.IntN(len(schemes))] + "://" + hosts[r.IntN(len(hosts))] + ports[r.IntN(len(ports))]
	}
	allowedServer := map[string]bool{"eu": true, "eu2": true, "plain": true}
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	redirected := 0
	for i := range iterations {
		u := randOrigin() + "/p"
		hops := r.IntN(4) // a redirect chain of up to three hops
		for range hops {
			u = randOrigin() + "/redirect?to=" + url.QueryEscape(u)
		}
		body, err := get(ctx, client, u, "")
		if err == nil {
			name, _, _ := strings.Cut(body, ":")
			if !allowedServer[name] {
				t.Fatalf("iteration %d: %s answered by %q", i, u, name)
			}
			if hops > 0 {
				redirected++
			}
		}
		for name := range n.hits() {
			if !allowedServer[name] {
				t.Fatalf("iteration %d: %s reached %s (err %v)", i, u, name, err)
			}
		}
	}
	if len(n.hits()) == 0 || redirected == 0 {
		t.Fatalf("%d followed redirect chains, hits %v: the property is vacuous", redirected, n.hits())
	}
	t.Logf("%d of %d requests answered after redirects", redirected, iterations)
}

// TestEgressDialTLSHook checks that a base transport's own TLS dial hook
// is guarded too, not only DialContext.
func TestEgressDialTLSHook(t *testing.T) {
	n := newTestNet(t)
	var rec audit.Recorder
	g := newEgress(t, &rec, section203.EgressConfig{})
	ctx := bound(mustModes(t, &rec, nil), "kanzlei")
	var tlsDials atomic.Int64
	base := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			tlsDials.Add(1)
			raw, err := n.dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			c := tls.Client(raw, &tls.Config{RootCAs: n.pool, ServerName: host})
			if err := c.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return c, nil
		},
	}
	client := g.Transport(base).Client()
	defer client.CloseIdleConnections()
	if body, err := get(ctx, client, "https://EU.example.com./ok", ""); err != nil || !strings.HasPrefix(body, "eu:") {
		t.Fatalf("got %q, %v", body, err)
	}
	var dialEvents int
	for _, e := range rec.Events() {
		if e.Action == "section203.dial" && e.Outcome == audit.OutcomeAllow && e.Resource == "eu.example.com:443" {
			dialEvents++
		}
	}
	if tlsDials.Load() != 1 || dialEvents != 1 {
		t.Fatalf("TLS dials %d, dial decisions %d; want 1 and 1", tlsDials.Load(), dialEvents)
	}
}

// TestEgressIPLiteralAllowlisted checks that an IP literal passes only
// when it is listed, in any spelling of the same address.
func TestEgressIPLiteralAllowlisted(t *testing.T) {
	n := newTestNet(t)
	n.routes["127.0.0.2:80"] = n.plain.addr()
	n.routes["[2001:db8::7]:80"] = n.plain.addr()
	var rec audit.Recorder
	g := newEgress(t, &rec, section203.EgressConfig{Allow: []string{"http://127.0.0.2", "http://[2001:db8::7]:80"}})
	ctx := bound(mustModes(t, &rec, nil), "kanzlei")
	client := g.Transport(n.base(nil)).Client()
	defer client.CloseIdleConnections()
	cases := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.2/", true},
		{"http://127.0.0.2:80/", true},
		{"http://[::ffff:127.0.0.2]/", true},
		{"http://[2001:db8::7]/", true},
		{"http://[2001:0db8:0:0:0:0:0:7]/", true},
		{"http://[2001:db8::8]/", false},
		{"http://127.0.0.3/", false},
		{"http://2130706434/", false},
		{"http://0x7f000002/", false},
		{"http://127.0.0.2:8080/", false},
		{"https://127.0.0.2/", false},
	}
	for _, c := range cases {
		n.reset()
		body, err := get(ctx, client, c.url, "")
		if c.ok != (err == nil) || (c.ok && !strings.HasPrefix(body, "plain:")) {
			t.Errorf("%s: %q, %v; want ok=%v", c.url, body, err, c.ok)
		}
		if h := n.hits(); !c.ok && len(h) != 0 {
			t.Errorf("%s: refused but reached %v", c.url, h)
		}
	}
}
