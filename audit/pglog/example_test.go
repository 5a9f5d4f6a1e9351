package pglog_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
)

// Example opens a log on a pool, records an event, and verifies the log
// with the verifier key alone.
func Example() {
	ctx := context.Background()
	skey, vkey, _ := audit.GenerateKey("audit.example.com/billing")
	signer, _ := audit.NewSigner(skey)
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	log, err := pglog.Open(ctx, pool, pglog.Config{Signer: signer})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := log.Log(ctx, audit.Event{Action: "invoice.read", Outcome: audit.OutcomeAllow}); err != nil {
		fmt.Println(err) // fail the audited action
	}
	if err := log.Close(); err != nil {
		fmt.Println(err)
	}
	v, _ := audit.NewVerifier(vkey)
	rep, err := pglog.Verify(ctx, pool, v)
	fmt.Println(rep.Size, err)
}

// ExampleLog_Rotate moves a log to a new signing key. Every instance
// still holding the old key is refused from then on and must be
// restarted with the new one; auditors keep verifying with the first
// key, or switch to the new one.
func ExampleLog_Rotate() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	oldKey, _ := audit.NewSigner(os.Getenv("AUDIT_SIGNER_KEY"))
	log, err := pglog.Open(ctx, pool, pglog.Config{Signer: oldKey})
	if err != nil {
		fmt.Println(err) // audit.ErrWrongSigner if the log has another key
		return
	}
	defer log.Close()
	skey, _, _ := audit.GenerateKey("audit.example.com/billing")
	newKey, _ := audit.NewSigner(skey)
	if err := log.Rotate(ctx, newKey); err != nil {
		fmt.Println(err)
	}
}
