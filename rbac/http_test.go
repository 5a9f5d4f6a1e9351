package rbac_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

func TestMiddleware(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	// The map function reads the tenant from the host and the subject from
	// a header (standing in for authentication), the object from the path
	// and the action from the method.
	mapper := func(r *http.Request) (rbac.Request, error) {
		if r.Header.Get("X-Boom") != "" {
			panic("boom")
		}
		sub := r.Header.Get("X-User")
		if sub == "" {
			return rbac.Request{}, errors.New("unauthenticated")
		}
		act := map[string]string{http.MethodGet: "read", http.MethodPut: "write", http.MethodDelete: "delete"}[r.Method]
		req := rbac.Request{Actor: audit.Actor{Subject: sub, Tenant: strings.TrimSuffix(r.Host, ".example")}, Object: r.URL.Path, Action: act}
		if r.Header.Get("X-MFA") != "" {
			req.MFAVerifiedAt = f.clock.Now().Add(-time.Minute)
		}
		return req, nil
	}
	var reached audit.Actor
	h := f.e.Middleware(mapper, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = audit.ActorFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name, method, host, path string
		hdr                      map[string]string
		authn                    *audit.Actor // actor set by earlier middleware
		want                     int
	}{
		{"editor writes", http.MethodPut, "acme.example", "/data/r", map[string]string{"X-User": "alice"}, nil, 204},
		{"viewer cannot write", http.MethodPut, "acme.example", "/data/r", map[string]string{"X-User": "bob"}, nil, 403},
		{"unmappable", http.MethodGet, "acme.example", "/data/r", nil, nil, 403},
		{"panicking map", http.MethodGet, "acme.example", "/data/r", map[string]string{"X-User": "bob", "X-Boom": "1"}, nil, 403},
		{"unknown method", http.MethodPost, "acme.example", "/data/r", map[string]string{"X-User": "alice"}, nil, 403},
		{"cross-tenant host", http.MethodGet, "acme.example", "/admin/x", map[string]string{"X-User": "carol", "X-MFA": "1"}, nil, 403},
		{"tenant mismatch with authn", http.MethodGet, "globex.example", "/data/r", map[string]string{"X-User": "bob"}, &audit.Actor{Subject: "bob", Tenant: "acme"}, 403},
		{"matching authn", http.MethodGet, "acme.example", "/data/r", map[string]string{"X-User": "bob"}, &audit.Actor{Subject: "bob", Tenant: "acme"}, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = audit.Actor{}
			r := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			if tt.authn != nil {
				r = r.WithContext(audit.WithActor(r.Context(), *tt.authn))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == 204 && reached.Subject != tt.hdr["X-User"] {
				t.Fatalf("handler saw actor %+v", reached)
			}
			if tt.want == 403 && reached != (audit.Actor{}) {
				t.Fatal("handler reached on deny")
			}
		})
	}
	// The path traversal is cleaned by net/http's mux only when a mux is
	// used; the middleware itself must refuse it.
	r := httptest.NewRequest(http.MethodGet, "http://acme.example/data/x", nil)
	r.URL.Path = "/data/../admin/x"
	r.Header.Set("X-User", "bob")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Fatalf("traversal: status %d", w.Code)
	}
	if h := f.e.Middleware(nil, http.NotFoundHandler()); true {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != 403 {
			t.Fatalf("nil MapFunc: status %d", w.Code)
		}
	}
}
