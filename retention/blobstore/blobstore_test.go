package blobstore_test

import (
	"context"
	"errors"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/retention/internal/storetest"
)

func TestConformanceMemblob(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		return open(t, b)
	})
}

func TestConformanceFileblob(t *testing.T) {
	storetest.Run(t, func(t *testing.T) retention.Backend {
		b, err := fileblob.OpenBucket(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return open(t, b)
	})
}

func TestMetadataVisibleAndChecked(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	m := storetest.Meta(retention.ClassContent, time.Hour)
	s, err := open(t, b).Partition(m.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", strings.NewReader("x"), m); err != nil {
		t.Fatal(err)
	}
	const blobKey = "tenants/tenant-a/k" // the tenant's prefix, then the key
	a, err := b.Attributes(ctx, blobKey)
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata[blobstore.MetaClass] != "content" || a.Metadata[blobstore.MetaUntil] != m.RetainUntil.Format(time.RFC3339Nano) {
		t.Fatalf("blob metadata = %v", a.Metadata)
	}
	// A blob whose plain metadata was edited to look longer-lived is
	// corrupt, not live.
	tampered := map[string]string{}
	for k, v := range a.Metadata {
		tampered[k] = v
	}
	tampered[blobstore.MetaUntil] = m.RetainUntil.Add(time.Hour).Format(time.RFC3339Nano)
	if err := b.WriteAll(ctx, blobKey, []byte("x"), &blob.WriterOptions{Metadata: tampered}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, retention.ErrCorruptMeta) {
		t.Fatalf("tampered Stat = %v, want ErrCorruptMeta", err)
	}
	if err := b.WriteAll(ctx, "tenants/tenant-a/raw", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "raw"); !errors.Is(err, retention.ErrCorruptMeta) {
		t.Fatalf("blob without record: %v, want ErrCorruptMeta", err)
	}
}

// open returns the backend over b, failing t if it cannot.
func open(t testing.TB, b *blob.Bucket) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenRefusesNilBucket(t *testing.T) {
	if _, err := blobstore.Open(context.Background(), nil); !errors.Is(err, blobstore.ErrNoBucket) {
		t.Fatalf("Open(nil) = %v, want ErrNoBucket", err)
	}
}

func TestOpenRefusesUnreachableBucket(t *testing.T) {
	b := memblob.OpenBucket(nil)
	b.Close() // every call now fails, as an unreachable bucket's do
	if _, err := blobstore.Open(context.Background(), b); !errors.Is(err, blobstore.ErrNoBucket) {
		t.Fatalf("Open(closed bucket) = %v, want ErrNoBucket", err)
	}
}
