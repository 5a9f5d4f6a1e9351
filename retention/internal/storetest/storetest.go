// Package storetest is the conformance suite every [retention.Backend]
// passes. Each backend's tests call [Run] with a function that opens a
// fresh, empty backend. Besides the object semantics of a
// [retention.Partition], it runs the tenant-isolation battery: partitions
// and tenant names at the backend, every [retention.Store] operation under
// the same tenant, another tenant, no actor and an actor without a tenant,
// the operator path (purge, backups) across tenants, and the migration of
// a store written before partitioning (written through
// [retention.Backend.Unpartitioned]).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention"
)

// T0 is the base instant of the suite's records.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// Meta returns a valid record created at T0 and retained for d.
func Meta(class retention.Class, d time.Duration) retention.Meta {
	return retention.Meta{Class: class, Created: T0, RetainUntil: T0.Add(d), Tenant: "tenant-a", Subject: "alice"}
}

func put(t *testing.T, b retention.Partition, key string, data []byte, m retention.Meta) {
	t.Helper()
	if err := b.Put(context.Background(), key, bytes.NewReader(data), m); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, b retention.Partition, key string) ([]byte, retention.Meta) {
	t.Helper()
	rc, m, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	return data, m
}

func sameMeta(t *testing.T, got, want retention.Meta) {
	t.Helper()
	if got.Class != want.Class || !got.Created.Equal(want.Created) || !got.RetainUntil.Equal(want.RetainUntil) ||
		!got.LockUntil.Equal(want.LockUntil) || got.Mode != want.Mode || got.LegalHold != want.LegalHold ||
		got.Tenant != want.Tenant || got.Subject != want.Subject {
		t.Fatalf("meta = %+v, want %+v", got, want)
	}
}

func keys(es []retention.Entry) []string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.Key)
	}
	return ks
}

// Run runs the conformance suite against backends returned by open, which
// must return a fresh, empty backend each time it is called.
func Run(t *testing.T, open func(t *testing.T) retention.Backend) {
	ctx := context.Background()
	openPart := func(t *testing.T) retention.Partition {
		t.Helper()
		p, err := open(t).Partition("tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	runTenants(t, open)

	t.Run("RoundTrip", func(t *testing.T) {
		b := openPart(t)
		big := make([]byte, 3<<20+17)
		rand.Read(big)
		cases := []struct {
			key  string
			data []byte
			meta retention.Meta
		}{
			{"empty", nil, Meta(retention.ClassMetadata, time.Hour)},
			{"small/ä-ü", []byte("hello"), Meta(retention.ClassContent, 24*time.Hour)},
			{"big", big, Meta(retention.ClassBackup, 30*24*time.Hour)},
			{"locked", []byte("x"), func() retention.Meta {
				m := Meta(retention.ClassLog, 48*time.Hour)
				m.LockUntil, m.Mode, m.LegalHold = T0.Add(time.Hour), retention.LockCompliance, true
				return m
			}()},
		}
		for _, c := range cases {
			put(t, b, c.key, c.data, c.meta)
		}
		for _, c := range cases {
			data, m := get(t, b, c.key)
			if !bytes.Equal(data, c.data) {
				t.Fatalf("Get(%q): %d bytes, want %d", c.key, len(data), len(c.data))
			}
			sameMeta(t, m, c.meta)
			sm, err := b.Stat(ctx, c.key)
			if err != nil {
				t.Fatal(err)
			}
			sameMeta(t, sm, c.meta)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		b := openPart(t)
		put(t, b, "k", []byte("one"), Meta(retention.ClassContent, time.Hour))
		m2 := Meta(retention.ClassMetadata, 2*time.Hour)
		put(t, b, "k", []byte("two"), m2)
		data, m := get(t, b, "k")
		if string(data) != "two" {
			t.Fatalf("got %q", data)
		}
		sameMeta(t, m, m2)
	})

	t.Run("Missing", func(t *testing.T) {
		b := openPart(t)
		if _, _, err := b.Get(ctx, "nope"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("Get missing = %v", err)
		}
		if _, err := b.Stat(ctx, "nope"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("Stat missing = %v", err)
		}
		if err := b.Delete(ctx, "nope"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("Delete missing = %v", err)
		}
		if err := b.SetMeta(ctx, "nope", Meta(retention.ClassLog, time.Hour)); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("SetMeta missing = %v", err)
		}
	})

	t.Run("BadMetaRefused", func(t *testing.T) {
		b := openPart(t)
		m := Meta(retention.ClassLog, time.Hour)
		m.RetainUntil = T0.Add(-time.Hour)
		if err := b.Put(ctx, "k", strings.NewReader("x"), m); !errors.Is(err, retention.ErrCorruptMeta) {
			t.Fatalf("Put with inconsistent meta = %v, want ErrCorruptMeta", err)
		}
		if _, err := b.Stat(ctx, "k"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("refused Put left an object: %v", err)
		}
	})

	t.Run("FailedWriteKeepsOld", func(t *testing.T) {
		b := openPart(t)
		m := Meta(retention.ClassLog, time.Hour)
		put(t, b, "k", []byte("old"), m)
		err := b.Put(ctx, "k", io.MultiReader(strings.NewReader("partial"), errReader{}), Meta(retention.ClassContent, time.Hour))
		if err == nil {
			t.Fatal("Put with failing reader succeeded")
		}
		data, got := get(t, b, "k")
		if string(data) != "old" {
			t.Fatalf("after failed Put: %q", data)
		}
		sameMeta(t, got, m)
	})

	t.Run("SetMetaDelete", func(t *testing.T) {
		b := openPart(t)
		put(t, b, "k", []byte("data"), Meta(retention.ClassLog, time.Hour))
		m := Meta(retention.ClassLog, time.Hour)
		m.LegalHold = true
		if err := b.SetMeta(ctx, "k", m); err != nil {
			t.Fatal(err)
		}
		data, got := get(t, b, "k")
		if string(data) != "data" {
			t.Fatalf("SetMeta changed content: %q", data)
		}
		sameMeta(t, got, m)
		if err := b.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Stat(ctx, "k"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("after Delete: %v", err)
		}
	})

	t.Run("ListOrderAndCursor", func(t *testing.T) {
		b := openPart(t)
		var want []string
		for i := 0; i < 25; i++ {
			k := fmt.Sprintf("k%03d", (i*7)%25)
			put(t, b, k, []byte(k), Meta(retention.ClassLog, time.Duration(i+1)*time.Hour))
		}
		for i := 0; i < 25; i++ {
			want = append(want, fmt.Sprintf("k%03d", i))
		}
		put(t, b, "a", nil, Meta(retention.ClassLog, time.Hour))
		put(t, b, "ab", nil, Meta(retention.ClassLog, time.Hour))
		want = append([]string{"a", "ab"}, want...)
		var got []string
		after := ""
		for {
			es, err := b.List(ctx, after, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			if len(es) > 4 {
				t.Fatalf("List returned %d > limit", len(es))
			}
			got = append(got, keys(es)...)
			after = es[len(es)-1].Key
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List = %v, want %v", got, want)
		}
	})

	t.Run("ListExpired", func(t *testing.T) {
		b := openPart(t)
		for i := 0; i < 10; i++ {
			put(t, b, fmt.Sprintf("k%d", i), nil, Meta(retention.ClassLog, time.Duration(i+1)*time.Hour))
		}
		// Tightened policy: a metadata object created at T0 with a long
		// retain-until is still expired under a CreatedBefore cutoff.
		put(t, b, "tight", nil, Meta(retention.ClassMetadata, 100*time.Hour))
		cut := retention.Cutoff{Now: T0.Add(5 * time.Hour), CreatedBefore: map[retention.Class]time.Time{
			retention.ClassMetadata: T0, retention.ClassLog: T0.Add(-time.Hour)}}
		es, err := b.ListExpired(ctx, cut, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(keys(es)), "[k0 k1 k2 k3 k4 tight]"; got != want {
			t.Fatalf("ListExpired = %v, want %v", got, want)
		}
		es, err = b.ListExpired(ctx, cut, "k2", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(keys(es)), "[k3 k4]"; got != want {
			t.Fatalf("ListExpired after k2 = %v, want %v", got, want)
		}
	})

	t.Run("DeleteExpiredRechecks", func(t *testing.T) {
		b := openPart(t)
		cut := retention.Cutoff{Now: T0.Add(2 * time.Hour)}
		put(t, b, "expired", nil, Meta(retention.ClassLog, time.Hour))
		put(t, b, "live", nil, Meta(retention.ClassLog, 3*time.Hour))
		held := Meta(retention.ClassLog, time.Hour)
		held.LegalHold = true
		put(t, b, "held", nil, held)
		locked := Meta(retention.ClassLog, 4*time.Hour)
		locked.RetainUntil = T0.Add(time.Hour) // expired
		locked.LockUntil, locked.Mode = T0.Add(time.Hour), retention.LockGovernance
		put(t, b, "lock-ended", nil, locked)
		put(t, b, "rewritten", nil, Meta(retention.ClassLog, time.Hour))
		es, err := b.ListExpired(ctx, cut, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(keys(es)), "[expired held lock-ended rewritten]"; got != want {
			t.Fatalf("ListExpired = %v, want %v", got, want)
		}
		// Rewritten with a live record after it was listed.
		put(t, b, "rewritten", []byte("new"), Meta(retention.ClassLog, 10*time.Hour))
		del, err := b.DeleteExpired(ctx, cut, []string{"expired", "live", "held", "lock-ended", "rewritten", "missing"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(del), "[expired lock-ended]"; got != want {
			t.Fatalf("DeleteExpired = %v, want %v", got, want)
		}
		for _, k := range []string{"live", "held", "rewritten"} {
			if _, err := b.Stat(ctx, k); err != nil {
				t.Fatalf("%s lost: %v", k, err)
			}
		}
		if data, _ := get(t, b, "rewritten"); string(data) != "new" {
			t.Fatalf("rewritten = %q", data)
		}
		// Idempotent.
		del, err = b.DeleteExpired(ctx, cut, []string{"expired", "lock-ended"})
		if err != nil || len(del) != 0 {
			t.Fatalf("second DeleteExpired = %v, %v", del, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		b := openPart(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					k := fmt.Sprintf("c%d", i%5)
					v := []byte(fmt.Sprintf("%s-%d-%d", k, w, i))
					if err := b.Put(ctx, k, bytes.NewReader(v), Meta(retention.ClassLog, time.Hour)); err != nil {
						errs <- err
						return
					}
					rc, _, err := b.Get(ctx, k)
					if err != nil {
						errs <- err
						return
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !strings.HasPrefix(string(got), k+"-") {
						errs <- fmt.Errorf("torn read %q: %v", got, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("storetest: injected read failure") }
