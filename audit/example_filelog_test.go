package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/tomkit/tomkit/audit"
)

// Open a log, record an event, and verify the log with the public key
// alone.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	skey, vkey, err := audit.GenerateKey("audit.example.com/billing")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: signer})
	if err != nil {
		log.Fatal(err)
	}
	ctx = audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "acme"})
	err = l.Log(ctx, audit.Event{
		Action:     "invoice.read",
		Resource:   "invoice/42",
		Outcome:    audit.OutcomeAllow,
		Attributes: []audit.Attr{audit.Personal("customer", "Erika Mustermann")},
	})
	if err != nil {
		log.Fatal(err) // fail the audited action: never log-and-allow
	}
	if err := l.Close(); err != nil {
		log.Fatal(err)
	}

	verifier, err := audit.NewVerifier(vkey)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := audit.Verify(ctx, dir, verifier)
	fmt.Println(rep.Size, rep.Checkpoint.Size, err)
	// Output: 1 1 <nil>
}

// An auditor who holds the pseudonymization key searches the log for a
// known e-mail address by computing its pseudonym.
func ExamplePseudonymizer_Pseudonym() {
	p, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "2026-01", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		log.Fatal(err)
	}
	needle, _ := p.Pseudonym("", "erika@example.com")
	fmt.Println(needle)
	// Output: hmac-sha256:2026-01:929fc6328e55afb882c73c131592f24123bf8d4d63ae3c251bac029edec30692
}
