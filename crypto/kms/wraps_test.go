package kms_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

// wrapN wraps n DEKs with kek and counts them per key id into count.
func wrapN(t *testing.T, kek *kms.LocalKEK, n int, count map[kms.KeyID]uint64) {
	t.Helper()
	dek := make([]byte, 32)
	for i := 0; i < n; i++ {
		id, _, err := kek.Wrap(context.Background(), nil, dek, []byte("ad"))
		if err != nil {
			t.Fatalf("wrap %d: %v", i, err)
		}
		count[id]++
	}
}

// checkCounts checks that no key version wrapped more than limit DEKs and
// that the keyring's counts (reserved in the file) are at least the wraps
// made.
func checkCounts(t *testing.T, r *kms.Keyring, count map[kms.KeyID]uint64, limit uint64) {
	t.Helper()
	reserved := map[kms.KeyID]uint64{}
	for _, si := range r.List() {
		for _, ki := range si.Keys {
			reserved[ki.ID] = ki.Wraps
		}
	}
	for id, n := range count {
		if n > limit {
			t.Errorf("key %s wrapped %d DEKs; limit %d", id, n, limit)
		}
		if reserved[id] < n {
			t.Errorf("key %s: %d wraps counted, %d made", id, reserved[id], n)
		}
	}
}

// TestWrapLimitRotates checks that wraps are counted per key version,
// persisted, and that the scope rotates, audited, before a version wraps
// more than Config.RotateAfter DEKs.
func TestWrapLimitRotates(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	rec := cfg.Logger.(*audit.Recorder)
	cfg.RotateAfter = 640 // blocks of 10
	path := filepath.Join(t.TempDir(), "keys.json")
	r, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	count := map[kms.KeyID]uint64{}
	wrapN(t, r.KEK(sc), 2000, count)
	if len(count) != 4 {
		t.Errorf("%d key versions used for 2000 wraps at 640 per version; want 4", len(count))
	}
	checkCounts(t, r, count, 640)
	rotations := 0
	for _, e := range rec.Events() {
		if e.Action == "crypto.key_rotate" && e.Reason == "wrap limit" {
			rotations++
		}
	}
	if rotations != 3 {
		t.Errorf("%d audited rotations; want 3", rotations)
	}
	// The counts survive a restart (or a crash: the block in use is
	// counted whole).
	r2, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, r2, count, 640)
	wrapN(t, r2.KEK(sc), 700, count)
	checkCounts(t, r2, count, 640)
}

// TestWrapCountShared checks that two keyrings on one file (two
// processes) count into the same versions: together they never wrap more
// than the limit under one version.
func TestWrapCountShared(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	cfg.RotateAfter = 128 // blocks of 2
	path := filepath.Join(t.TempDir(), "keys.json")
	a, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := a.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	b, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	count := map[kms.KeyID]uint64{}
	for i := 0; i < 50; i++ {
		wrapN(t, a.KEK(sc), 7, count)
		wrapN(t, b.KEK(sc), 5, count)
	}
	c, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, count, 128)
	if len(count) < 5 {
		t.Errorf("600 wraps at 128 per version used %d versions", len(count))
	}
}

// failMaster is a master key whose Encrypt can be made to fail.
type failMaster struct {
	tink.AEAD
	fail *atomic.Bool
}

func (m failMaster) Encrypt(p, ad []byte) ([]byte, error) {
	if m.fail.Load() {
		return nil, errors.New("kms unreachable")
	}
	return m.AEAD.Encrypt(p, ad)
}

// TestWrapRefusedWithoutRotation checks that Wrap refuses once a version
// reached the limit and the scope cannot rotate, and that it refuses
// when it cannot persist the count at all.
func TestWrapRefusedWithoutRotation(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	cfg.RotateAfter = 64 // blocks of 1
	var fail atomic.Bool
	cfg.Master = failMaster{AEAD: cfg.Master, fail: &fail}
	r, err := kms.Create(ctx, filepath.Join(t.TempDir(), "keys.json"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	count := map[kms.KeyID]uint64{}
	wrapN(t, r.KEK(sc), 64, count)
	fail.Store(true)
	if _, _, err := r.KEK(sc).Wrap(ctx, nil, make([]byte, 32), nil); !errors.Is(err, kms.ErrWrapLimit) {
		t.Fatalf("wrap past the limit without rotation: %v; want ErrWrapLimit", err)
	}
	fail.Store(false)
	wrapN(t, r.KEK(sc), 1, count) // rotates
	fail.Store(true)
	if _, _, err := r.KEK(sc).Wrap(ctx, nil, make([]byte, 32), nil); err == nil {
		t.Fatal("wrap without a reserved count")
	}
	checkCounts(t, r, count, 64)
}

// TestWrapCountConcurrent wraps from many goroutines at once.
func TestWrapCountConcurrent(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	cfg.RotateAfter = 640
	r, err := kms.Create(ctx, filepath.Join(t.TempDir(), "keys.json"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	counts := make([]map[kms.KeyID]uint64, 8)
	done := make(chan struct{})
	for g := range counts {
		counts[g] = map[kms.KeyID]uint64{}
		go func() {
			defer func() { done <- struct{}{} }()
			dek := make([]byte, 32)
			for i := 0; i < 300; i++ {
				id, _, err := r.KEK(sc).Wrap(ctx, nil, dek, nil)
				if err != nil {
					t.Error(err)
					return
				}
				counts[g][id]++
			}
		}()
	}
	total := map[kms.KeyID]uint64{}
	for range counts {
		<-done
	}
	for _, c := range counts {
		for id, n := range c {
			total[id] += n
		}
	}
	checkCounts(t, r, total, 640)
}

// TestWrapNoncesDistinct checks that wrap nonces never repeat.
func TestWrapNoncesDistinct(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	r, err := kms.Create(ctx, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	dek := make([]byte, 32)
	for i := 0; i < 10000; i++ {
		_, w, err := r.KEK(sc).Wrap(ctx, nil, dek, nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(w[:12])] {
			t.Fatalf("wrap %d: nonce %x repeated", i, w[:12])
		}
		seen[string(w[:12])] = true
	}
}
