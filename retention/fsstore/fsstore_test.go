package fsstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		s, err := fsstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestCorruptHeader(t *testing.T) {
	dir := t.TempDir()
	s, err := fsstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader([]byte("data")), storetest.Meta(retention.ClassLog, time.Hour)); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "objects", "*", "*.obj"))
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
	dir := t.TempDir()
	s, err := fsstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader([]byte("data")), storetest.Meta(retention.ClassLog, time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash after the object was renamed aside for deletion.
	matches, _ := filepath.Glob(filepath.Join(dir, "objects", "*", "*.obj"))
	if err := os.Rename(matches[0], filepath.Join(dir, "tmp", "del-6b-deadbeef")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-abc"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := fsstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Stat(ctx, "k"); err != nil {
		t.Fatalf("tombstone not recovered: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp not cleaned: %v", left)
	}
}
