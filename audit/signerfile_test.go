package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tomkit/tomkit/audit"
)

func pubHash(t *testing.T, path string) uint32 {
	t.Helper()
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return v.KeyHash()
}

func TestLoadOrCreateSigner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "audit.key")
	s, created, err := audit.LoadOrCreateSigner(path, "test.example/audit")
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if pubHash(t, path) != s.Verifier().KeyHash() {
		t.Error(".pub does not hold the signer's verifier key")
	}
	again, created, err := audit.LoadOrCreateSigner(path, "other.example/audit")
	if err != nil || created || again.Verifier().KeyHash() != s.Verifier().KeyHash() || again.Verifier().Name() != "test.example/audit" {
		t.Fatalf("load: %v, created %v", err, created)
	}

	// A missing or foreign .pub is written again from the key.
	_, foreign, _ := audit.GenerateKey("foreign")
	for _, pub := range []string{"", foreign} {
		if pub == "" {
			os.Remove(path + ".pub")
		} else if err := os.WriteFile(path+".pub", []byte(pub), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := audit.LoadOrCreateSigner(path, "x"); err != nil {
			t.Fatal(err)
		}
		if pubHash(t, path) != s.Verifier().KeyHash() {
			t.Errorf("pub %q not repaired", pub)
		}
	}

	// Loose permissions are refused before the key is read, by both.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.LoadOrCreateSigner(path, "x"); !errors.Is(err, audit.ErrLoosePermissions) {
		t.Errorf("LoadOrCreateSigner, 0640: %v", err)
	}
	if _, err := audit.LoadSigner(path); !errors.Is(err, audit.ErrLoosePermissions) {
		t.Errorf("LoadSigner, 0640: %v", err)
	}
	// A damaged key is an error, never replaced by a new one.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("PRIVATE+KEY+garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.LoadOrCreateSigner(path, "x"); !errors.Is(err, audit.ErrBadKey) {
		t.Errorf("damaged key: %v", err)
	}
	if _, err := audit.LoadSigner(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
}

// TestLoadOrCreateSignerRace: starters racing on an empty directory end
// with one key, which every one of them uses and .pub names.
func TestLoadOrCreateSignerRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "audit.key")
		const n = 8
		var wg sync.WaitGroup
		hashes := make([]uint32, n)
		creators := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				s, created, err := audit.LoadOrCreateSigner(path, "race.example/audit")
				if err != nil {
					t.Error(err)
					return
				}
				hashes[i], creators[i] = s.Verifier().KeyHash(), created
			})
		}
		wg.Wait()
		var made int
		for i := range n {
			if hashes[i] != hashes[0] {
				t.Fatalf("round %d: starters use different keys: %x", round, hashes)
			}
			if creators[i] {
				made++
			}
		}
		if made != 1 {
			t.Errorf("round %d: %d starters report creating the key", round, made)
		}
		if pubHash(t, path) != hashes[0] {
			t.Errorf("round %d: .pub names another key", round)
		}
	}
}
