package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
)

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

	skey, _ := os.ReadFile(signerPath)
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	appendEvents := func(dir string, n int) {
		l, err := audit.Open(context.Background(), dir, audit.FileConfig{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := l.Log(context.Background(), audit.Event{Action: "doc.read", Resource: "doc/4", Outcome: audit.OutcomeAllow}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	appendEvents(dir, 2)
	code, out, errOut = runCLI(t, "", "audit", "verify", "--key", verifier, "--since", saved, dir)
	if code != exitOK || !strings.Contains(out, "OK: 5 records") || !strings.Contains(out, "extends the saved checkpoint") {
		t.Fatalf("honest growth: %d %q %q", code, out, errOut)
	}

	// The key holder's rollback: a new log of two records, signed with
	// the same key. It verifies on its own, but not since the checkpoint.
	rolled := t.TempDir()
	appendEvents(rolled, 2)
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
