package httpguard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

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

// memLog is an in-memory audit.Logger that encodes each event and appends
// it under a lock, as a durable sink does before its write.
type memLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (m *memLog) Log(ctx context.Context, e audit.Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	b, err := audit.Protect(e, nil).Marshal()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf.Len() > 1<<20 {
		m.buf.Reset()
	}
	m.buf.Write(b)
	return nil
}

// handlers returns the plain net/http baseline and the guard, both
// serving the same route and appending one event per request to log.
func handlers(b *testing.B, log audit.Logger) (baseline, guard http.Handler) {
	b.Helper()
	body := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "note "+r.PathValue("id"))
	}
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
	return mux, g
}

func serve(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "/v1/tenants/acme/notes/n1", nil)
	req.Header.Set("Authorization", "Bearer tok-alice")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// BenchmarkGuard measures the guard chain (authentication, rate limit,
// tenant binding, rbac, buffering, error mapping, one durable access-log
// event) against a plain net/http handler that does the same durable
// append to an audit.FileLog and writes the same body. Each iteration runs
// both, in alternating order, so that the disk's noise falls on both
// alike; "ratio" is guard time over baseline time, the guard's overhead
// beyond the audit write. The "memory" variant appends to an in-memory
// Logger instead: its ratio is the guard's CPU cost against an encode and
// append alone, a worst case no durable sink reaches.
func BenchmarkGuard(b *testing.B) {
	for _, v := range []struct {
		name string
		log  func(*testing.B) audit.Logger
	}{
		{"filelog", func(b *testing.B) audit.Logger { return openFileLog(b) }},
		{"memory", func(*testing.B) audit.Logger { return &memLog{} }},
	} {
		b.Run(v.name, func(b *testing.B) {
			base, guard := handlers(b, v.log(b))
			var tb, tg time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				first, second, t1, t2 := base, guard, &tb, &tg
				if i%2 == 1 {
					first, second, t1, t2 = guard, base, &tg, &tb
				}
				i++
				s := time.Now()
				serve(b, first)
				m := time.Now()
				serve(b, second)
				*t1 += m.Sub(s)
				*t2 += time.Since(m)
			}
			n := float64(i)
			b.ReportMetric(float64(tb.Nanoseconds())/n, "baseline-ns/req")
			b.ReportMetric(float64(tg.Nanoseconds())/n, "guard-ns/req")
			b.ReportMetric(float64(tg)/float64(tb), "ratio")
		})
	}
}
