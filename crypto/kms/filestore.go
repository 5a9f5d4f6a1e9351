package kms

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"

	"github.com/tomkit/tomkit/crypto/kms/internal/backend"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/internal/errtext"
)

// fileStore keeps a keyring in one file, for one instance (and the
// `tomkit keys` commands run beside it): changes are serialized by a lock
// on FILE.lock, and there is nothing to wait for or gate.
type fileStore struct{ path string }

var _ backend.Store = fileStore{}

func (f fileStore) Name() string { return f.path }

func (fileStore) Binding() string { return "" }

// Read reads the file under its lock, removing temporary files left by
// a crashed writer (they may hold keys shredded since).
func (f fileStore) Read(ctx context.Context, have backend.Version) ([]byte, backend.Version, error) {
	if err := checkPerm(f.path); err != nil {
		return nil, have, err
	}
	lock, err := f.lock()
	if err != nil {
		return nil, have, err
	}
	defer lock.Close()
	keyfile.RemoveStale(f.path)
	return fileTx(f).Read(ctx, have)
}

func (f fileStore) Create(_ context.Context, doc []byte) (backend.Version, error) {
	if _, err := os.Lstat(f.path); err == nil {
		return backend.Version{}, backend.ErrExist
	}
	lock, err := f.lock()
	if err != nil {
		return backend.Version{}, err
	}
	defer lock.Close()
	if err := keyfile.Write(f.path, doc, true); err != nil {
		if errors.Is(err, keyfile.ErrExist) {
			return backend.Version{}, backend.ErrExist
		}
		return backend.Version{}, errtext.Errorf("kms: save: %w", err)
	}
	return backend.Version{Sum: sha256.Sum256(doc)}, nil
}

func (f fileStore) Begin(context.Context) (backend.Tx, error) {
	lock, err := f.lock()
	if err != nil {
		return nil, err
	}
	keyfile.RemoveStale(f.path)
	return &lockedFile{path: f.path, lock: lock}, nil
}

func (fileStore) Applied(backend.Version)                       {}
func (fileStore) Settle(context.Context, backend.Version) error { return nil }
func (fileStore) Gate() *backend.Gate                           { return nil }
func (fileStore) Close() error                                  { return nil }
func (f fileStore) lock() (*os.File, error) {
	lock, err := keyfile.Lock(f.path)
	if err != nil {
		return nil, errtext.Errorf("kms: %w", err)
	}
	return lock, nil
}

// fileTx reads the file; the caller holds its lock.
type fileTx fileStore

func (f fileTx) Read(_ context.Context, have backend.Version) ([]byte, backend.Version, error) {
	if err := checkPerm(f.path); err != nil {
		return nil, have, err
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, have, errtext.Errorf("kms: %w", err)
	}
	v := backend.Version{Sum: sha256.Sum256(b)}
	if v == have {
		return nil, have, nil
	}
	return b, v, nil
}

// lockedFile is a change to the file under its lock.
type lockedFile struct {
	path string
	lock *os.File
}

func (l *lockedFile) Read(ctx context.Context, have backend.Version) ([]byte, backend.Version, error) {
	return fileTx{l.path}.Read(ctx, have)
}

// Write replaces the file atomically (see keyfile.Write). As a last
// guard, it refuses to replace a file that differs from have.
func (l *lockedFile) Write(_ context.Context, have backend.Version, doc []byte) (backend.Version, error) {
	cur, err := os.ReadFile(l.path)
	if err != nil {
		return have, errtext.Errorf("kms: save: %w", err)
	}
	if sha256.Sum256(cur) != have.Sum {
		return have, backend.ErrConflict
	}
	if err := keyfile.Write(l.path, doc, false); err != nil {
		return have, errtext.Errorf("kms: save: %w", err)
	}
	return backend.Version{Sum: sha256.Sum256(doc)}, nil
}

func (l *lockedFile) End() {
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
}
