package pglog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"golang.org/x/mod/sumdb/note"
)

type testKeys struct {
	signer   *audit.Signer
	verifier note.Verifier
	skey     string
	vkey     string
}

func newKeys(t testing.TB, name string) testKeys {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{s, v, skey, vkey}
}

func testEvent(i int) audit.Event {
	return audit.Event{
		Time:     time.Date(2026, 11, 22, 10, 0, 0, i, time.UTC),
		Actor:    audit.Actor{Subject: fmt.Sprintf("user-%d", i%7), Tenant: "acme"},
		Action:   "doc.read",
		Resource: fmt.Sprintf("doc/%d", i),
		Outcome:  audit.OutcomeAllow,
	}
}

// benchEvent is a typical event: about 300 bytes encoded.
func benchEvent(i int64) audit.Event {
	return audit.Event{
		Time:      time.Date(2026, 11, 22, 10, 0, 0, int(i), time.UTC),
		Actor:     audit.Actor{Subject: "svc-billing@acme.example", Tenant: "acme"},
		Action:    "rbac.decide",
		Resource:  fmt.Sprintf("/tenants/acme/invoices/%d", i),
		Outcome:   audit.OutcomeAllow,
		Severity:  audit.SeverityInfo,
		RequestID: "req-8f14e45fceea167a5a36dedd4bea2543",
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:    "00f067aa0ba902b7",
		Attributes: []audit.Attr{
			audit.String("role", "invoice-reader"),
			audit.String("policy", "p, invoice-reader, /tenants/acme/invoices/*, read"),
		},
	}
}

var (
	poolsMu sync.Mutex
	pools   = map[string]*pgxpool.Pool{}
)

// poolFor returns one pool per DSN (each test schema has its own DSN),
// closed when the test that first asked for it ends.
func poolFor(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if p := pools[dsn]; p != nil {
		return p
	}
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	pools[dsn] = p
	t.Cleanup(func() {
		poolsMu.Lock()
		delete(pools, dsn)
		poolsMu.Unlock()
		p.Close()
	})
	return p
}

// verifyDSN and proveDSN verify and prove the log of the schema at dsn.
func verifyDSN(ctx context.Context, t testing.TB, dsn string, v note.Verifier) (audit.Report, error) {
	t.Helper()
	return pglog.Verify(ctx, poolFor(t, dsn), v)
}

func proveDSN(ctx context.Context, t testing.TB, dsn string, index int64) (*audit.InclusionProof, error) {
	t.Helper()
	return pglog.Prove(ctx, poolFor(t, dsn), index)
}

// openDSN opens the log of the schema at dsn.
func openDSN(ctx context.Context, t testing.TB, dsn string, cfg pglog.Config) (*pglog.Log, error) {
	t.Helper()
	return pglog.Open(ctx, poolFor(t, dsn), cfg)
}
