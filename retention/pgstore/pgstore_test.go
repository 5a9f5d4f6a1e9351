package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		s, _ := open(t)
		return s
	})
}

func TestCorruptRowListed(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	m := storetest.Meta(retention.ClassLog, time.Hour)
	for _, k := range []string{"a", "b"} {
		if err := s.Put(ctx, k, strings.NewReader(k), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE retention_objects SET mode = 'bogus' WHERE key = 'a'`); err != nil {
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
