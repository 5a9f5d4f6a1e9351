package kms

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/internal/errtext"
)

// LoadOrCreateMasterKeyFile returns the master key in the file at path,
// as [MasterKeyFromFile] does, or, when there is no such file, creates it
// with a new key ([GenerateMasterKey]), mode 0600, written in full before
// it appears under its name, so that two processes starting at once end
// up with the same key. created reports whether the key is new.
//
// It is the bootstrap of a single instance on local disk. Replicas must
// share their master key: take it from a secret manager
// ([MasterKeyFromEnv]) or a KMS ([RemoteMasterKey]) instead. Never keep
// the key file next to the keyring file or in its backups.
func LoadOrCreateMasterKeyFile(path string) (key tink.AEAD, created bool, err error) {
	key, err = MasterKeyFromFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	text := GenerateMasterKey()
	if key, err = ParseMasterKey(text); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, errtext.Errorf("kms: master key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-master-*") // mode 0600
	if err != nil {
		return nil, false, errtext.Errorf("kms: master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(text + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Link fails if another process created the key first: use that one.
		if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
			key, err := MasterKeyFromFile(path)
			return key, false, err
		}
	}
	if err != nil {
		return nil, false, errtext.Errorf("kms: master key: %w", err)
	}
	return key, true, nil
}

// OpenOrCreate opens the keyring at path with [Open], or, when there is
// no keyring file yet, creates an empty one with [Create]. Two processes
// starting at once end up with the same keyring: only one creation
// succeeds, and the other process opens its file. created reports
// whether the keyring is new. A keyring that exists but does not open
// (a wrong master key, a tampered file, loose permissions) is an error,
// never replaced.
func OpenOrCreate(ctx context.Context, path string, cfg Config) (r *Keyring, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("kms: open or create: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, errtext.Errorf("kms: open or create: %w", err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		r, err := Create(ctx, path, cfg)
		if err == nil {
			return r, true, nil
		}
		if !errors.Is(err, ErrExist) {
			return nil, false, err
		}
	}
	r, err = Open(ctx, path, cfg)
	return r, false, err
}
