package pgstore_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/crypto/kms/pgstore"
)

// Every instance of a service opens the same keyring with the same
// master key; the first one creates it.
func ExampleOpen() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	master, err := kms.MasterKeyFromEnv() // the same on every instance
	if err != nil {
		log.Fatal(err)
	}
	var auditLog audit.Logger = new(audit.Recorder) // use the service's durable log (audit/pglog)
	ring, err := pgstore.Open(ctx, pool, kms.Config{Master: master, Logger: auditLog})
	if err != nil {
		log.Fatal(err) // kms.ErrWrongMasterKey: this instance has another master key
	}
	defer ring.Close()

	tenant := audit.Actor{Tenant: "acme"}
	if err := ring.Create(ctx, tenant); err != nil {
		log.Fatal(err)
	}
	env, err := envelope.New(ring.KEK(tenant), envelope.Config{Logger: auditLog, Cache: &envelope.Cache{}})
	if err != nil {
		log.Fatal(err)
	}
	ct, err := env.Seal(ctx, nil, []byte("hello"), envelope.Context{"tenant": "acme"})
	if err != nil {
		log.Fatal(err)
	}
	// After this returns, every instance refuses ct's key.
	if err := ring.Shred(ctx, tenant); err != nil {
		log.Fatal(err)
	}
	_ = ct
}
