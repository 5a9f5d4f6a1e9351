package retention_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// The per-tenant data path: one store for every tenant, each object
// encrypted under its writer's key in its tenant's partition. No tenant
// needs any setup: its key is created on its first write (audited as
// "crypto.key_create"). Real programs log to a durable audit log.
func ExampleNewEncrypted() {
	dir, _ := os.MkdirTemp("", "datapath")
	defer os.RemoveAll(dir)
	var auditLog audit.Recorder
	ctx := context.Background()

	master, _, err := kms.LoadOrCreateMasterKeyFile(filepath.Join(dir, "master.key")) // or kms.MasterKeyFromEnv
	if err != nil {
		log.Fatal(err)
	}
	ring, _, err := kms.OpenOrCreate(ctx, filepath.Join(dir, "keyring.json"), kms.Config{Master: master, Logger: &auditLog})
	if err != nil {
		log.Fatal(err)
	}
	backend, err := fsstore.Open(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		log.Fatal(err)
	}
	enc, err := retention.NewEncrypted(backend, retention.EncryptConfig{Keyring: ring, Logger: &auditLog})
	if err != nil {
		log.Fatal(err)
	}
	store, err := retention.New(enc, retention.Config{Logger: &auditLog})
	if err != nil {
		log.Fatal(err)
	}

	// Per request: the actor (tenant and subject) comes from authentication.
	ctx = audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "acme"})
	_, err = store.Put(ctx, "notes/1", strings.NewReader("meeting notes"), retention.PutOptions{Class: retention.ClassContent})
	if err != nil {
		log.Fatal(err)
	}
	rc, _, err := store.Get(ctx, "notes/1")
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	note, err := io.ReadAll(rc)
	fmt.Printf("%s %v\n", note, err)
	// Output:
	// meeting notes <nil>
}

// Data a product keeps outside the store, such as a column of its own
// database, is sealed with the tenant's Envelope and bound to the tenant
// and the object.
func ExampleEncrypted_Envelope() {
	var auditLog audit.Recorder
	master, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	ring, _ := kms.Create(context.Background(), "", kms.Config{Master: master, Logger: &auditLog})
	raw, _ := blobstore.Open(context.Background(), memblob.OpenBucket(nil))
	enc, _ := retention.NewEncrypted(raw, retention.EncryptConfig{Keyring: ring, Logger: &auditLog})

	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	env, err := enc.Envelope(ctx) // per use: cached, and the key is created on first use
	if err != nil {
		log.Fatal(err)
	}
	ct, err := env.Seal(ctx, nil, []byte("DE89 3704 0044 0532 0130 00"), retention.TenantContext(ctx, "customers/7/iban"))
	if err != nil {
		log.Fatal(err)
	}
	pt, err := env.Open(ctx, nil, ct, retention.TenantContext(ctx, "customers/7/iban"))
	fmt.Printf("%s %v\n", pt, err)

	_, err = enc.Envelope(context.Background())
	fmt.Println(err)
	// Output:
	// DE89 3704 0044 0532 0130 00 <nil>
	// retention: no tenant in context
}
