package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// at is the fixed time of event i, so that two logs of the same events
// hold the same records.
func at(i int) time.Time { return time.Date(2026, 12, 1, 9, 0, i, 0, time.UTC) }

// writeLog appends events named prefix-0 .. prefix-(n-1) to a new file log
// in a fresh directory, signed by signer, and returns the directory and
// the note of the checkpoint taken after the first cut events.
func writeLog(t *testing.T, signer *audit.Signer, prefix string, n, cut int) (dir string, saved []byte) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	dir = t.TempDir()
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i == cut {
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			saved = cp.Note
		}
		if err := l.Log(ctx, audit.Event{Time: at(i), Action: "doc.read", Resource: fmt.Sprintf("%s-%d", prefix, i), Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, saved
}

// TestVerifySince: an auditor's saved checkpoint catches what Verify
// alone cannot: a log that the key holder rolled back or rewrote and
// signed again.
func TestVerifySince(t *testing.T) {
	skey, vkey, _ := audit.GenerateKey("audit.example.com/since")
	signer, _ := audit.NewSigner(skey)
	v, _ := audit.NewVerifier(vkey)
	ctx := context.Background()

	dir, saved := writeLog(t, signer, "doc", 20, 10)
	if rep, err := audit.VerifySince(ctx, dir, v, saved); err != nil || rep.Size != 20 {
		t.Fatalf("honest growth: %+v, %v", rep, err)
	}
	// The operator's other versions of the log, each signed with the
	// log's own key and each verifying clean on its own.
	for _, c := range []struct {
		name   string
		prefix string
		n      int
	}{
		{"rolled back below the saved checkpoint", "doc", 5},
		{"rewritten history of the same length", "forged", 20},
		{"rewritten history, longer", "forged", 40},
		{"one record changed", "doc", 20},
		{"identical history, grown", "doc", 30}, // the control: same records, more of them
	} {
		prefix, n := c.prefix, c.n
		var other string
		if c.name == "identical history, grown" {
			other, _ = writeLog(t, signer, "doc", 30, -1)
			if _, err := audit.VerifySince(ctx, other, v, saved); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if c.name == "one record changed" {
			// Same events but one, at index 3.
			other = rewriteOne(t, signer, 20, 3)
		} else {
			other, _ = writeLog(t, signer, prefix, n, -1)
		}
		if _, err := audit.Verify(ctx, other, v); err != nil {
			t.Fatalf("%s: Verify alone: %v (the operator's log should verify)", c.name, err)
		}
		if _, err := audit.VerifySince(ctx, other, v, saved); !errors.Is(err, audit.ErrNotConsistent) {
			t.Errorf("%s: VerifySince: %v, want ErrNotConsistent", c.name, err)
		}
	}
	// A checkpoint that the log's key did not sign proves nothing.
	otherKey, _, _ := audit.GenerateKey("audit.example.com/since")
	otherSigner, _ := audit.NewSigner(otherKey)
	_, foreign := writeLog(t, otherSigner, "doc", 20, 10)
	if _, err := audit.VerifySince(ctx, dir, v, foreign); !errors.Is(err, audit.ErrBadProof) {
		t.Errorf("foreign checkpoint: %v, want ErrBadProof", err)
	}
	if _, err := audit.VerifySince(ctx, dir, v, append(saved[:len(saved)-5:len(saved)-5], "xx\n\n"...)); !errors.Is(err, audit.ErrBadProof) {
		t.Errorf("damaged checkpoint: %v, want ErrBadProof", err)
	}
}

// rewriteOne writes the events of writeLog(prefix "doc") but with event
// i changed.
func rewriteOne(t *testing.T, signer *audit.Signer, n, i int) string {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	dir := t.TempDir()
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for j := range n {
		res := fmt.Sprintf("doc-%d", j)
		if j == i {
			res = "doc-changed"
		}
		if err := l.Log(ctx, audit.Event{Time: at(j), Action: "doc.read", Resource: res, Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
