package kms_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tink-crypto/tink-go/v2/testing/fakekms"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

// TestRemoteMasterKey encrypts a keyring file under a key of an external
// KMS (Tink's in-process fake KMS client, which stands for AWS, GCP or
// Vault Transit here): the keyring opens with that key, not with another
// key of the same KMS, and a client that does not serve the URI is
// refused before any file is touched.
func TestRemoteMasterKey(t *testing.T) {
	ctx := context.Background()
	client, err := fakekms.NewClient("fake-kms://")
	if err != nil {
		t.Fatal(err)
	}
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	m, err := kms.RemoteMasterKey(client, uri)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	r, err := kms.Create(ctx, path, kms.Config{Master: m, Logger: new(audit.Recorder)})
	if err != nil {
		t.Fatal(err)
	}
	scope := audit.Actor{Tenant: "acme"}
	if err := r.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	id, wrapped, err := r.KEK(scope).Wrap(ctx, nil, make([]byte, 32), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}

	r2, err := kms.Open(ctx, path, kms.Config{Master: m, Logger: new(audit.Recorder)})
	if err != nil {
		t.Fatalf("reopen under the same KMS key: %v", err)
	}
	if _, err := r2.KEK(scope).Unwrap(ctx, nil, id, wrapped, []byte("ad")); err != nil {
		t.Fatalf("unwrap after reopen: %v", err)
	}

	other, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := kms.RemoteMasterKey(client, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kms.Open(ctx, path, kms.Config{Master: wrong, Logger: new(audit.Recorder)}); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Fatalf("open under another KMS key: %v, want ErrWrongMasterKey", err)
	}

	if _, err := kms.RemoteMasterKey(nil, uri); !errors.Is(err, kms.ErrNoMasterKey) {
		t.Errorf("nil client: %v, want ErrNoMasterKey", err)
	}
	if _, err := kms.RemoteMasterKey(client, "aws-kms://arn:aws:kms:eu-central-1:111122223333:key/x"); !errors.Is(err, kms.ErrNoMasterKey) {
		t.Errorf("unsupported URI: %v, want ErrNoMasterKey", err)
	}
}
