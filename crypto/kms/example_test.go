package kms_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyring")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyring.json")

	// In production: kms.MasterKeyFromEnv() or kms.MasterKeyFromFile.
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		log.Fatal(err)
	}
	var events audit.Recorder // in production: a durable audit.Logger
	cfg := kms.Config{Master: master, Logger: &events}

	ring, err := kms.Create(ctx, path, cfg)
	if err != nil {
		log.Fatal(err)
	}
	tenant := audit.Actor{Tenant: "kanzlei-meyer"}                   // a § 203 tenant: keys of its own
	subject := audit.Actor{Tenant: "kanzlei-meyer", Subject: "c-17"} // one client, shreddable alone
	for _, s := range []audit.Actor{tenant, subject} {
		if err := ring.Create(ctx, s); err != nil {
			log.Fatal(err)
		}
	}
	ring.Rotate(ctx, tenant)
	ring.SetMinVersion(ctx, tenant, 2)
	ring.Shred(ctx, subject)

	ring, err = kms.Open(ctx, path, cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range ring.List() {
		if !s.Destroyed.IsZero() {
			fmt.Println("shredded scope")
			continue
		}
		for _, k := range s.Keys {
			fmt.Printf("%s v%d primary=%v retired=%v\n", s.Scope.Tenant, k.Version, k.Primary, k.Retired)
		}
	}
	for _, e := range events.Events() {
		fmt.Println(e.Action)
	}
	// Output:
	// kanzlei-meyer v1 primary=false retired=true
	// kanzlei-meyer v2 primary=true retired=false
	// shredded scope
	// crypto.keyring_create
	// crypto.key_create
	// crypto.key_create
	// crypto.key_rotate
	// crypto.key_min_version
	// crypto.key_shred
	// crypto.keyring_open
}
