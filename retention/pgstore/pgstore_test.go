package pgstore_test

import (
	"context"
	"testing"

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
