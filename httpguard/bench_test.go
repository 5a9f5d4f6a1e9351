package httpguard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
	"github.com/tomkit/tomkit/rbac"
)

func openFileLog(b *testing.B) *audit.FileLog {
	b.Helper()
	skey, _, err := audit.GenerateKey("bench.example/audit")
	if err != nil {
		b.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open(context.Background(), b.TempDir(), audit.FileConfig{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l
}

// BenchmarkGuard measures the guard chain (authentication, rate limit,
// tenant binding, rbac, buffering, error mapping, one durable access-log
// event) against a plain net/http handler that does the same durable
// append to an audit.FileLog and writes the same body: the ratio is the
// guard's overhead beyond the audit write.
func BenchmarkGuard(b *testing.B) {
	body := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "note "+r.PathValue("id"))
	}
	path := "/v1/tenants/acme/notes/n1"
	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer tok-alice")
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	}
	b.Run("baseline", func(b *testing.B) {
		log := openFileLog(b)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/tenants/{tenant}/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
			err := log.Log(r.Context(), audit.Event{
				Actor:  audit.Actor{Subject: "alice", Tenant: "acme"},
				Action: "notes.note.read", Resource: r.URL.Path, Outcome: audit.OutcomeAllow,
				Attributes: []audit.Attr{audit.String("http.method", r.Method), audit.String("http.status", strconv.Itoa(200)), audit.Personal("client.address", r.RemoteAddr)},
			})
			if err != nil {
				http.Error(w, "audit", http.StatusServiceUnavailable)
				return
			}
			body(w, r)
		})
		run(b, mux)
	})
	b.Run("guard", func(b *testing.B) {
		log := openFileLog(b)
		enf, err := rbac.New(context.Background(), rbac.Config{Logger: log, Policy: []byte("p, editor, acme, /notes/*, read, allow\ng, alice, editor, acme\n")})
		if err != nil {
			b.Fatal(err)
		}
		g, err := httpguard.New(httpguard.Config{
			Service: "notes", Logger: log, Enforcer: enf, Rate: 1e9, Burst: 1 << 30,
			Authenticator: tokens{"tok-alice": {Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}},
		})
		if err != nil {
			b.Fatal(err)
		}
		g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.read", Action: "read", Object: "/notes/{id}"},
			func(w http.ResponseWriter, r *http.Request) error { body(w, r); return nil })
		run(b, g)
	})
}
