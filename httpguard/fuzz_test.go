package httpguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
)

// FuzzRequestEvent sends any method, path and header bytes through the
// guard: each request yields exactly one Log call and a response, and the
// guard itself never fails (no 500, and no 503 unless the Logger refused
// the event).
func FuzzRequestEvent(f *testing.F) {
	f.Add("GET", "/v1/tenants/acme/notes/n1", "Authorization", "Bearer tok-alice", "1.2.3.4:5")
	f.Add("DELETE", "/v1/tenants/acme/notes/..", "Authorization", "Bearer tok-amy", "[::1]:1")
	f.Add("PUT", "//a/./b/../c", "Authorization", "Bearer tok-gina", "nohost")
	f.Add("GET", "/healthz", "X-Forwarded-For", "10.0.0.1", "")
	f.Add("G\xffT", "/\xff\xfe", "Authorization", "Bearer \xff", "\xff")
	f.Add("CONNECT", "", "Authorization", "bearer  tok-alice", "1.2.3.4:5")
	f.Fuzz(func(t *testing.T, method, path, hk, hv, remote string) {
		log := &recorder{}
		g, err := httpguard.New(httpguard.Config{
			Service: "fuzz", Logger: log,
			Authenticator: tokens{"tok-alice": {Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ok := func(w http.ResponseWriter, r *http.Request) error { _, err := w.Write([]byte("x")); return err }
		g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "read", HandlerAuthorizes: true}, ok)
		g.Handle("GET /healthz", httpguard.Route{Name: "health", Public: true}, ok)

		req := &http.Request{
			Method: method, URL: &url.URL{Path: path}, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "example.com", RemoteAddr: remote, Body: http.NoBody,
		}
		req.Header[hk] = []string{hv}
		req = req.WithContext(context.Background())
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if log.calls != 1 {
			t.Fatalf("%d Log calls, want exactly 1", log.calls)
		}
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("the guard failed: %d %s", w.Code, w.Body)
		}
		if (w.Code == http.StatusServiceUnavailable) != (len(log.events) == 0) {
			t.Fatalf("status %d with %d events recorded", w.Code, len(log.events))
		}
		if w.Code == http.StatusServiceUnavailable && !strings.Contains(w.Body.String(), "audit_unavailable") {
			t.Fatalf("503 without audit_unavailable: %s", w.Body)
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Fatal("no request id")
		}
	})
}
