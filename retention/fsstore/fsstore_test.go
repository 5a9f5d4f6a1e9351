package fsstore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		s, err := fsstore.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// partition opens the store at dir and returns its partition of the
// suite's tenant.
func partition(t testing.TB, dir string) retention.Partition {
	t.Helper()
	st, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Partition(storetest.Meta(retention.ClassLog, 0).Tenant)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCorruptHeader(t *testing.T) {
	dir := t.TempDir()
	s := partition(t, dir)
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader([]byte("data")), storetest.Meta(retention.ClassLog, time.Hour)); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "tenants", "tenant-a", "*", "*.obj"))
	if len(matches) != 1 {
		t.Fatalf("files: %v", matches)
	}
	raw, _ := os.ReadFile(matches[0])
	for i := 0; i < len(raw)-4; i++ { // every byte of header and record
		bad := bytes.Clone(raw)
		bad[i] ^= 0x55
		if err := os.WriteFile(matches[0], bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "k")
		if err == nil {
			// A flip inside a string value can still parse; it must
			// then still be a valid record.
			continue
		}
		if !errors.Is(err, retention.ErrCorruptMeta) {
			t.Fatalf("byte %d: Stat = %v, want ErrCorruptMeta", i, err)
		}
	}
}

func TestRecoverTombstone(t *testing.T) {
	for _, c := range []struct {
		name, glob, tomb string
		part             func(st *fsstore.Store) retention.Partition
	}{
		{"Tenant", filepath.Join("tenants", "tenant-a", "*", "*.obj"), "delt-74656e616e742d61-6b-deadbeef",
			func(st *fsstore.Store) retention.Partition { p, _ := st.Partition("tenant-a"); return p }},
		{"Unpartitioned", filepath.Join("objects", "*", "*.obj"), "del-6b-deadbeef",
			func(st *fsstore.Store) retention.Partition { return st.Unpartitioned() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := fsstore.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.part(st).Put(ctx, "k", bytes.NewReader([]byte("data")), storetest.Meta(retention.ClassLog, time.Hour)); err != nil {
				t.Fatal(err)
			}
			// Simulate a crash after the object was renamed aside for deletion.
			matches, _ := filepath.Glob(filepath.Join(dir, c.glob))
			if len(matches) != 1 {
				t.Fatalf("files: %v", matches)
			}
			if err := os.Rename(matches[0], filepath.Join(dir, "tmp", c.tomb)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tmp", "put-abc"), []byte("junk"), 0o600); err != nil {
				t.Fatal(err)
			}
			st2, err := fsstore.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.part(st2).Stat(ctx, "k"); err != nil {
				t.Fatalf("tombstone not recovered: %v", err)
			}
			if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
				t.Fatalf("tmp not cleaned: %v", left)
			}
		})
	}
}

// FuzzObjectHeader feeds arbitrary bytes as a stored object: Stat and Get
// must either return a valid record or ErrCorruptMeta, never panic.
func FuzzObjectHeader(f *testing.F) {
	dir := f.TempDir()
	s := partition(f, dir)
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader([]byte("content")), storetest.Meta(retention.ClassLog, time.Hour)); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "tenants", "tenant-a", "6b", "6b.obj")
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("TKR1\x00\x00\x00\x02{}"))
	f.Add([]byte("TKR1\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := s.Stat(ctx, "k")
		if err != nil {
			if !errors.Is(err, retention.ErrCorruptMeta) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("invalid record accepted: %v", err)
		}
	})
}

// TestOpenReadOnly checks that OpenReadOnly creates nothing, refuses a
// directory that is not a store, reads what Open wrote and refuses every
// write.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := fsstore.OpenReadOnly(context.Background(), missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly(missing): %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("OpenReadOnly created %s", missing)
	}
	if _, err := fsstore.OpenReadOnly(context.Background(), t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly(empty dir): %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	ws, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := ws.Partition("acme")
	m := retention.Meta{Class: retention.ClassLog, Created: time.Now().UTC(), RetainUntil: time.Now().Add(time.Hour).UTC(), Tenant: "acme"}
	if err := w.Put(ctx, "k", strings.NewReader("v"), m); err != nil {
		t.Fatal(err)
	}
	rs, err := fsstore.OpenReadOnly(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rs.Partition("acme")
	if _, err := r.Stat(ctx, "k"); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if es, err := r.List(ctx, "", 10); err != nil || len(es) != 1 {
		t.Fatalf("List: %v %v", es, err)
	}
	cut := retention.DefaultPolicy().Cutoff(time.Now().Add(1000 * 24 * time.Hour))
	for name, err := range map[string]error{
		"Put":           r.Put(ctx, "x", strings.NewReader("v"), m),
		"SetMeta":       r.SetMeta(ctx, "k", m),
		"Delete":        r.Delete(ctx, "k"),
		"DeleteExpired": func() error { _, err := r.DeleteExpired(ctx, cut, []string{"k"}); return err }(),
	} {
		if !errors.Is(err, fsstore.ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", name, err)
		}
	}
	if _, err := w.Stat(ctx, "k"); err != nil {
		t.Fatalf("object gone after refused writes: %v", err)
	}
}
