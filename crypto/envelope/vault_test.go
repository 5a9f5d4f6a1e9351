package envelope_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// TestVaultTransit runs against a real Vault (VAULT_ADDR, VAULT_TOKEN;
// the transit engine mounted at "transit"). There is no fake Vault: the
// test is skipped when VAULT_ADDR is unset.
func TestVaultTransit(t *testing.T) {
	addr := os.Getenv("VAULT_ADDR")
	if addr == "" {
		t.Skip("VAULT_ADDR not set: skipping the Vault Transit test (no fake Vault)")
	}
	ctx := context.Background()
	cfg := api.DefaultConfig()
	vc, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := "tomkit-test-" + strings.ToLower(t.Name())
	// derived=false: see the Vault Transit section of kms.Remote.
	if _, err := vc.Logical().Write("transit/keys/"+name, map[string]any{"type": "aes256-gcm96", "derived": false}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(addr)
	client, err := hcvault.NewClientWithAEADOptions("hcvault://"+u.Host, vc.Logical())
	if err != nil {
		t.Fatal(err)
	}
	var rec audit.Recorder
	kek, err := kms.NewRemote(ctx, client, "hcvault://"+u.Host+"/transit/keys/"+name, &rec)
	if err != nil {
		t.Fatal(err)
	}
	e, err := envelope.New(kek, envelope.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := e.Seal(ctx, nil, []byte("vault"), ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(ctx, nil, v1, envelope.Context{"tenant": "other"}); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("wrong context: %v", err)
	}
	if _, err := vc.Logical().Write("transit/keys/"+name+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	re, err := e.Rewrap(ctx, nil, v1, ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.Logical().Write("transit/keys/"+name+"/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(ctx, nil, v1, ec); err == nil {
		t.Fatal("version 1 opened after min_decryption_version=2")
	}
	if got, err := e.Open(ctx, nil, re, ec); err != nil || string(got) != "vault" {
		t.Fatalf("rewrapped: %q, %v", got, err)
	}
}
