package main

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// recSink is an in-memory audit sink: audit.Recorder with a Close.
type recSink struct{ audit.Recorder }

func (*recSink) Close() error { return nil }

// testClock is an injected clock that only moves when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newBareApp is the request pipeline without the packages behind it: no
// principal, no store, no policy. Every request that reaches it is
// unauthenticated, which is the path an anonymous client controls.
func newBareApp(t testing.TB, alerts io.Writer) (*app, *recSink, *testClock) {
	t.Helper()
	clk := &testClock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	rec := &recSink{}
	a := &app{
		tenants: map[string]tenantInfo{"acme": {Name: "acme"}},
		tokens:  map[string]principal{},
		audit:   rec,
		errLog:  log.New(io.Discard, "", 0),
		now:     clk.Now,
	}
	a.opts.rate, a.opts.burst = 20, 40
	var err error
	if a.mon, err = newMonitor(rec, alerts, clk.Now); err != nil {
		t.Fatal(err)
	}
	enf, err := rbac.New(context.Background(), rbac.Config{Logger: rec, Policy: []byte("p, editor, acme, /documents/*, read, allow\n"), Clock: audit.ClockFunc(clk.Now)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = enf.Close() })
	a.authz = &rbacAuthz{enf: enf}
	return a, rec, clk
}

// handler is a.routes(), which must build.
func handler(t testing.TB, a *app) http.Handler {
	t.Helper()
	h, err := a.routes()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// requestEvents returns the "refapp.*" request events among evs (not the
// alerts).
func requestEvents(evs []audit.Event) []audit.Event {
	var out []audit.Event
	for _, e := range evs {
		if e.Action != "refapp.alert" {
			out = append(out, e)
		}
	}
	return out
}

// TestEncodingIsNotAnOutage sends paths and ids that are not valid UTF-8
// (a stray byte, an overlong '/', a surrogate) and an over-long path: each
// is answered as any other anonymous request (401), with exactly one
// event that records the path escaped or cut, and marked.
func TestEncodingIsNotAnOutage(t *testing.T) {
	cases := []struct {
		path, resource, escaped, truncated string
	}{
		{"/%ff", `/\xFF`, "resource", ""},
		{"/v1/tenants/acme/documents/%c0%af", `/v1/tenants/acme/documents/\xC0\xAF`, "resource", ""},
		// An unknown tenant is not recorded in an anonymous actor.
		{"/v1/tenants/%ed%a0%80/documents/x", `/v1/tenants/\xED\xA0\x80/documents/x`, "resource", ""},
		{"/" + strings.Repeat("a", 60000), "/" + strings.Repeat("a", 511), "", "resource=60001"},
	}
	for _, c := range cases {
		a, rec, _ := newBareApp(t, io.Discard)
		req := httptest.NewRequest("GET", "https://localhost"+c.path, nil)
		w := httptest.NewRecorder()
		handler(t, a).ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("GET %.40s: status %d body %s, want 401", c.path, w.Code, w.Body)
			continue
		}
		evs := requestEvents(rec.Events())
		if len(evs) != 1 {
			t.Errorf("GET %.40s: %d events, want 1", c.path, len(evs))
			continue
		}
		e := evs[0]
		if e.Resource != c.resource || strings.Join(e.Escaped, ",") != c.escaped {
			t.Errorf("GET %.40s: resource %.60q escaped %q, want %.60q %q", c.path, e.Resource, e.Escaped, c.resource, c.escaped)
		}
		if got := attrValue(e, "refapp.truncated"); got != c.truncated {
			t.Errorf("GET %.40s: truncated %q, want %q", c.path, got, c.truncated)
		}
	}
}

func attrValue(e audit.Event, key string) string {
	for _, a := range e.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// FuzzRequestEvent drives arbitrary method, path, query, header and body
// bytes through the request pipeline: every request gets exactly one
// valid request event and never a 503 (audit outage) or a panic.
func FuzzRequestEvent(f *testing.F) {
	f.Add("GET", "/%ff", "", "Authorization", "Bearer x", []byte(nil))
	f.Add("POST", "/v1/tenants/acme/documents", "a=\xff", "Content-Type", "\xc0\xaf", []byte("{}"))
	f.Add("GET", "/v1/tenants/\xed\xa0\x80/documents/\xff", "", "X-Request-Id", "\xff", []byte(nil))
	f.Add("DELETE", "/a/../b//c/./d", "", "Authorization", "Bearer \xff", []byte(nil))
	f.Add("BREW", "*", "", "", "", []byte(nil))
	a, _, clk := newBareApp(f, io.Discard)
	sink := &countSink{}
	a.audit = sink
	h := handler(f, a)
	f.Fuzz(func(t *testing.T, method, path, query, hk, hv string, body []byte) {
		clk.Add(time.Second)
		before := sink.requests
		if method == "" {
			method = "GET"
		}
		req := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{},
			Host:       "localhost",
			RemoteAddr: "192.0.2.1:1234",
			Body:       io.NopCloser(strings.NewReader(string(body))),
			RequestURI: path,
		}
		if hk != "" {
			req.Header[hk] = []string{hv}
		}
		req = req.WithContext(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusServiceUnavailable {
			t.Fatalf("%s %q: 503 %s", method, path, w.Body)
		}
		if (method == "GET" || method == "HEAD") && path == "/healthz" && w.Code == http.StatusOK {
			return // the health check is not audited
		}
		if n := sink.requests - before; n != 1 {
			t.Fatalf("%s %q: %d request events, want 1", method, path, n)
		}
	})
}

// countSink is an audit sink that checks each event as a durable sink
// does (normalize, encode) and counts the request events.
type countSink struct {
	requests int
}

func (s *countSink) Log(ctx context.Context, e audit.Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	if _, err := e.Marshal(); err != nil {
		return err
	}
	if e.Action != "refapp.alert" {
		s.requests++
	}
	return nil
}

func (*countSink) Close() error { return nil }
