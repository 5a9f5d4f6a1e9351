package httpguard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
)

// TestRedirectNeedsNoPrincipal: the mux's path-cleaning redirect is
// answered to a request without valid credentials (it releases only the
// canonical Location), audited as anonymous; any other unauthenticated
// request is still 401, routed or not.
func TestRedirectNeedsNoPrincipal(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, method, path string
		auth               []string
		status             int
		loc                string
	}{
		{"dot-dot", "GET", "/v1/tenants/acme/x/../notes/n1", nil, 307, "/v1/tenants/acme/notes/n1"},
		{"double slash, forged token", "GET", "//healthz", bearer("tok-mallory"), 307, "/healthz"},
		{"dot, no route", "POST", "/v1/./nothing", nil, 307, "/v1/nothing"},
		{"canonical, no route", "GET", "/v1/nothing", nil, 401, ""},
		{"canonical route", "GET", "/v1/tenants/acme/notes/n1", nil, 401, ""},
	} {
		r := f.do(tc.method, tc.path, tc.auth, "")
		if r.status == 301 && tc.status == 307 {
			r.status = 307 // by Go version
		}
		if r.status != tc.status || r.header.Get("Location") != tc.loc {
			t.Errorf("%s: %d Location %q, want %d %q", tc.name, r.status, r.header.Get("Location"), tc.status, tc.loc)
			continue
		}
		e := f.event(r)
		if e.Actor.Subject != "anonymous" {
			t.Errorf("%s: actor %v", tc.name, e.Actor)
		}
		if tc.loc != "" && (e.Action != "notes.request" || e.Reason != "redirect to "+tc.loc || e.Outcome != audit.OutcomeAllow) {
			t.Errorf("%s: event %s %q %s", tc.name, e.Action, e.Reason, e.Outcome)
		}
	}
}

// countingAuth counts the Authenticator's calls.
type countingAuth struct {
	tokens
	n atomic.Int64
}

func (c *countingAuth) Authenticate(ctx context.Context, tok string) (httpguard.Principal, error) {
	c.n.Add(1)
	return c.tokens.Authenticate(ctx, tok)
}

// TestHeadersTooLarge: header fields over MaxHeaderBytes get an audited
// 431 before the Authenticator sees the token.
func TestHeadersTooLarge(t *testing.T) {
	auth := &countingAuth{}
	f := newFixture(t, func(c *httpguard.Config) {
		auth.tokens = c.Authenticator.(tokens)
		c.Authenticator = auth
		c.MaxHeaderBytes = 4096
	})
	req := func(pad int) reply {
		req, err := http.NewRequest("GET", f.srv.URL+"/v1/tenants/acme/notes/n1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer tok-alice")
		req.Header.Set("X-Padding", strings.Repeat("p", pad))
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return reply{status: resp.StatusCode, header: resp.Header, id: resp.Header.Get("X-Request-Id")}
	}
	if r := req(3000); r.status != 200 {
		t.Fatalf("under the limit: %d", r.status)
	}
	calls := auth.n.Load()
	r := req(5000)
	if r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("over the limit: %d, want 431", r.status)
	}
	if e := f.event(r); e.Actor.Subject != "anonymous" || e.Outcome != audit.OutcomeDeny {
		t.Errorf("431 event %+v", e)
	}
	if auth.n.Load() != calls {
		t.Error("the Authenticator saw a request over the header limit")
	}
	if _, err := httpguard.New(httpguard.Config{Logger: f.log, Authenticator: auth, MaxHeaderBytes: -1}); !errors.Is(err, httpguard.ErrConfig) {
		t.Errorf("negative MaxHeaderBytes: %v", err)
	}
}

// TestKnownTenant: with KnownTenant, another tenant is 403 if it exists
// and 404 unknown_tenant if not, and an anonymous request's event names
// the path's tenant only if it exists. Without it, both are 403 and "-".
func TestKnownTenant(t *testing.T) {
	known := func(t string) bool { return t == "acme" || t == "globex" }
	for _, tc := range []struct {
		known                    func(string) bool
		unknownStatus            int
		unknownCode, anonAcme    string
		anonUnknown, otherTenant string
	}{
		{known, 404, "unknown_tenant", "acme", "-", "forbidden"},
		{nil, 403, "forbidden", "-", "-", "forbidden"},
	} {
		f := newFixture(t, func(c *httpguard.Config) { c.KnownTenant = tc.known })
		r := f.do("GET", "/v1/tenants/nope/notes/n1", bearer("tok-gina"), "")
		if r.status != tc.unknownStatus || r.code != tc.unknownCode {
			t.Errorf("unknown tenant: %d %q, want %d %q", r.status, r.code, tc.unknownStatus, tc.unknownCode)
		}
		if e := f.event(r); e.Actor.Tenant != "globex" || e.Outcome != audit.OutcomeDeny {
			t.Errorf("unknown tenant event %+v", e)
		}
		if r := f.do("GET", "/v1/tenants/acme/notes/n1", bearer("tok-gina"), ""); r.status != 403 || r.code != tc.otherTenant {
			t.Errorf("other tenant: %d %q", r.status, r.code)
		}
		if r := f.do("GET", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), ""); r.status != 200 {
			t.Errorf("own tenant: %d", r.status)
		}
		for path, want := range map[string]string{"/v1/tenants/acme/notes/n1": tc.anonAcme, "/v1/tenants/nope/notes/n1": tc.anonUnknown, "/v1/nothing": "-"} {
			r := f.do("GET", path, nil, "")
			if e := f.event(r); r.status != 401 || e.Actor.Tenant != want {
				t.Errorf("anonymous %s: %d tenant %q, want 401 %q", path, r.status, e.Actor.Tenant, want)
			}
		}
	}
}

// TestUnauditedRoute: an Unaudited Public route's successes write no
// event and spend nothing of the address limit, its errors are audited;
// only a Public route may be Unaudited.
func TestUnauditedRoute(t *testing.T) {
	f := newFixture(t, func(c *httpguard.Config) { c.FailureBurst = 2 })
	f.g.Handle("GET /livez", httpguard.Route{Name: "live", Public: true, Unaudited: true},
		func(w http.ResponseWriter, r *http.Request) error {
			return httpguard.JSON(w, 200, map[string]string{"status": "ok"})
		})
	f.g.Handle("GET /broken", httpguard.Route{Name: "broken", Public: true, Unaudited: true},
		func(w http.ResponseWriter, r *http.Request) error { return errors.New("down") })
	r := f.do("GET", "/livez", nil, "")
	if r.status != 200 || r.id == "" || len(f.log.byRequest(r.id)) != 0 {
		t.Fatalf("unaudited success: %d id %q, %d events", r.status, r.id, len(f.log.byRequest(r.id)))
	}
	if r := f.do("GET", "/broken", nil, ""); r.status != 500 || f.event(r).Action != "notes.broken" {
		t.Fatalf("unaudited route's error: %d", r.status)
	}
	// It writes nothing, so it spends nothing of the address's budget.
	for range 5 {
		if r := f.do("GET", "/livez", nil, ""); r.status != 200 || len(f.log.byRequest(r.id)) != 0 {
			t.Fatalf("unaudited route, again: %d", r.status)
		}
	}
	if r := f.do("GET", "/v1/nothing", nil, ""); r.status != 401 {
		t.Fatalf("after the health checks, an unauthenticated request: %d, want 401 (not limited)", r.status)
	}
	defer func() {
		if recover() == nil {
			t.Error("Handle accepted an Unaudited route that is not Public")
		}
	}()
	f.g.Handle("GET /secret", httpguard.Route{Name: "secret", HandlerAuthorizes: true, Unaudited: true}, nil)
}

// TestAlertAtOnce: the 1st, 2nd, 4th, 8th, ... failure of a window
// raises an alert at once, with its request's ctx and the count since the
// last; the rest of the window is raised when it ends; the counts add up.
func TestAlertAtOnce(t *testing.T) {
	type raised struct {
		a  httpguard.Alert
		id string
	}
	var (
		mu  sync.Mutex
		got []raised
	)
	f := newFixture(t, func(c *httpguard.Config) {
		c.AlertAtOnce = true
		c.FailureBurst = 100
		c.Alert = func(ctx context.Context, a httpguard.Alert) {
			mu.Lock()
			got = append(got, raised{a, audit.RequestIDFrom(ctx)})
			mu.Unlock()
		}
	})
	alerts := func() []raised { mu.Lock(); defer mu.Unlock(); return append([]raised(nil), got...) }
	var ids []string
	for range 5 {
		ids = append(ids, f.do("GET", "/v1/tenants/acme/notes/n1", bearer("tok-forged"), "").id)
		f.clock.Add(time.Second)
	}
	// At once: the 1st (count 1), the 2nd (1), the 4th (2).
	a := alerts()
	if len(a) != 3 {
		t.Fatalf("%d alerts at once after 5 failures, want 3: %+v", len(a), a)
	}
	for i, w := range []struct {
		n   int64
		req int
	}{{1, 0}, {1, 1}, {2, 3}} {
		if a[i].a.Kind != httpguard.AlertAuthFailures || a[i].a.Count != w.n || a[i].id != ids[w.req] {
			t.Errorf("alert %d: %+v request %q, want count %d by request %q", i, a[i].a, a[i].id, w.n, ids[w.req])
		}
	}
	if !a[2].a.Start.Equal(a[1].a.End.Add(time.Second)) || a[2].a.End.Sub(a[2].a.Start) != time.Second {
		t.Errorf("alert 2 spans %v..%v", a[2].a.Start, a[2].a.End)
	}
	f.clock.Add(time.Minute)
	f.do("GET", "/healthz", nil, "")
	a = alerts()
	if len(a) != 4 || a[3].a.Count != 1 || a[3].id != "" || a[3].a.End.Sub(a[3].a.Start) != time.Minute {
		t.Fatalf("after the window: %+v, want the 5th failure in one window alert", a)
	}
	var sum int64
	for _, r := range a {
		sum += r.a.Count
	}
	if sum != 5 {
		t.Errorf("counts add up to %d, want 5", sum)
	}
	// A window whose failures were all raised at once raises nothing at
	// its end.
	f.do("GET", "/v1/tenants/acme/notes/n1", bearer("tok-forged"), "")
	f.clock.Add(time.Minute)
	f.do("GET", "/healthz", nil, "")
	if a := alerts(); len(a) != 5 {
		t.Fatalf("a window of one failure: %d alerts, want 5 in all", len(a))
	}
}

// TestLongRequestIsNotAnOutage: text taken from the request is cut to
// 512 bytes in the event and named in "<Service>.truncated", so that no
// request turns into a 503.
func TestLongRequestIsNotAnOutage(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do("GET", "/"+strings.Repeat("a", 60000), nil, "")
	if r.status != 401 {
		t.Fatalf("long path: %d", r.status)
	}
	e := f.event(r)
	if len(e.Resource) != 512 || !strings.HasPrefix(e.Resource, "/aaa") {
		t.Errorf("resource of %d bytes", len(e.Resource))
	}
	if a, _ := attr(e, "notes.truncated"); a.Value != "resource=60001" {
		t.Errorf("notes.truncated %q", a.Value)
	}
	// A cut never splits a character.
	r = f.do("GET", "/"+strings.Repeat("é", 400), nil, "")
	if e := f.event(r); !strings.HasSuffix(e.Resource, "é") || len(e.Escaped) != 0 {
		t.Errorf("cut inside a character: %q escaped %v", e.Resource[len(e.Resource)-4:], e.Escaped)
	}
}
