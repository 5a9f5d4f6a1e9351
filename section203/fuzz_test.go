package section203_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/idna"

	"github.com/tomkit/tomkit/section203"
)

// FuzzEgressDecision parses arbitrary URLs and checks every allowed one
// against net/http's own view of where it would connect: the host that
// net/http dials (IDNA lookup form of url.Hostname, lower case, without
// trailing dot) must be on the allowlist, with no userinfo.
func FuzzEgressDecision(f *testing.F) {
	for _, s := range []string{
		"https://eu.example.com/", "https://EU.EXAMPLE.COM./x", "https://eu.example.com@evil.example.com/",
		"https://2130706433/", "https://[::1]/", "https://\u0435u.example.com/", "http://plain.example.com/",
		"https://ｅｕ.example.com/", "https://eu.example.com:443/", "https://eu.example.com:0443/", "https://eu.example.com%2e/",
	} {
		f.Add(s, "")
	}
	f.Add("https://eu.example.com/", "evil.example.com")
	g, err := section203.New(section203.Config{Logger: nopLogger{}, Egress: section203.EgressConfig{Allow: testAllow}})
	if err != nil {
		f.Fatal(err)
	}
	ctx := bound(mustModes(f, nopLogger{}, nil), "kanzlei")
	tr := g.Transport(nil)
	allowed := map[string]bool{"eu.example.com": true, "eu2.example.com": true, "plain.example.com": true}
	f.Fuzz(func(t *testing.T, raw, host string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		req := (&http.Request{Method: http.MethodGet, URL: u, Host: host, Header: http.Header{}}).WithContext(ctx)
		err = tr.CheckRedirect(req, nil)
		if err != nil {
			if !errors.Is(err, section203.ErrRefused) {
				t.Fatalf("%q: refusal %v does not match ErrRefused", raw, err)
			}
			return
		}
		if u.User != nil {
			t.Fatalf("%q: allowed with userinfo", raw)
		}
		h := u.Hostname()
		if a, err := idna.Lookup.ToASCII(h); err == nil {
			h = a
		}
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if !allowed[h] {
			t.Fatalf("%q allowed, but net/http would dial %q", raw, h)
		}
	})
}
