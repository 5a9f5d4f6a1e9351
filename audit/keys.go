package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tomkit/tomkit/internal/errtext"
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

// ErrLoosePermissions reports a signer key file that group or others may
// access. It is refused before it is read.
var ErrLoosePermissions = errors.New("audit: key file permissions looser than 0600")

// LoadSigner reads the signer key file at path, as written by
// [LoadOrCreateSigner] or `tomkit audit keygen`. The file must be a
// regular file that neither group nor others may access; otherwise it is
// refused with [ErrLoosePermissions] before it is read.
func LoadSigner(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errtext.Errorf("audit: signer key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: signer key: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o", ErrLoosePermissions, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errtext.Errorf("audit: signer key: %w", err)
	}
	defer clear(b)
	s, err := NewSigner(string(b))
	if err != nil {
		return nil, errtext.Errorf("audit: signer key %s: %w", path, err)
	}
	return s, nil
}

// LoadOrCreateSigner loads the signer key file at path with
// [LoadSigner], or, when there is none, creates it with a new key named
// name (see [GenerateKey]): mode 0600, written in full before it appears
// under its name, so that two processes starting at once end up with the
// same key. The verifier key is written beside it, to path + ".pub", for
// auditors. created reports whether the key is new.
//
// This is the bootstrap of a single instance. Replicas that share a log
// must share its signer key too: distribute the file (or its content)
// from a secret store; a log refuses a signer that is not its own.
func LoadOrCreateSigner(path, name string) (s *Signer, created bool, err error) {
	s, err = LoadSigner(path)
	if err == nil {
		return s, false, writePub(path, s)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	skey, _, err := GenerateKey(name)
	if err != nil {
		return nil, false, err
	}
	if s, err = NewSigner(skey); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, errtext.Errorf("audit: signer key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-signer-*")
	if err != nil {
		return nil, false, errtext.Errorf("audit: signer key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(skey + "\n")
	if err == nil {
		err = tmp.Sync() // CreateTemp made it 0600
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Link fails if another process created the key first: use that one.
		if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
			s, err := LoadSigner(path)
			if err != nil {
				return nil, false, err
			}
			return s, false, writePub(path, s)
		}
	}
	if err != nil {
		return nil, false, errtext.Errorf("audit: signer key: %w", err)
	}
	return s, true, writePub(path, s)
}

// writePub makes path + ".pub" hold s's verifier key, replacing it
// atomically if it is missing or holds another key.
func writePub(path string, s *Signer) error {
	want := s.vkey + "\n"
	if b, err := os.ReadFile(path + ".pub"); err == nil && string(b) == want {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-verifier-*")
	if err != nil {
		return errtext.Errorf("audit: verifier key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(want)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path+".pub")
	}
	if err != nil {
		return errtext.Errorf("audit: verifier key: %w", err)
	}
	return nil
}
