package httpguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
	"github.com/tomkit/tomkit/rbac"
)

// printLog is an audit.Logger that prints the access log; a service uses
// an audit.FileLog or audit.PostgresLog.
type printLog struct{}

func (printLog) Log(_ context.Context, e audit.Event) error {
	if e.Action != "rbac.decide" {
		fmt.Println("audit:", e.Action, e.Actor.Subject, e.Outcome)
	}
	return nil
}

// idp stands in for an OIDC verifier: it maps a token to the subject, its
// tenant and the time the identity provider last verified its MFA.
type idp map[string]httpguard.Principal

func (m idp) Authenticate(_ context.Context, token string) (httpguard.Principal, error) {
	if p, ok := m[token]; ok {
		return p, nil
	}
	return httpguard.Principal{}, errors.New("unknown token")
}

func Example() {
	enf, _ := rbac.New(context.Background(), rbac.Config{Logger: printLog{}, Policy: []byte(`
p, editor, acme, /notes/*, read, allow
p, editor, acme, /notes/*, delete, allow, mfa
g, alice, editor, acme
`)})
	g, err := httpguard.New(httpguard.Config{
		Service:       "notes",
		Logger:        printLog{},
		Authenticator: idp{"tok-alice": {Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}}, // no MFA
		Enforcer:      enf,
	})
	if err != nil {
		panic(err)
	}
	g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.read", Action: "read", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, "note "+r.PathValue("id")+"\n")
			return err
		})
	g.Handle("DELETE /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.delete", Action: "delete", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	srv := httptest.NewServer(g)
	defer srv.Close()

	call := func(method, path, token string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %.60s", resp.StatusCode, b)
		if len(b) > 60 {
			fmt.Println()
		}
	}
	call("GET", "/v1/tenants/acme/notes/n1", "tok-alice")
	call("GET", "/v1/tenants/acme/notes/n1", "")
	call("DELETE", "/v1/tenants/acme/notes/n1", "tok-alice")
	// Output:
	// audit: notes.note.read alice allow
	// 200 note n1
	// audit: notes.note.read anonymous deny
	// 401 {"error":{"code":"unauthenticated","message":"missing or inv
	// audit: notes.note.delete alice deny
	// 403 {"error":{"code":"mfa_required","message":"this action requi
}

// This example serves a health check that is not audited, and tells an
// unknown tenant (404 unknown_tenant) from another principal's (403).
func Example_tenantsAndHealth() {
	enf, _ := rbac.New(context.Background(), rbac.Config{Logger: printLog{}, Policy: []byte(`
p, editor, acme, /notes/*, read, allow
g, alice, editor, acme
`)})
	tenants := map[string]bool{"acme": true, "globex": true}
	g, err := httpguard.New(httpguard.Config{
		Service:       "notes",
		Logger:        printLog{},
		Authenticator: idp{"tok-alice": {Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}},
		Enforcer:      enf,
		KnownTenant:   func(t string) bool { return tenants[t] },
	})
	if err != nil {
		panic(err)
	}
	g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.read", Action: "read", Object: "/notes/{id}"},
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, "note "+r.PathValue("id")+"\n")
			return err
		})
	g.Handle("GET /healthz", httpguard.Route{Name: "health", Public: true, Unaudited: true},
		func(w http.ResponseWriter, r *http.Request) error {
			return httpguard.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
	srv := httptest.NewServer(g)
	defer srv.Close()

	for _, path := range []string{"/healthz", "/v1/tenants/globex/notes/n1", "/v1/tenants/initech/notes/n1"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok-alice")
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %.50s\n", resp.StatusCode, b)
	}
	// Output:
	// 200 {"status":"ok"}
	//
	// audit: notes.note.read alice deny
	// 403 {"error":{"code":"forbidden","message":"access den
	// audit: notes.note.read alice deny
	// 404 {"error":{"code":"unknown_tenant","message":"no su
}
