package httpguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/time/rate"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/section203"
	"github.com/tomkit/tomkit/tlsconfig"
)

// recorder is an audit.Logger that keeps events, checks them as a real
// sink does, and can be made to fail.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	calls  int
	fail   bool
}

func (l *recorder) Log(ctx context.Context, e audit.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.fail {
		return errors.New("disk full")
	}
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	l.events = append(l.events, e)
	return nil
}

func (l *recorder) byRequest(id string) []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.events {
		if e.RequestID == id {
			out = append(out, e)
		}
	}
	return out
}

func (l *recorder) setFail(v bool) { l.mu.Lock(); l.fail = v; l.mu.Unlock() }

func attr(e audit.Event, key string) (audit.Attr, bool) {
	for _, a := range e.Attributes {
		if a.Key == key {
			return a, true
		}
	}
	return audit.Attr{}, false
}

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)} }
func (c *clock) principal(s, t string) httpguard.Principal {
	return httpguard.Principal{Actor: audit.Actor{Subject: s, Tenant: t}, MFAVerifiedAt: c.Now()}
}

// tokens is the test Authenticator.
type tokens map[string]httpguard.Principal

func (t tokens) Authenticate(_ context.Context, tok string) (httpguard.Principal, error) {
	p, ok := t[tok]
	if !ok {
		return httpguard.Principal{}, errors.New("unknown token")
	}
	return p, nil
}

const policy = `
p, editor, acme, /notes/*, read, allow
p, editor, acme, /notes/*, write, allow
p, editor, acme, /notes/*, delete, allow, mfa
p, viewer, acme, /notes/*, read, allow
p, reader, acme, /notes/*, read, allow, mfa
p, editor, globex, /notes/*, read, allow
g, alice, editor, acme
g, amy, editor, acme
g, bob, viewer, acme
g, oncall, breakglass, acme
g, gina, editor, globex
`

var errConflict = errors.New("notes: conflict")

type fixture struct {
	t     *testing.T
	log   *recorder
	clock *clock
	enf   *rbac.Enforcer
	g     *httpguard.Guard
	srv   *httptest.Server
	alert []httpguard.Alert
	amu   sync.Mutex
	mp    *metric.MeterProvider
	mr    *metric.ManualReader
}

func newFixture(t *testing.T, mod func(*httpguard.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, log: &recorder{}, clock: newClock()}
	enf, err := rbac.New(context.Background(), rbac.Config{
		Logger: &recorder{}, Policy: []byte(policy), Clock: audit.ClockFunc(f.clock.Now),
		Alert: func(context.Context, audit.Event) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.enf = enf
	modes, err := section203.NewModes(section203.ModesConfig{Logger: &recorder{}, Tenants: map[string]section203.Mode{"acme": section203.Off}})
	if err != nil {
		t.Fatal(err)
	}
	amy := f.clock.principal("amy", "acme")
	amy.MFAVerifiedAt = time.Time{}
	f.mr = metric.NewManualReader()
	f.mp = metric.NewMeterProvider(metric.WithReader(f.mr))
	cfg := httpguard.Config{
		Service: "notes",
		Logger:  f.log,
		Authenticator: tokens{
			"tok-alice": f.clock.principal("alice", "acme"), "tok-amy": amy,
			"tok-bob": f.clock.principal("bob", "acme"), "tok-gina": f.clock.principal("gina", "globex"),
			"tok-oncall": f.clock.principal("oncall", "acme"),
		},
		Enforcer:      enf,
		Modes:         modes,
		MaxBodyBytes:  16,
		Errors:        []httpguard.Mapping{{Err: errConflict, Status: http.StatusConflict, Code: "conflict", Message: "conflict"}},
		Alert:         func(_ context.Context, a httpguard.Alert) { f.amu.Lock(); f.alert = append(f.alert, a); f.amu.Unlock() },
		MeterProvider: f.mp,
		Clock:         audit.ClockFunc(f.clock.Now),
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := httpguard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.read", Action: "read", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Handler", "yes")
			_, err := io.WriteString(w, "note "+r.PathValue("id"))
			return err
		})
	g.Handle("POST /v1/tenants/{tenant}/notes", httpguard.Route{Name: "note.create", Action: "write", Object: "/notes/new"},
		func(w http.ResponseWriter, r *http.Request) error {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			if string(b) == "conflict" {
				return errConflict
			}
			if string(b) == "teapot" {
				return &httpguard.Error{Status: http.StatusTeapot, Code: "teapot", Message: "short and stout"}
			}
			ev := httpguard.AuditEvent(r.Context())
			ev.Resource = "/v1/tenants/acme/notes/n1"
			ev.Attributes = append(ev.Attributes, audit.String("size", "n"))
			w.WriteHeader(http.StatusCreated)
			return nil
		})
	g.Handle("PUT /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.update", Action: "write", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			var req struct{ Text string }
			if err := httpguard.DecodeJSON(r, &req); err != nil {
				return err
			}
			return httpguard.JSON(w, http.StatusOK, map[string]int{"size": len(req.Text)})
		})
	g.Handle("DELETE /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.delete", Action: "delete", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	g.Handle("GET /v1/tenants/{tenant}/gone/{id}", httpguard.Route{Name: "note.gone", Action: "read", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			_, _ = io.WriteString(w, "partial")
			return retention.ErrNotFound
		})
	g.Handle("GET /v1/tenants/{tenant}/panic", httpguard.Route{Name: "panic", HandlerAuthorizes: true},
		func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Handler", "yes")
			_, _ = io.WriteString(w, "SECRET")
			panic("boom")
		})
	g.Handle("GET /v1/tenants/{tenant}/mode", httpguard.Route{Name: "mode", HandlerAuthorizes: true},
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, section203.ModeFrom(r.Context()).String())
			return err
		})
	g.Handle("POST /v1/tenants/{tenant}/notes/{id}/delete", httpguard.Route{Name: "note.delete.body", HandlerAuthorizes: true},
		func(w http.ResponseWriter, r *http.Request) error {
			if err := g.Authorize(r, "delete", "/notes/"+r.PathValue("id")); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	g.Handle("GET /healthz", httpguard.Route{Name: "health", Public: true},
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, "ok")
			return err
		})
	f.srv = httptest.NewUnstartedServer(tlsconfig.HSTS(tlsconfig.SecureHeaders(g)))
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

type reply struct {
	status int
	header http.Header
	body   string
	code   string
	id     string
}

func (f *fixture) do(method, path string, auth []string, body string) reply {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	c := f.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b), id: resp.Header.Get("X-Request-Id")}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.code = e.Error.Code
	}
	return r
}

// event checks that exactly one access-log event was written for r, and
// returns it.
func (f *fixture) event(r reply) audit.Event {
	f.t.Helper()
	if r.id == "" {
		f.t.Fatalf("no X-Request-Id on %d %s", r.status, r.body)
	}
	evs := f.log.byRequest(r.id)
	if len(evs) != 1 {
		f.t.Fatalf("request %s: %d access-log events, want exactly 1: %+v", r.id, len(evs), evs)
	}
	return evs[0]
}

func bearer(tok string) []string { return []string{"Bearer " + tok} }

func TestEveryResponseHasExactlyOneDurableEvent(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, method, path string
		auth               []string
		body               string
		status             int
		code               string
		action             string
		outcome            audit.Outcome
		subject            string
	}{
		{"read", "GET", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), "", 200, "", "notes.note.read", audit.OutcomeAllow, "alice"},
		{"create", "POST", "/v1/tenants/acme/notes", bearer("tok-alice"), "hello", 201, "", "notes.note.create", audit.OutcomeAllow, "alice"},
		{"delete with mfa", "DELETE", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), "", 204, "", "notes.note.delete", audit.OutcomeAllow, "alice"},
		{"public", "GET", "/healthz", nil, "", 200, "", "notes.health", audit.OutcomeAllow, "anonymous"},
		{"no token", "GET", "/v1/tenants/acme/notes/n1", nil, "", 401, "unauthenticated", "notes.note.read", audit.OutcomeDeny, "anonymous"},
		{"unknown token", "GET", "/v1/tenants/acme/notes/n1", bearer("tok-mallory"), "", 401, "unauthenticated", "notes.note.read", audit.OutcomeDeny, "anonymous"},
		{"basic auth", "GET", "/v1/tenants/acme/notes/n1", []string{"Basic YWxpY2U6eA=="}, "", 401, "unauthenticated", "notes.note.read", audit.OutcomeDeny, "anonymous"},
		{"two authorization headers", "GET", "/v1/tenants/acme/notes/n1", []string{"Bearer tok-alice", "Bearer tok-bob"}, "", 401, "unauthenticated", "notes.note.read", audit.OutcomeDeny, "anonymous"},
		{"mfa step-up", "DELETE", "/v1/tenants/acme/notes/n1", bearer("tok-amy"), "", 403, "mfa_required", "notes.note.delete", audit.OutcomeDeny, "amy"},
		{"handler authorizes: mfa", "POST", "/v1/tenants/acme/notes/n1/delete", bearer("tok-amy"), "", 403, "mfa_required", "notes.note.delete.body", audit.OutcomeDeny, "amy"},
		{"handler authorizes: forbidden", "POST", "/v1/tenants/acme/notes/n1/delete", bearer("tok-bob"), "", 403, "forbidden", "notes.note.delete.body", audit.OutcomeDeny, "bob"},
		{"handler authorizes: allowed", "POST", "/v1/tenants/acme/notes/n1/delete", bearer("tok-alice"), "", 204, "", "notes.note.delete.body", audit.OutcomeAllow, "alice"},
		{"forbidden", "DELETE", "/v1/tenants/acme/notes/n1", bearer("tok-bob"), "", 403, "forbidden", "notes.note.delete", audit.OutcomeDeny, "bob"},
		{"other tenant", "GET", "/v1/tenants/acme/notes/n1", bearer("tok-gina"), "", 403, "forbidden", "notes.note.read", audit.OutcomeDeny, "gina"},
		{"path trick", "GET", "/v1/tenants/acme/notes/..%2fsecret", bearer("tok-alice"), "", 403, "forbidden", "notes.note.read", audit.OutcomeDeny, "alice"},
		{"no route", "GET", "/v1/nothing", bearer("tok-alice"), "", 404, "not_found", "notes.request", audit.OutcomeDeny, "alice"},
		{"no route, anonymous", "GET", "/v1/nothing", nil, "", 401, "unauthenticated", "notes.request", audit.OutcomeDeny, "anonymous"},
		{"not found from handler", "GET", "/v1/tenants/acme/gone/n1", bearer("tok-alice"), "", 404, "not_found", "notes.note.gone", audit.OutcomeDeny, "alice"},
		{"json", "PUT", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), `{"Text":"hi"}`, 200, "", "notes.note.update", audit.OutcomeAllow, "alice"},
		{"malformed json", "PUT", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), `{"Text":`, 400, "bad_request", "notes.note.update", audit.OutcomeDeny, "alice"},
		{"unknown field", "PUT", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), `{"Title":"x"}`, 400, "bad_request", "notes.note.update", audit.OutcomeDeny, "alice"},
		{"trailing data", "PUT", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), `{} {}`, 400, "bad_request", "notes.note.update", audit.OutcomeDeny, "alice"},
		{"json too large", "PUT", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), `{"Text":"0123456789abcdef"}`, 413, "too_large", "notes.note.update", audit.OutcomeDeny, "alice"},
		{"method", "PATCH", "/v1/tenants/acme/notes/n1", bearer("tok-alice"), "", 405, "method_not_allowed", "notes.request", audit.OutcomeDeny, "alice"},
		{"too large", "POST", "/v1/tenants/acme/notes", bearer("tok-alice"), strings.Repeat("x", 17), 413, "too_large", "notes.note.create", audit.OutcomeDeny, "alice"},
		{"mapped sentinel", "POST", "/v1/tenants/acme/notes", bearer("tok-alice"), "conflict", 409, "conflict", "notes.note.create", audit.OutcomeDeny, "alice"},
		{"handler Error", "POST", "/v1/tenants/acme/notes", bearer("tok-alice"), "teapot", 418, "teapot", "notes.note.create", audit.OutcomeDeny, "alice"},
		{"panic", "GET", "/v1/tenants/acme/panic", bearer("tok-alice"), "", 500, "internal", "notes.panic", audit.OutcomeError, "alice"},
		{"clean redirect dot-dot", "GET", "/v1/tenants/acme/x/../notes/n1", bearer("tok-alice"), "", 307, "", "notes.request", audit.OutcomeAllow, "alice"},
		{"clean redirect double slash", "GET", "/v1//tenants/acme/notes/n1", bearer("tok-alice"), "", 307, "", "notes.request", audit.OutcomeAllow, "alice"},
		{"clean redirect dot", "POST", "/v1/tenants/./acme/notes", bearer("tok-alice"), "x", 307, "", "notes.request", audit.OutcomeAllow, "alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			r := f.do(tc.method, tc.path, tc.auth, tc.body)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("%s %s: %d %q (%s), want %d %q", tc.method, tc.path, r.status, r.code, r.body, tc.status, tc.code)
			}
			if r.header.Get("Strict-Transport-Security") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers missing: %v", r.header)
			}
			e := f.event(r)
			if e.Action != tc.action || e.Outcome != tc.outcome || e.Actor.Subject != tc.subject {
				t.Errorf("event %s %s %s, want %s %s %s", e.Action, e.Outcome, e.Actor.Subject, tc.action, tc.outcome, tc.subject)
			}
			if a, _ := attr(e, "http.status"); a.Value != strconv.Itoa(tc.status) {
				t.Errorf("http.status %q, want %d", a.Value, tc.status)
			}
			if a, ok := attr(e, "client.address"); !ok || !a.Personal {
				t.Errorf("client.address %+v, want a personal attribute", a)
			}
			switch {
			case tc.status == 401:
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="notes"`) || e.Severity != audit.SeverityWarning {
					t.Errorf("401: WWW-Authenticate %q, severity %s", r.header.Get("WWW-Authenticate"), e.Severity)
				}
			case tc.status == 405:
				if r.header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			case tc.status >= 300 && tc.status < 400:
				if r.header.Get("Location") == "" {
					t.Error("redirect without Location")
				}
			case tc.status == 500 || tc.status == 404:
				if strings.Contains(r.body, "SECRET") || strings.Contains(r.body, "partial") || r.header.Get("X-Handler") != "" {
					t.Errorf("a failed response leaked what the handler wrote: %v %q", r.header, r.body)
				}
			}
			if tc.status >= 400 && !strings.Contains(r.body, r.id) {
				t.Errorf("error body without request id: %s", r.body)
			}
		})
	}
	// The handler's additions reach the event.
	r := f.do("POST", "/v1/tenants/acme/notes", bearer("tok-alice"), "hi")
	e := f.event(r)
	if _, ok := attr(e, "size"); !ok || e.Resource != "/v1/tenants/acme/notes/n1" {
		t.Errorf("handler's resource and attribute lost: %+v", e)
	}
}

func TestAuditFailureReleasesNothing(t *testing.T) {
	f := newFixture(t, nil)
	f.log.setFail(true)
	for _, tc := range []struct{ method, path, tok string }{
		{"GET", "/v1/tenants/acme/notes/n1", "tok-alice"},
		{"GET", "/v1/tenants/acme/panic", "tok-alice"},
		{"GET", "/v1/nothing", "tok-alice"},
		{"GET", "/v1/tenants/acme/notes/n1", ""},
		{"GET", "/healthz", ""},
	} {
		var auth []string
		if tc.tok != "" {
			auth = bearer(tc.tok)
		}
		before := f.log.calls
		r := f.do(tc.method, tc.path, auth, "")
		if r.status != http.StatusServiceUnavailable || r.code != "audit_unavailable" {
			t.Fatalf("%s: %d %q, want 503 audit_unavailable", tc.path, r.status, r.code)
		}
		if strings.Contains(r.body, "note") || strings.Contains(r.body, "SECRET") || strings.Contains(r.body, "ok\n") || r.header.Get("X-Handler") != "" || r.header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%s: handler output leaked: %v %q", tc.path, r.header, r.body)
		}
		if r.id == "" || r.header.Get("Strict-Transport-Security") == "" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: request id or security headers missing: %v", tc.path, r.header)
		}
		if f.log.calls != before+1 {
			t.Fatalf("%s: %d Log calls, want 1", tc.path, f.log.calls-before)
		}
	}
	f.log.setFail(false)
	f.clock.Add(time.Minute)
	f.do("GET", "/healthz", nil, "")
	f.amu.Lock()
	defer f.amu.Unlock()
	var n int64
	for _, a := range f.alert {
		if a.Kind == httpguard.AlertAuditUnavailable {
			n += a.Count
		}
	}
	if n != 5 {
		t.Fatalf("alerts %+v, want 5 audit failures in one", f.alert)
	}
}

func TestRateLimitPerPrincipal(t *testing.T) {
	f := newFixture(t, func(c *httpguard.Config) { c.Rate, c.Burst = rate.Every(2*time.Second), 2 })
	path := "/v1/tenants/acme/notes/n1"
	for i := 0; i < 2; i++ {
		if r := f.do("GET", path, bearer("tok-alice"), ""); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := f.do("GET", path, bearer("tok-alice"), "")
	if r.status != http.StatusTooManyRequests || r.code != "rate_limited" || r.header.Get("Retry-After") != "2" {
		t.Fatalf("third request: %d %q Retry-After %q", r.status, r.code, r.header.Get("Retry-After"))
	}
	if e := f.event(r); e.Actor.Subject != "alice" || e.Severity != audit.SeverityWarning || e.Outcome != audit.OutcomeDeny {
		t.Fatalf("429 event %+v", e)
	} else if lim, _ := attr(e, "ratelimit"); e.Reason != "rate_limited" || lim.Value != "principal" {
		t.Fatalf("429 event reason %q, ratelimit %q", e.Reason, lim.Value)
	}
	if r := f.do("GET", path, bearer("tok-bob"), ""); r.status != 200 {
		t.Fatalf("bob is limited by alice's bucket: %d", r.status)
	}
	f.clock.Add(2 * time.Second)
	if r := f.do("GET", path, bearer("tok-alice"), ""); r.status != 200 {
		t.Fatalf("after the refill: %d", r.status)
	}
}

func TestRateLimitPerAddressForFailures(t *testing.T) {
	f := newFixture(t, func(c *httpguard.Config) { c.FailureBurst = 3 })
	path := "/v1/tenants/acme/notes/n1"
	for i := 0; i < 3; i++ {
		if r := f.do("GET", path, bearer("tok-forged"), ""); r.status != 401 {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}
	r := f.do("GET", path, nil, "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("anonymous flood: %d", r.status)
	}
	if e := f.event(r); e.Actor.Subject != "anonymous" || e.Outcome != audit.OutcomeDeny {
		t.Fatalf("event %+v", e)
	}
	// Public routes share the address's bucket.
	if r := f.do("GET", "/healthz", nil, ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("public route during the flood: %d", r.status)
	}
	// Authenticated callers from the same address are not affected.
	if r := f.do("GET", path, bearer("tok-alice"), ""); r.status != 200 {
		t.Fatalf("alice after the flood: %d", r.status)
	}
}

func TestAlertsAggregatePerWindow(t *testing.T) {
	f := newFixture(t, func(c *httpguard.Config) { c.FailureBurst = 3 })
	for i := 0; i < 5; i++ {
		f.do("GET", "/v1/tenants/acme/notes/n1", bearer("tok-forged"), "")
	}
	f.amu.Lock()
	n := len(f.alert)
	f.amu.Unlock()
	if n != 0 {
		t.Fatalf("%d alerts before the window closed", n)
	}
	f.clock.Add(time.Minute)
	f.do("GET", "/healthz", nil, "")
	f.amu.Lock()
	got := append([]httpguard.Alert(nil), f.alert...)
	f.amu.Unlock()
	counts := map[string]int64{}
	for _, a := range got {
		counts[a.Kind] += a.Count
		if a.End.Sub(a.Start) != time.Minute {
			t.Errorf("window %v..%v", a.Start, a.End)
		}
	}
	if len(got) != 2 || counts[httpguard.AlertAuthFailures] != 5 || counts[httpguard.AlertRateLimited] != 2 {
		t.Fatalf("alerts %+v, want one of 5 auth failures and one of 2 rate-limit violations", got)
	}
	var rm metricdata.ResourceMetrics
	if err := f.mr.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					sums[m.Name] += dp.Value
				}
			}
		}
	}
	if sums["httpguard.auth.failures"] != 5 || sums["httpguard.ratelimit.violations"] != 2 {
		t.Fatalf("counters %v", sums)
	}
}

func TestSection203ModeBoundForHandler(t *testing.T) {
	f := newFixture(t, nil)
	if r := f.do("GET", "/v1/tenants/acme/mode", bearer("tok-alice"), ""); r.body != section203.Off.String() {
		t.Fatalf("acme (configured off): %q", r.body)
	}
	if r := f.do("GET", "/v1/tenants/globex/mode", bearer("tok-gina"), ""); r.body != section203.On.String() {
		t.Fatalf("globex (not configured): %q", r.body)
	}
	g := newFixture(t, func(c *httpguard.Config) { c.Modes = nil })
	if r := g.do("GET", "/v1/tenants/acme/mode", bearer("tok-alice"), ""); r.body != section203.On.String() {
		t.Fatalf("nil Modes: %q, want fail-closed On", r.body)
	}
}

func TestGrantAllowIsRecorded(t *testing.T) {
	f := newFixture(t, nil)
	path := "/v1/tenants/acme/notes/n1"
	if r := f.do("GET", path, bearer("tok-oncall"), ""); r.status != 403 {
		t.Fatalf("oncall before break-glass: %d", r.status)
	}
	ctx := rbac.WithMFA(audit.WithActor(context.Background(), audit.Actor{Subject: "oncall", Tenant: "acme"}), f.clock.Now())
	gr, err := f.enf.BreakGlass(ctx, "reader", "INC-1")
	if err != nil {
		t.Fatal(err)
	}
	r := f.do("GET", path, bearer("tok-oncall"), "")
	if r.status != 200 {
		t.Fatalf("oncall after break-glass: %d %s", r.status, r.body)
	}
	e := f.event(r)
	if a, _ := attr(e, "grant"); a.Value != gr.ID || e.Severity != audit.SeverityWarning {
		t.Fatalf("grant not recorded: %+v", e)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	auth := tokens{}
	for _, tc := range []struct {
		cfg  httpguard.Config
		want error
	}{
		{httpguard.Config{Authenticator: auth}, audit.ErrNoLogger},
		{httpguard.Config{Logger: &recorder{}}, httpguard.ErrNoAuthenticator},
		{httpguard.Config{Logger: &recorder{}, Authenticator: auth, Burst: -1}, httpguard.ErrConfig},
		{httpguard.Config{Logger: &recorder{}, Authenticator: auth, Realm: `a"b`}, httpguard.ErrConfig},
		{httpguard.Config{Logger: &recorder{}, Authenticator: auth, Errors: []httpguard.Mapping{{Err: errConflict, Status: 200, Code: "ok"}}}, httpguard.ErrConfig},
		{httpguard.Config{Logger: &recorder{}, Authenticator: auth, Errors: []httpguard.Mapping{{Status: 409, Code: "conflict"}}}, httpguard.ErrConfig},
	} {
		if _, err := httpguard.New(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("New(%+v) = %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestHandleRefusesUnsafeRoutes(t *testing.T) {
	g, err := httpguard.New(httpguard.Config{Logger: &recorder{}, Authenticator: tokens{}})
	if err != nil {
		t.Fatal(err)
	}
	h := func(http.ResponseWriter, *http.Request) error { return nil }
	for _, tc := range []struct {
		pattern string
		rt      httpguard.Route
	}{
		{"GET /a", httpguard.Route{}},                                                   // no name
		{"GET /a", httpguard.Route{Name: "a"}},                                          // unauthorized by mistake
		{"GET /a", httpguard.Route{Name: "a", Action: "read"}},                          // half a check
		{"GET /a/{id}", httpguard.Route{Name: "a", Action: "read", Object: "/a/{id}"}},  // no Enforcer
		{"GET /a", httpguard.Route{Name: "a", Public: true, Action: "r", Object: "/a"}}, // public and checked
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q, %+v) did not panic", tc.pattern, tc.rt)
				}
			}()
			g.Handle(tc.pattern, tc.rt, h)
		}()
	}
	f := newFixture(t, nil)
	defer func() {
		if recover() == nil {
			t.Error("an object naming a missing path value was accepted")
		}
	}()
	f.g.Handle("GET /b/{id}", httpguard.Route{Name: "b", Action: "read", Object: "/notes/{name}"}, h)
}
