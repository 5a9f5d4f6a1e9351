package kms

import (
	"bytes"
	"context"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"

	"github.com/tomkit/tomkit/audit"
)

// TestWrapIsTinkAESGCM checks that the hot-path wrap is exactly Tink's
// AES256_GCM (RAW) of the keyset: Tink's own primitive decrypts it, and
// the wrap decrypts Tink's ciphertexts.
func TestWrapIsTinkAESGCM(t *testing.T) {
	ctx := context.Background()
	m, _ := ParseMasterKey(GenerateMasterKey())
	r, err := Create(ctx, "", Config{Master: m, Logger: new(audit.Recorder)})
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	r.Create(ctx, sc)
	r.Rotate(ctx, sc)
	k := r.KEK(sc)
	dek := bytes.Repeat([]byte{9}, 32)
	id, w, err := k.Wrap(ctx, nil, dek, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	s := r.state.Load().scopes[scopeKey{"t", ""}]
	if id.Key != s.primary.id || s.primary.version != 2 {
		t.Fatalf("wrapped under %v, primary %d v%d", id, s.primary.id, s.primary.version)
	}
	p, err := aead.New(s.handle)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decrypt(w, []byte("ad"))
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Tink decrypt: %v", err)
	}
	tw, err := p.Encrypt(dek, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Unwrap(ctx, nil, id, tw, []byte("ad")); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap of Tink ciphertext: %v", err)
	}
	ad := []byte("ad")
	if n := testing.AllocsPerRun(100, func() { _, w, _ = k.Wrap(ctx, w[:0], dek, ad) }); n != 0 && !raceEnabled {
		t.Fatalf("Wrap allocates %v times", n)
	}
}
