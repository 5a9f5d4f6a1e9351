package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrBadKey reports a signer or verifier key that cannot be parsed.
var ErrBadKey = errors.New("audit: malformed key")

// GenerateKey returns a new Ed25519 key pair for signing checkpoints, in
// the golang.org/x/mod/sumdb/note text encoding. name becomes the log's
// origin (the first line of every checkpoint); use something that
// identifies the log, such as "audit.example.com/billing". Keep signerKey
// secret; publish verifierKey to auditors.
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return skey, vkey, nil
}

// Signer signs a log's checkpoints. Create one with [NewSigner]; its
// String method never prints key material.
type Signer struct {
	s    note.Signer
	v    note.Verifier
	vkey string // v in the note text encoding
}

// NewSigner parses a signer key as written by [GenerateKey] (or `tomkit
// audit keygen`).
func NewSigner(signerKey string) (*Signer, error) {
	signerKey = strings.TrimSpace(signerKey)
	s, err := note.NewSigner(signerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	// The note encoding is PRIVATE+KEY+name+hash+base64(alg || seed).
	parts := strings.SplitN(signerKey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, fmt.Errorf("%w: not an Ed25519 signer key", ErrBadKey)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("%w: inconsistent signer key", ErrBadKey)
	}
	return &Signer{s: s, v: v, vkey: vkey}, nil
}

// Verifier returns the public half of s.
func (s *Signer) Verifier() note.Verifier { return s.v }

// String returns the key's name, never its secret.
func (s *Signer) String() string { return "audit.Signer(" + s.s.Name() + ")" }

// NewVerifier parses a verifier key as written by [GenerateKey] (or
// `tomkit audit keygen`).
func NewVerifier(verifierKey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return v, nil
}
