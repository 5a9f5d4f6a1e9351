package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/internal/storetest"
	"github.com/tomkit/tomkit/retention/pgstore"
)

func open(t testing.TB) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	dsn := testpg.Schema(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pgstore.Open(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// legacySchema is the table of a store written before tenant
// partitioning, as Open used to create it.
const legacySchema = `CREATE TABLE retention_objects (
	key          text COLLATE "C" PRIMARY KEY,
	class        text        NOT NULL,
	created      timestamptz NOT NULL,
	retain_until timestamptz NOT NULL,
	lock_until   timestamptz,
	mode         text        NOT NULL DEFAULT '',
	legal_hold   boolean     NOT NULL DEFAULT false,
	tenant       text        NOT NULL DEFAULT '',
	subject      text        NOT NULL DEFAULT '',
	data         bytea       NOT NULL
)`

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		dsn := testpg.Schema(t)
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		// An upgraded database: the old table is there (empty, or
		// filled by the migration test through Unpartitioned).
		if _, err := pool.Exec(context.Background(), legacySchema); err != nil {
			t.Fatal(err)
		}
		s, err := pgstore.Open(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestNoLegacyTable checks that a new database gets no old table, and
// that its unpartitioned key space is empty and refuses writes.
func TestNoLegacyTable(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('retention_objects') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("old table created: %v %v", exists, err)
	}
	if es, err := s.Unpartitioned().List(ctx, "", 10); err != nil || len(es) != 0 {
		t.Fatalf("Unpartitioned().List = %v, %v", es, err)
	}
	if err := s.Unpartitioned().Put(ctx, "k", strings.NewReader("x"), storetest.Meta(retention.ClassLog, time.Hour)); err == nil {
		t.Fatal("Put into a missing old table succeeded")
	}
}

func TestCorruptRowListed(t *testing.T) {
	st, pool := open(t)
	ctx := context.Background()
	m := storetest.Meta(retention.ClassLog, time.Hour)
	s, err := st.Partition(m.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := s.Put(ctx, k, strings.NewReader(k), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE retention_tenant_objects SET mode = 'bogus' WHERE key = 'a'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a"); !errors.Is(err, retention.ErrCorruptMeta) {
		t.Fatalf("Stat corrupt row = %v", err)
	}
	es, err := s.ListExpired(ctx, retention.Cutoff{Now: storetest.T0.Add(2 * time.Hour)}, "", 10)
	if err != nil || len(es) != 2 || !errors.Is(es[0].Err, retention.ErrCorruptMeta) || es[1].Err != nil {
		t.Fatalf("ListExpired = %+v, %v", es, err)
	}
}

// captureTracer records the last query whose SQL contains a marker.
type captureTracer struct {
	mu     sync.Mutex
	marker string
	sql    string
	args   []any
}

func (c *captureTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.marker) {
		c.mu.Lock()
		c.sql, c.args = d.SQL, d.Args
		c.mu.Unlock()
	}
	return ctx
}

func (c *captureTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestExpiryIndexUsed checks that on a table of mostly live rows the
// backend's own ListExpired query finds the expired rows through the
// expiry indexes, not by scanning the table.
func TestExpiryIndexUsed(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testpg.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := &captureTracer{marker: "ORDER BY key LIMIT"}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := pgstore.Open(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Partition("acme")
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO retention_tenant_objects (tenant, key, class, created, retain_until, data)
		SELECT 'acme', 'k' || lpad(i::text, 7, '0'), 'log', $1::timestamptz - interval '1 day',
			CASE WHEN i % 2000 = 0 THEN $1::timestamptz - interval '1 hour' ELSE $1::timestamptz + interval '10 days' END, '\x00'
		FROM generate_series(0, 99999) i`, storetest.T0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE retention_tenant_objects`); err != nil {
		t.Fatal(err)
	}
	es, err := s.ListExpired(ctx, retention.DefaultPolicy().Cutoff(storetest.T0), "", 1000)
	if err != nil || len(es) != 50 {
		t.Fatalf("ListExpired: %d entries, %v", len(es), err)
	}
	explainUsesExpiryIndex(t, pool, tr)
	// The one-statement purge takes its batch with the same query.
	tr.mu.Lock()
	tr.marker = "WITH taken"
	tr.mu.Unlock()
	pb, err := s.(retention.BatchPurger).PurgeBatch(ctx, retention.DefaultPolicy().Cutoff(storetest.T0), "", 1000, func([]byte) {})
	if err != nil || pb.Listed != 50 || len(pb.Kept) != 0 {
		t.Fatalf("PurgeBatch = %+v, %v", pb, err)
	}
	explainUsesExpiryIndex(t, pool, tr)
}

func explainUsesExpiryIndex(t *testing.T, pool *pgxpool.Pool, tr *captureTracer) {
	t.Helper()
	tr.mu.Lock()
	query, args := tr.sql, tr.args
	tr.mu.Unlock()
	rows, err := pool.Query(context.Background(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "retention_tenant_objects_retain_until") {
		t.Fatalf("expiry index not used:\n%s", plan.String())
	}
}
