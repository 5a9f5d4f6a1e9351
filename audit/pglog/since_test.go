package pglog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testpg"
)

// TestVerifySince: a checkpoint an auditor saved proves growth of the
// PostgreSQL log, and catches a log the key holder replaced with a
// shorter or rewritten one signed with the same key.
func TestVerifySince(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/since")
	write := func(dsn string, from, to, cut int) []byte {
		l, err := openDSN(ctx, t, dsn, pglog.Config{Signer: k.signer})
		if err != nil {
			t.Fatal(err)
		}
		var saved []byte
		for i := from; i < to; i++ {
			if i == cut {
				cp, err := l.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				saved = cp.Note
			}
			if err := l.Log(ctx, testEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return saved
	}
	dsn := testpg.Schema(t)
	saved := write(dsn, 0, 10, 6)
	if rep, err := pglog.VerifySince(ctx, poolFor(t, dsn), k.verifier, saved); err != nil || rep.Size != 10 {
		t.Fatalf("honest growth: %+v, %v", rep, err)
	}
	short := testpg.Schema(t)
	write(short, 0, 3, -1)
	rewritten := testpg.Schema(t)
	write(rewritten, 100, 110, -1)
	for name, other := range map[string]string{"rolled back": short, "rewritten": rewritten} {
		if _, err := verifyDSN(ctx, t, other, k.verifier); err != nil {
			t.Fatalf("%s: the operator's log verifies on its own: %v", name, err)
		}
		if _, err := pglog.VerifySince(ctx, poolFor(t, other), k.verifier, saved); !errors.Is(err, audit.ErrNotConsistent) {
			t.Errorf("%s: %v, want ErrNotConsistent", name, err)
		}
	}
	if _, err := pglog.VerifySince(ctx, poolFor(t, dsn), k.verifier, []byte("not a checkpoint")); !errors.Is(err, audit.ErrBadProof) {
		t.Errorf("garbage checkpoint: %v, want ErrBadProof", err)
	}
}
