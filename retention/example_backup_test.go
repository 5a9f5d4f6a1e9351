package retention_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
)

func ExampleBackups() {
	var log audit.Recorder
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	// Backups cross tenants: the job runs as an operator.
	ops := retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "backup-job"}), "daily backup")
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	mem := func() retention.Backend {
		b, _ := blobstore.Open(ctx, memblob.OpenBucket(nil))
		return b
	}

	// The snapshot key: in production from a keyring file or a KMS.
	master, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	ring, _ := kms.Create(ctx, "", kms.Config{Master: master, Logger: &log})
	ring.Create(ctx, audit.Actor{Tenant: "backups"})
	env, _ := envelope.New(ring.KEK(audit.Actor{Tenant: "backups"}), envelope.Config{Logger: &log})

	src, _ := retention.New(mem(), retention.Config{Logger: &log, Clock: audit.ClockFunc(clock)})
	src.Put(ctx, "invoice/1", strings.NewReader("42 EUR"), retention.PutOptions{Class: retention.ClassMetadata})
	dst, _ := retention.New(mem(), retention.Config{Logger: &log, Clock: audit.ClockFunc(clock)})
	backups, _ := retention.NewBackups(retention.BackupConfig{Target: dst, Envelope: env}) // 30 days

	for day := 0; day < 45; day++ { // the daily job
		if day > 0 {
			now = now.Add(24 * time.Hour)
		}
		backups.Snapshot(ops, src)
		backups.Rotate(ops)
	}
	list, _ := backups.List(ops)
	fmt.Println("snapshots kept:", len(list))

	rep, err := backups.RestoreVerify(ops, list[len(list)-1].ID, mem())
	fmt.Println("restore test:", rep.Objects, "object(s),", err)
	// Output:
	// snapshots kept: 30
	// restore test: 1 object(s), <nil>
}

func ExampleEncrypted_Erase() {
	var log audit.Recorder
	ctx := context.Background()
	master, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	ring, _ := kms.Create(ctx, "", kms.Config{Master: master, Logger: &log})
	raw, _ := blobstore.Open(context.Background(), memblob.OpenBucket(nil))
	enc, _ := retention.NewEncrypted(raw, retention.EncryptConfig{Keyring: ring, Logger: &log})
	store, _ := retention.New(enc, retention.Config{Logger: &log})

	alice := audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "acme"})
	store.Put(alice, "cv/alice", strings.NewReader("curriculum vitae"), retention.PutOptions{Class: retention.ClassContent})

	// Art. 17 request: destroy alice's key. Every copy, backups included,
	// is unreadable from now on.
	enc.Erase(audit.WithActor(ctx, audit.Actor{Subject: "dpo", Tenant: "acme"}), audit.Actor{Tenant: "acme", Subject: "alice"})

	rc, _, err := store.Get(alice, "cv/alice")
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	fmt.Println(errors.Is(err, retention.ErrErased))
	// Output:
	// true
}
