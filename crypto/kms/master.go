package kms

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/internal/errtext"
)

// MasterKeyEnv is the environment variable [MasterKeyFromEnv] reads.
const MasterKeyEnv = "TOMKIT_MASTER_KEY"

// GenerateMasterKey returns a fresh master key in its text form: the
// standard base64 encoding of 32 random bytes (what `openssl rand -base64
// 32` prints). Store it in a secret manager, or in a file only its owner
// can read, and never next to the keyring file.
func GenerateMasterKey() string {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic("kms: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(k[:])
}

// ParseMasterKey returns the AES-256-GCM master key (a Tink AEAD) encoded
// in s, the standard base64 encoding of 32 bytes. Surrounding white space
// is ignored. Anything else is [ErrInvalidMasterKey].
func ParseMasterKey(s string) (tink.AEAD, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%w: want the base64 encoding of 32 bytes", ErrInvalidMasterKey)
	}
	a, err := subtle.NewAESGCM(k)
	clear(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMasterKey, err)
	}
	return a, nil
}

// MasterKeyFromEnv returns the master key in the environment variable
// TOMKIT_MASTER_KEY, or [ErrNoMasterKey] when it is unset or empty.
func MasterKeyFromEnv() (tink.AEAD, error) {
	s := os.Getenv(MasterKeyEnv)
	if s == "" {
		return nil, fmt.Errorf("%w: %s is not set", ErrNoMasterKey, MasterKeyEnv)
	}
	return ParseMasterKey(s)
}

// MasterKeyFromFile returns the master key stored in the file at path. The
// file must be a regular file that neither group nor others may read or
// write (mode 0600 or stricter); otherwise it is refused with
// [ErrLoosePermissions] before it is read.
func MasterKeyFromFile(path string) (tink.AEAD, error) {
	if err := checkPerm(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errtext.Errorf("kms: master key: %w", err)
	}
	defer clear(b)
	return ParseMasterKey(string(b))
}

// RemoteMasterKey returns the AEAD of the key keyURI in an external KMS,
// for use as [Config.Master]: the keyring file is then encrypted by the
// KMS, and its keys cannot be read without it. The client is passed
// explicitly; tomkit never uses Tink's global KMS client registry.
func RemoteMasterKey(client registry.KMSClient, keyURI string) (tink.AEAD, error) {
	if client == nil || !client.Supported(keyURI) {
		return nil, fmt.Errorf("%w: client does not support %q", ErrNoMasterKey, keyURI)
	}
	a, err := client.GetAEAD(keyURI)
	if err != nil {
		return nil, errtext.Errorf("kms: master key %q: %w", keyURI, err)
	}
	return a, nil
}

// checkPerm refuses a file that is not regular or is accessible to group
// or others.
func checkPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errtext.Errorf("kms: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("kms: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o", ErrLoosePermissions, path, fi.Mode().Perm())
	}
	return nil
}
