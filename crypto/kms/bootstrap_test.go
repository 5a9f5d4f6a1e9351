package kms_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

// sameKey reports whether a and b are the same AEAD key.
func sameKey(t *testing.T, a, b tink.AEAD) bool {
	t.Helper()
	ct, err := a.Encrypt([]byte("probe"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.Decrypt(ct, nil)
	return err == nil && bytes.Equal(pt, []byte("probe"))
}

func TestLoadOrCreateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "master.key")
	k, created, err := kms.LoadOrCreateMasterKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	again, created, err := kms.LoadOrCreateMasterKeyFile(path)
	if err != nil || created || !sameKey(t, k, again) {
		t.Fatalf("load: %v, created %v", err, created)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kms.LoadOrCreateMasterKeyFile(path); !errors.Is(err, kms.ErrLoosePermissions) {
		t.Errorf("0644: %v, want ErrLoosePermissions", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kms.LoadOrCreateMasterKeyFile(path); !errors.Is(err, kms.ErrInvalidMasterKey) {
		t.Errorf("damaged: %v, want ErrInvalidMasterKey (never a new key)", err)
	}
}

func TestOpenOrCreate(t *testing.T) {
	ctx := context.Background()
	master, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	var log audit.Recorder
	cfg := kms.Config{Master: master, Logger: &log}
	path := filepath.Join(t.TempDir(), "keys", "keyring.json")
	r, created, err := kms.OpenOrCreate(ctx, path, cfg)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	acme := audit.Actor{Tenant: "acme"}
	if err := r.Create(ctx, acme); err != nil {
		t.Fatal(err)
	}
	r2, created, err := kms.OpenOrCreate(ctx, path, cfg)
	if err != nil || created || len(r2.List()) != 1 {
		t.Fatalf("open: %v, created %v, %d scopes", err, created, len(r2.List()))
	}
	before, _ := os.ReadFile(path)
	other, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	if _, _, err := kms.OpenOrCreate(ctx, path, kms.Config{Master: other, Logger: &log}); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Errorf("wrong master key: %v, want ErrWrongMasterKey", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a keyring that did not open was replaced")
	}
	if _, _, err := kms.OpenOrCreate(ctx, "", cfg); err == nil {
		t.Error("empty path accepted")
	}
}

// TestBootstrapRace: starters racing on an empty directory end up with
// one master key and one keyring, and exactly one of them made each.
func TestBootstrapRace(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		dir := t.TempDir()
		const n = 6
		keys := make([]tink.AEAD, n)
		var madeKey, madeRing int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				k, created, err := kms.LoadOrCreateMasterKeyFile(filepath.Join(dir, "master.key"))
				if err != nil {
					t.Error(err)
					return
				}
				keys[i] = k
				_, ringMade, err := kms.OpenOrCreate(ctx, filepath.Join(dir, "keyring.json"), kms.Config{Master: k, Logger: &audit.Recorder{}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if created {
					madeKey++
				}
				if ringMade {
					madeRing++
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := 1; i < n; i++ {
			if !sameKey(t, keys[0], keys[i]) {
				t.Fatalf("round %d: starters hold different master keys", round)
			}
		}
		if madeKey != 1 || madeRing != 1 {
			t.Errorf("round %d: %d created the key, %d the keyring; want 1 each", round, madeKey, madeRing)
		}
	}
}
