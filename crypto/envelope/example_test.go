package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// exampleEnvelope returns an Envelope for tenant "acme" on an in-memory
// keyring. Real programs use kms.Open with a keyring file and
// kms.MasterKeyFromEnv, and a durable audit log.
func exampleEnvelope() (*kms.Keyring, *envelope.Envelope) {
	ctx := context.Background()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		log.Fatal(err)
	}
	var events audit.Recorder
	ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: &events})
	if err != nil {
		log.Fatal(err)
	}
	acme := audit.Actor{Tenant: "acme"}
	if err := ring.Create(ctx, acme); err != nil {
		log.Fatal(err)
	}
	env, err := envelope.New(ring.KEK(acme), envelope.Config{Logger: &events})
	if err != nil {
		log.Fatal(err)
	}
	return ring, env
}

func ExampleEnvelope_Seal() {
	ctx := context.Background()
	_, env := exampleEnvelope()
	ec := envelope.Context{"tenant": "acme", "object": "invoice-17"}

	ct, err := env.Seal(ctx, nil, []byte("IBAN DE89 3704 0044 0532 0130 00"), ec)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := env.Open(ctx, nil, ct, ec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", pt)

	_, err = env.Open(ctx, nil, ct, envelope.Context{"tenant": "acme", "object": "invoice-18"})
	fmt.Println(errors.Is(err, envelope.ErrAuthentication))
	// Output:
	// IBAN DE89 3704 0044 0532 0130 00
	// true
}

func ExampleEnvelope_Encrypt() {
	ctx := context.Background()
	_, env := exampleEnvelope()
	ec := envelope.Context{"tenant": "acme", "object": "backup-2026-11-22"}

	var stored bytes.Buffer // a file, a blob
	w, err := env.Encrypt(ctx, &stored, ec)
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "a large object, written in pieces")
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	r, err := env.Decrypt(ctx, &stored, ec)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(os.Stdout, r); err != nil {
		log.Fatal(err) // bytes already copied were authenticated
	}
	// Output: a large object, written in pieces
}

func ExampleEnvelope_Rewrap() {
	ctx := context.Background()
	ring, env := exampleEnvelope()
	ec := envelope.Context{"tenant": "acme"}
	acme := audit.Actor{Tenant: "acme"}

	ct, _ := env.Seal(ctx, nil, []byte("record"), ec)
	v, _ := ring.Rotate(ctx, acme)
	ct, err := env.Rewrap(ctx, nil, ct, ec) // payload untouched
	if err != nil {
		log.Fatal(err)
	}
	if err := ring.SetMinVersion(ctx, acme, v); err != nil { // retire version 1
		log.Fatal(err)
	}
	pt, err := env.Open(ctx, nil, ct, ec)
	fmt.Printf("%s %v\n", pt, err)
	// Output: record <nil>
}

func ExampleEnvelope_Open_shredded() {
	ctx := context.Background()
	ring, env := exampleEnvelope()
	ec := envelope.Context{"tenant": "acme"}

	ct, _ := env.Seal(ctx, nil, []byte("erase me"), ec)
	if err := ring.Shred(ctx, audit.Actor{Tenant: "acme"}); err != nil {
		log.Fatal(err)
	}
	_, err := env.Open(ctx, nil, ct, ec)
	fmt.Println(errors.Is(err, envelope.ErrKeyDestroyed))
	// Output: true
}
