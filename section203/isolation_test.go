package section203_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/section203"
)

func newIsolation(t *testing.T, rec *audit.Recorder) (*section203.Isolation, *section203.Modes, string) {
	t.Helper()
	ctx := context.Background()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: rec})
	if err != nil {
		t.Fatal(err)
	}
	g, modes := newGuard(t, rec)
	root := t.TempDir()
	iso, err := g.Isolation(section203.IsolationConfig{
		Keyring: ring,
		Backend: func(_ context.Context, ns string) (retention.Backend, error) {
			return fsstore.Open(context.Background(), filepath.Join(root, ns))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return iso, modes, root
}

func TestIsolation(t *testing.T) {
	var rec audit.Recorder
	iso, modes, root := newIsolation(t, &rec)
	kanzleiCtx, shopCtx := bound(modes, "kanzlei"), bound(modes, "normal")

	kanzlei, err := iso.Open(kanzleiCtx)
	if err != nil {
		t.Fatal(err)
	}
	shop, err := iso.Open(shopCtx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := iso.Open(kanzleiCtx); again != kanzlei {
		t.Error("a second Open returned another silo")
	}
	if kanzlei.Namespace == shop.Namespace || kanzlei.Namespace != section203.Namespace("kanzlei") {
		t.Fatalf("namespaces %q, %q", kanzlei.Namespace, shop.Namespace)
	}
	if kanzlei.Mode != section203.On || shop.Mode != section203.Off {
		t.Fatalf("modes %v, %v", kanzlei.Mode, shop.Mode)
	}

	// Own KEK: a ciphertext of one tenant does not open with the other's
	// envelope, under either context.
	ct, err := kanzlei.Envelope.Seal(kanzleiCtx, nil, []byte("Mandantenakte"), kanzlei.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := kanzlei.Envelope.Open(kanzleiCtx, nil, ct, kanzlei.Context()); err != nil || string(pt) != "Mandantenakte" {
		t.Fatalf("own open: %q, %v", pt, err)
	}
	for _, ec := range []map[string]string{kanzlei.Context(), shop.Context()} {
		if _, err := shop.Envelope.Open(shopCtx, nil, ct, ec); err == nil {
			t.Fatalf("the other tenant's envelope opened the ciphertext with context %v", ec)
		}
	}
	if _, err := kanzlei.Envelope.Open(kanzleiCtx, nil, ct, shop.Context()); err == nil {
		t.Fatal("ciphertext opened under another tenant's context")
	}

	// Zero data retention for content in § 203 mode; normal operation
	// stores it, in its own namespace only.
	_, err = kanzlei.Store.Put(kanzleiCtx, "doc-1", strings.NewReader("secret"), retention.PutOptions{Class: retention.ClassContent})
	if !errors.Is(err, retention.ErrZeroRetention) {
		t.Fatalf("§ 203 content write: err %v, want ErrZeroRetention", err)
	}
	if _, err := shop.Store.Put(shopCtx, "doc-1", strings.NewReader("order"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kanzlei.Store.Get(kanzleiCtx, "doc-1"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("the § 203 tenant sees the other tenant's object: %v", err)
	}
	files := map[string]int{}
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			files[strings.Split(rel, string(filepath.Separator))[0]]++
		}
		return nil
	})
	if files[shop.Namespace] == 0 || files[kanzlei.Namespace] != 0 {
		t.Fatalf("files per namespace %v", files)
	}

	if _, err := iso.Open(context.Background()); !errors.Is(err, section203.ErrNoTenant) || !errors.Is(err, section203.ErrRefused) {
		t.Fatalf("no tenant: %v", err)
	}
	var opens int
	for _, e := range rec.Events() {
		if e.Action == "section203.isolate" {
			opens++
		}
	}
	if opens != 4 {
		t.Fatalf("%d isolate events, want 4", opens)
	}
}

func TestNamespace(t *testing.T) {
	seen := map[string]string{}
	for _, tenant := range []string{"a", "b", "A", "a/../b", "kanzlei", "kanzlei ", ""} {
		ns := section203.Namespace(tenant)
		if len(ns) != 34 || !strings.HasPrefix(ns, "t-") || strings.ContainsAny(ns, "/\\. ") {
			t.Errorf("Namespace(%q) = %q", tenant, ns)
		}
		if other, dup := seen[ns]; dup {
			t.Errorf("Namespace(%q) = Namespace(%q)", tenant, other)
		}
		seen[ns] = tenant
	}
}
