package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testpg"
)

// appendEvents opens the log at target (a directory, or a DSN for a
// PostgreSQL log) with the signer key file signerPath, appends n events
// and closes it.
func appendEvents(t *testing.T, target, signerPath string, n int) {
	t.Helper()
	skey, err := os.ReadFile(signerPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var l interface {
		Log(context.Context, audit.Event) error
		Close() error
	}
	if isDSN(target) {
		pool, err := pgxpool.New(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		l, err = pglog.Open(ctx, pool, pglog.Config{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
	} else if l, err = audit.Open(ctx, target, audit.FileConfig{Signer: s}); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := l.Log(ctx, audit.Event{Action: "doc.read", Resource: "doc/4", Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditVerifySince: the auditor saves the checkpoint a verification
// saw; a later verification --since it passes for honest growth and
// fails for a log the key holder rolled back and signed again.
func TestAuditVerifySince(t *testing.T) {
	dir, signerPath, verifier := auditFixture(t)
	saved := filepath.Join(t.TempDir(), "checkpoint.note")
	code, out, errOut := runCLI(t, "", "audit", "verify", "--key", verifier, "--save", saved, dir)
	if code != exitOK || !strings.Contains(out, "saved the checkpoint of size 3") {
		t.Fatalf("verify --save: %d %q %q", code, out, errOut)
	}
	appendEvents(t, dir, signerPath, 2)
	code, out, errOut = runCLI(t, "", "audit", "verify", "--key", verifier, "--since", saved, dir)
	if code != exitOK || !strings.Contains(out, "OK: 5 records") || !strings.Contains(out, "extends the saved checkpoint") {
		t.Fatalf("honest growth: %d %q %q", code, out, errOut)
	}

	// The key holder's rollback: a new log of two records, signed with
	// the same key. It verifies on its own, but not since the checkpoint.
	rolled := t.TempDir()
	appendEvents(t, rolled, signerPath, 2)
	if code, out, _ := runCLI(t, "", "audit", "verify", "--key", verifier, rolled); code != exitOK {
		t.Fatalf("the rolled-back log alone: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "", "audit", "verify", "--key", verifier, "--since", saved, rolled)
	if code != exitFailure || !strings.Contains(out, "does not extend the saved checkpoint") {
		t.Fatalf("rollback: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "", "audit", "verify", "--key", verifier, "--since", filepath.Join(t.TempDir(), "none"), dir); code != exitFailure || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing checkpoint file: %d %q", code, errOut)
	}
}

// TestAuditVerifySincePostgres: --save and --since work on a PostgreSQL
// log too.
func TestAuditVerifySincePostgres(t *testing.T) {
	dsn := testpg.Schema(t)
	_, signerPath, verifier := auditFixture(t)
	appendEvents(t, dsn, signerPath, 3)
	saved := filepath.Join(t.TempDir(), "cp.note")
	if code, out, errOut := runCLI(t, "", "audit", "verify", "--key", verifier, "--save", saved, dsn); code != exitOK {
		t.Fatalf("verify --save: %d %q %q", code, out, errOut)
	}
	appendEvents(t, dsn, signerPath, 2)
	if code, out, errOut := runCLI(t, "", "audit", "verify", "--key", verifier, "--since", saved, dsn); code != exitOK || !strings.Contains(out, "extends the saved checkpoint") {
		t.Fatalf("verify --since: %d %q %q", code, out, errOut)
	}
	other := testpg.Schema(t)
	if code, out, _ := runCLI(t, "", "audit", "verify", "--key", verifier, "--since", saved, other); code != exitFailure {
		t.Fatalf("a different (empty) database: %d %q", code, out)
	}
}
