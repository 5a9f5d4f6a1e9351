package httpguard_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
	"github.com/tomkit/tomkit/tlsconfig"
)

// TestFileLogOverTLS serves over TLS into a real audit.FileLog with a
// pseudonymizer: the log holds exactly one record per response, with the
// response's request id, and the client address only as a pseudonym.
func TestFileLogOverTLS(t *testing.T) {
	ctx := context.Background()
	skey, _, err := audit.GenerateKey("test.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, err := audit.Open(ctx, dir, audit.FileConfig{Signer: signer, Pseudonymizer: ps})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	g, err := httpguard.New(httpguard.Config{
		Service: "notes", Logger: log,
		Authenticator: httpguard.AuthenticatorFunc(func(_ context.Context, tok string) (httpguard.Principal, error) {
			if tok != "tok-alice" {
				return httpguard.Principal{}, errors.New("unknown token")
			}
			return httpguard.Principal{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Handle("GET /v1/tenants/{tenant}/hello", httpguard.Route{Name: "hello", HandlerAuthorizes: true},
		func(w http.ResponseWriter, r *http.Request) error { return httpguard.JSON(w, 200, "hello") })
	srv := httptest.NewUnstartedServer(tlsconfig.SecureHeaders(g))
	srv.StartTLS()
	defer srv.Close()

	var ids []string
	for _, c := range []struct{ path, tok string }{{"/v1/tenants/acme/hello", "tok-alice"}, {"/v1/tenants/acme/hello", ""}, {"/nope", "tok-alice"}, {"/v1//x", "tok-alice"}} {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		cl := srv.Client()
		cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	cp, err := log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != int64(len(ids)) {
		t.Fatalf("%d records for %d responses", cp.Size, len(ids))
	}
	for i, id := range ids {
		p, err := audit.Prove(ctx, dir, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		e, err := audit.Unmarshal([]byte(p.Record))
		if err != nil {
			t.Fatal(err)
		}
		if e.RequestID != id {
			t.Errorf("record %d has request id %q, response %q", i, e.RequestID, id)
		}
		if a, _ := attr(e, "client.address"); !strings.HasPrefix(a.Value, "hmac-sha256:k1:") || strings.Contains(p.Record, "127.0.0.1") {
			t.Errorf("record %d: client address %q not pseudonymized", i, a.Value)
		}
	}
}
