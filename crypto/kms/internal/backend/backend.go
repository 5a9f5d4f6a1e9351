// Package backend is the seam between package kms and the places a
// keyring's sealed document is kept: the keyring file (package kms) and
// PostgreSQL (package kms/pgstore). A store keeps one document, already
// authenticated under the master key, and knows nothing of its content.
package backend

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Errors of a store. Package kms reports them as its own, so they carry
// no package prefix.
var (
	// ErrConflict reports a write whose base version is no longer the
	// stored one.
	ErrConflict = errors.New("keyring changed by another writer")
	// ErrExist reports a Create of a keyring that exists.
	ErrExist = errors.New("keyring exists")
	// ErrNotExist reports a Read of a keyring that does not exist.
	ErrNotExist = errors.New("no such keyring")
)

// Version identifies one stored document. A file store sets Sum (the
// SHA-256 of the file); a database sets Seq, which grows by one with
// each write.
type Version struct {
	Seq uint64
	Sum [32]byte
}

// Reader reads the stored document.
type Reader interface {
	// Read returns the stored document and its version, or nil and have
	// when the stored version is have.
	Read(ctx context.Context, have Version) ([]byte, Version, error)
}

// Store keeps one keyring's document.
type Store interface {
	Reader
	// Name names the keyring in audit events.
	Name() string
	// Binding is the name written into the document, with each
	// version's Seq, so that a document cannot be moved to another
	// keyring or replayed under a later version; empty for none (a file).
	Binding() string
	// Create stores the first document, or fails with ErrExist.
	Create(ctx context.Context, doc []byte) (Version, error)
	// Begin starts a change: it takes the store's exclusive lock, which
	// other processes wait for, until Tx.End.
	Begin(ctx context.Context) (Tx, error)
	// Applied tells the store that the keyring now uses the document at v.
	Applied(v Version)
	// Settle returns once every other instance sharing the store has
	// applied v, or can no longer use keys without reading it.
	Settle(ctx context.Context, v Version) error
	// Gate returns the gate that every key use must pass; nil means
	// none (a single instance).
	Gate() *Gate
	// Close releases the store's resources.
	Close() error
}

// Tx is one change, under the store's lock.
type Tx interface {
	Reader
	// Write replaces the document at version have with doc and returns
	// its version; ErrConflict if have is not the stored version.
	Write(ctx context.Context, have Version, doc []byte) (Version, error)
	// End releases the lock, discarding the change if it was not
	// written.
	End()
}

// Gate says until when an instance may use keys: until the end of its
// lease, which it holds only while it has applied the latest version of
// the keyring. The zero Gate is closed.
type Gate struct {
	until atomic.Pointer[time.Time]
}

// Open lets keys be used until until.
func (g *Gate) Open(until time.Time) { g.until.Store(&until) }

// Close refuses key use until the next Open.
func (g *Gate) Close() { g.until.Store(nil) }

// Allows reports whether keys may be used at now.
func (g *Gate) Allows(now time.Time) bool {
	u := g.until.Load()
	return u != nil && now.Before(*u)
}

// OpenKeyring is set by package kms to its function that opens (or, with
// create, creates when missing) a keyring on a store. cfg is a kms.Config
// and the result a *kms.Keyring.
var OpenKeyring func(ctx context.Context, s Store, cfg any, create bool) (any, bool, error)
