package pgstore_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/rbac/pgstore"
)

// Every instance of a service opens the same store; a change on one is
// announced to the others.
func ExampleOpen() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	st, err := pgstore.Open(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	e, err := rbac.New(ctx, rbac.Config{
		Logger: &audit.Recorder{},
		Policy: []byte("p, editor, acme, /data/*, write, allow\n"), // seeds an empty table
		Store:  st,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
}
