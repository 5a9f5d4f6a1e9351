package retention_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/retention/fsstore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "retention-example")
	defer os.RemoveAll(dir)
	backend, _ := fsstore.Open(context.Background(), dir)

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var log audit.Recorder
	store, err := retention.New(backend, retention.Config{
		Logger: &log,
		Clock:  audit.ClockFunc(func() time.Time { return now }),
	})
	if err != nil {
		panic(err)
	}
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})

	m, _ := store.Put(ctx, "chat/42", strings.NewReader("hello"), retention.PutOptions{
		Class:     retention.ClassContent,
		RetainFor: 7 * 24 * time.Hour,
	})
	fmt.Println("retain until:", m.RetainUntil.Format(time.DateOnly))

	rc, _, _ := store.Get(ctx, "chat/42")
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println("read:", string(b))

	now = now.Add(8 * 24 * time.Hour)
	_, _, err = store.Get(ctx, "chat/42")
	fmt.Println("after a week:", errors.Is(err, retention.ErrExpired))

	// The purge runs across tenants, so only an operator may run it.
	ops := retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "purge-job"}), "nightly purge")
	rep, _ := store.Purge(ops, retention.PurgeOptions{})
	fmt.Println("purged:", rep.Deleted)
	// Output:
	// retain until: 2026-01-08
	// read: hello
	// after a week: true
	// purged: 1
}

func ExampleStore_Put_tooLong() {
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var log audit.Recorder
	backend, _ := blobstore.Open(context.Background(), bucket)
	store, _ := retention.New(backend, retention.Config{Logger: &log})

	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "backup-job", Tenant: "acme"})
	_, err := store.Put(ctx, "db/2026-01-01", strings.NewReader("..."), retention.PutOptions{
		Class:     retention.ClassBackup,
		RetainFor: 60 * 24 * time.Hour, // the default backup maximum is 30 days
	})
	fmt.Println(errors.Is(err, retention.ErrRetentionTooLong))
	// Output:
	// true
}

func ExampleStore_SetLegalHold() {
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var log audit.Recorder
	backend, _ := blobstore.Open(context.Background(), bucket)
	store, _ := retention.New(backend, retention.Config{
		Logger: &log,
		Clock:  audit.ClockFunc(func() time.Time { return now }),
	})
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "legal", Tenant: "acme"})
	store.Put(ctx, "mail/7", strings.NewReader("evidence"), retention.PutOptions{Class: retention.ClassLog, RetainFor: 24 * time.Hour})
	store.SetLegalHold(ctx, "mail/7", true)

	now = now.Add(48 * time.Hour) // past the maximum age
	ops := retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "purge-job"}), "nightly purge")
	rep, _ := store.Purge(ops, retention.PurgeOptions{})
	fmt.Println("deleted:", rep.Deleted, "held:", rep.Held)
	fmt.Println(errors.Is(store.Delete(ctx, "mail/7"), retention.ErrLegalHold))
	// Output:
	// deleted: 0 held: [acme/mail/7]
	// true
}

func ExampleConfig_zeroDataRetention() {
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var log audit.Recorder
	backend, _ := blobstore.Open(context.Background(), bucket)
	store, _ := retention.New(backend, retention.Config{Logger: &log, ZDR: retention.ZDRRefuse})
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "svc", Tenant: "acme"})

	_, err := store.Put(ctx, "prompt/1", strings.NewReader("client question"), retention.PutOptions{Class: retention.ClassContent})
	fmt.Println(errors.Is(err, retention.ErrZeroRetention))
	_, err = store.Put(ctx, "usage/1", strings.NewReader(`{"tokens":812}`), retention.PutOptions{Class: retention.ClassMetadata})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

func ExampleStore_tenants() {
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var log audit.Recorder
	backend, _ := blobstore.Open(context.Background(), bucket)
	store, _ := retention.New(backend, retention.Config{Logger: &log})
	acme := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	globex := audit.WithActor(context.Background(), audit.Actor{Subject: "gina", Tenant: "globex"})

	// The same key names a different object in each tenant.
	store.Put(acme, "notes/1", strings.NewReader("acme's note"), retention.PutOptions{Class: retention.ClassContent})
	_, _, err := store.Get(globex, "notes/1")
	fmt.Println("globex reads acme's note:", errors.Is(err, retention.ErrNotFound))
	store.Put(globex, "notes/1", strings.NewReader("globex's note"), retention.PutOptions{Class: retention.ClassContent})
	rc, _, _ := store.Get(acme, "notes/1")
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println("acme reads:", string(b))

	// No tenant in ctx: refused before anything reaches the backend.
	_, err = store.Put(context.Background(), "notes/2", strings.NewReader("?"), retention.PutOptions{Class: retention.ClassContent})
	fmt.Println(errors.Is(err, retention.ErrNoTenant))
	// Output:
	// globex reads acme's note: true
	// acme reads: acme's note
	// true
}

func ExampleStore_Migrate() {
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var log audit.Recorder
	backend, _ := blobstore.Open(context.Background(), bucket)
	// An object written before tenant partitioning: its record names the
	// tenant that wrote it.
	now := time.Now()
	backend.Unpartitioned().Put(context.Background(), "invoice/1", strings.NewReader("42 EUR"),
		retention.Meta{Class: retention.ClassMetadata, Created: now, RetainUntil: now.Add(time.Hour), Tenant: "acme"})

	store, _ := retention.New(backend, retention.Config{Logger: &log})
	acme := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	_, err := store.Stat(acme, "invoice/1")
	fmt.Println("before:", errors.Is(err, retention.ErrUnpartitioned))

	ops := retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "ops"}), "upgrade to tenant partitions")
	rep, err := store.Migrate(ops, retention.MigrateOptions{})
	fmt.Println("moved:", rep.Moved, err)
	_, err = store.Stat(acme, "invoice/1")
	fmt.Println("after:", err)
	// Output:
	// before: true
	// moved: 1 <nil>
	// after: <nil>
}
