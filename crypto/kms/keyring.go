package kms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
)

// Config configures a [Keyring]. Master and Audit are required; every
// other zero field has a safe meaning.
type Config struct {
	// Master encrypts the keyring file. Use [MasterKeyFromEnv],
	// [MasterKeyFromFile], [ParseMasterKey] or [RemoteMasterKey]. Nil is
	// refused with [ErrNoMasterKey].
	Master tink.AEAD
	// Audit receives one event per key operation (see the package
	// documentation). Nil is refused with [audit.ErrNoLogger].
	Audit audit.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// RotateAfter is how many DEKs one key version may wrap before the
	// keyring rotates its scope by itself (see "Key wrap limit" in the
	// package documentation). Zero means [DefaultRotateAfter]; larger
	// values are capped at it. Lower it to rotate sooner.
	RotateAfter uint64
}

// DefaultRotateAfter is the number of DEK wraps after which a key version
// is rotated: half of the 2^32 invocations with random nonces that NIST
// SP 800-38D allows one AES-GCM key.
const DefaultRotateAfter = 1 << 31

func (c *Config) rotateAfter() uint64 {
	if c.RotateAfter == 0 || c.RotateAfter > DefaultRotateAfter {
		return DefaultRotateAfter
	}
	return c.RotateAfter
}

// wrapBlock returns how many wraps a process reserves in the file at a
// time: the wraps of a block that a process did not make before it exited
// are lost, counted but never made.
func (c *Config) wrapBlock() uint64 {
	return min(max(c.rotateAfter()/64, 1), 1<<16)
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Keyring holds the KEKs of many scopes in one keyset file. A scope is a
// tenant (audit.Actor{Tenant: t}) or one data subject of a tenant
// (audit.Actor{Tenant: t, Subject: s}); each scope has a Tink keyset of its
// own, of AES256_GCM keys, so that a tenant bound to professional secrecy
// (§ 203 StGB) never shares a key with another, and a subject's data can be
// crypto-shredded alone.
//
// A Keyring is safe for concurrent use by many goroutines. Several
// processes may share one file (a service, and `tomkit keys` run by an
// operator): each change is made under a lock on FILE.lock, on top of
// what the others wrote, so nothing is overwritten. A process sees the
// others' changes at its next change or [Keyring.Reload].
type Keyring struct {
	cfg   Config
	path  string
	mu    sync.Mutex // serializes changes and file writes
	state atomic.Pointer[ringState]
	// sum is the SHA-256 of the file as this Keyring last read or wrote
	// it; a write finding anything else fails with ErrConflict. Guarded
	// by mu.
	sum [32]byte
}

// Create creates a new, empty keyring. With a non-empty path it creates
// the keyset file with mode 0600 and refuses an existing one with
// [ErrExist]; with an empty path the keyring lives in memory only and its
// keys are lost when the process exits (useful for tests).
func Create(ctx context.Context, path string, cfg Config) (*Keyring, error) {
	r, err := newKeyring(path, cfg)
	if err != nil {
		return nil, err
	}
	r.state.Store(&ringState{scopes: map[scopeKey]*scopeState{}, rings: map[[8]byte]*scopeState{}, destroyed: map[[8]byte]time.Time{}})
	if path != "" {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrExist, path)
		}
		lock, err := r.lockFile()
		if err != nil {
			return nil, err
		}
		err = r.save(r.state.Load(), true)
		lock.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := r.log(ctx, "crypto.keyring_create", audit.OutcomeAllow, "", nil); err != nil {
		return nil, err
	}
	return r, nil
}

// Open loads the keyring in the keyset file at path. A file that group or
// others may access is refused with [ErrLoosePermissions]; a file that
// does not decrypt under cfg.Master, or whose metadata was changed, with
// [ErrWrongMasterKey]. Loading the keys is audited as "crypto.keyring_open".
func Open(ctx context.Context, path string, cfg Config) (*Keyring, error) {
	r, err := newKeyring(path, cfg)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("kms: open: empty path")
	}
	if err := checkPerm(path); err != nil {
		return nil, err
	}
	lock, err := r.lockFile()
	if err != nil {
		return nil, err
	}
	keyfile.RemoveStale(r.path)
	b, err := os.ReadFile(path)
	lock.Close()
	if err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	st, err := r.decode(b)
	if err != nil {
		_ = r.log(ctx, "crypto.keyring_open", audit.OutcomeError, err.Error(), nil)
		return nil, err
	}
	r.sum = sha256.Sum256(b)
	r.state.Store(st)
	var attrs []audit.Attr
	if st.legacy {
		// Rewritten in the current format, and authenticated, at the
		// next change.
		attrs = append(attrs, audit.String("format", keyfile.V1))
	}
	if err := r.log(ctx, "crypto.keyring_open", audit.OutcomeAllow, "", nil, attrs...); err != nil {
		return nil, err
	}
	return r, nil
}

func newKeyring(path string, cfg Config) (*Keyring, error) {
	if cfg.Master == nil {
		return nil, ErrNoMasterKey
	}
	if cfg.Audit == nil {
		return nil, audit.ErrNoLogger
	}
	return &Keyring{cfg: cfg, path: path}, nil
}

// KEK returns the KEK of scope. It reflects later rotations; it fails
// with [ErrUnknownKey] at use while the scope has no key (see
// [Keyring.Create]) and with [ErrKeyDestroyed] for ciphertexts of a
// shredded scope.
func (r *Keyring) KEK(scope audit.Actor) *LocalKEK {
	return &LocalKEK{r: r, key: scopeKey{scope.Tenant, scope.Subject}}
}

// Primary returns the id of the primary key version of scope, the one
// new DEKs are wrapped under. It fails with [ErrUnknownKey] while the
// scope has no key: never created, or shredded. It does no I/O and does
// not allocate on success, so a cache of per-scope objects can call it
// before every use and drop what it built under a key that was rotated
// or shredded since.
func (r *Keyring) Primary(scope audit.Actor) (KeyID, error) {
	s := r.state.Load().scopes[scopeKey{scope.Tenant, scope.Subject}]
	if s == nil {
		return KeyID{}, fmt.Errorf("%w: scope has no key", ErrUnknownKey)
	}
	return KeyID{s.ring, s.primary.id}, nil
}

// KeyInfo describes one key version. It never holds key material.
type KeyInfo struct {
	ID      KeyID
	Version uint32
	Created time.Time
	Primary bool
	// Retired is true for versions below the minimum decryption version.
	Retired bool
	// Wraps is how many DEK wraps are reserved under this version by
	// every process sharing the keyring: at least as many as were made.
	Wraps uint64
}

// ScopeInfo describes one scope of a [Keyring].
type ScopeInfo struct {
	// Scope is the tenant and subject. It is zero for a shredded scope.
	Scope      audit.Actor
	Ring       [8]byte
	Created    time.Time
	MinVersion uint32
	Keys       []KeyInfo
	// Destroyed is when the scope was shredded; zero for a live scope.
	Destroyed time.Time
}

// List describes every scope, live ones first (sorted by tenant and
// subject), then shredded ones.
func (r *Keyring) List() []ScopeInfo {
	st := r.state.Load()
	var out []ScopeInfo
	for _, s := range st.scopes {
		si := ScopeInfo{Scope: s.scope, Ring: s.ring, Created: s.created, MinVersion: s.minVersion}
		for _, kv := range s.keys {
			si.Keys = append(si.Keys, KeyInfo{ID: KeyID{s.ring, kv.id}, Version: kv.version, Created: kv.created,
				Primary: kv == s.primary, Retired: kv.version < s.minVersion, Wraps: kv.reserved.Load()})
		}
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Scope, out[j].Scope
		return a.Tenant < b.Tenant || a.Tenant == b.Tenant && a.Subject < b.Subject
	})
	var dead []ScopeInfo
	for ring, t := range st.destroyed {
		dead = append(dead, ScopeInfo{Ring: ring, Destroyed: t})
	}
	sort.Slice(dead, func(i, j int) bool { return bytes.Compare(dead[i].Ring[:], dead[j].Ring[:]) < 0 })
	return append(out, dead...)
}

// Reload loads the changes that other processes (such as `tomkit keys`)
// made to the keyring file: new keys, retired versions, shredded scopes.
// A Keyring also does so before each change it makes itself, but keeps
// using the keys it loaded otherwise, so a long-running service should
// call Reload periodically or on a signal for a shred or retirement made
// elsewhere to take effect in it. A reload that finds changes is audited
// as "crypto.keyring_reload". For an in-memory keyring it does nothing.
func (r *Keyring) Reload(ctx context.Context) error {
	if r.path == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lock, err := r.lockFile()
	if err != nil {
		return err
	}
	changed, err := r.refresh()
	lock.Close()
	if err != nil {
		_ = r.log(ctx, "crypto.keyring_reload", audit.OutcomeError, err.Error(), nil)
		return err
	}
	if !changed {
		return nil
	}
	return r.log(ctx, "crypto.keyring_reload", audit.OutcomeAllow, "", nil)
}

// edit is one change to the keyring, built by the function passed to
// [Keyring.change].
type edit struct {
	// st is the new state; nil means there is nothing to change.
	st *ringState
	// action, when not empty, is audited after the write, about scope,
	// with reason and attrs.
	action string
	reason string
	scope  *scopeState
	attrs  []audit.Attr
	// done, if set, runs after the write and before the audit event.
	done func()
	// failed, if set, says what a failed write means.
	failed func(error) error
}

// change makes one change under the keyring's locks: it takes r.mu and
// the file lock, loads what other processes wrote to the file meanwhile
// (so that the change builds on it), lets build compute the change from
// the current state, writes the new state, and audits it. Every change
// to a keyring goes through it.
func (r *Keyring) change(ctx context.Context, build func(old *ringState) (edit, error)) error {
	unlock, err := r.begin()
	if err != nil {
		return err
	}
	defer unlock()
	e, err := build(r.state.Load())
	if err != nil || e.st == nil {
		return err
	}
	if err := r.commit(e.st); err != nil {
		if e.failed != nil {
			return e.failed(err)
		}
		return err
	}
	if e.done != nil {
		e.done()
	}
	if e.action == "" {
		return nil
	}
	return r.log(ctx, e.action, audit.OutcomeAllow, e.reason, e.scope, e.attrs...)
}

// begin starts a change: it takes r.mu and the file lock, and loads what
// other processes changed in the file meanwhile, so that the change
// builds on them. The returned function releases both locks.
func (r *Keyring) begin() (func(), error) {
	r.mu.Lock()
	if r.path == "" {
		return r.mu.Unlock, nil
	}
	lock, err := r.lockFile()
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	keyfile.RemoveStale(r.path)
	if _, err := r.refresh(); err != nil {
		lock.Close()
		r.mu.Unlock()
		return nil, err
	}
	return func() { lock.Close(); r.mu.Unlock() }, nil
}

// lockFile takes the exclusive lock of the keyring file.
func (r *Keyring) lockFile() (*os.File, error) {
	lock, err := keyfile.Lock(r.path)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return lock, nil
}

// refresh loads the file if it differs from what r last read or wrote.
// The caller holds r.mu and the file lock.
func (r *Keyring) refresh() (bool, error) {
	if err := checkPerm(r.path); err != nil {
		return false, err
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return false, fmt.Errorf("kms: %w", err)
	}
	sum := sha256.Sum256(b)
	if sum == r.sum {
		return false, nil
	}
	st, err := r.decode(b)
	if err != nil {
		return false, err
	}
	old := r.state.Load()
	for ring, s := range st.rings {
		s.inherit(old.rings[ring])
	}
	r.state.Store(st)
	r.sum = sum
	return true, nil
}

// commit persists st and makes it current. The caller holds r.mu and,
// for a file, its lock (see begin).
func (r *Keyring) commit(st *ringState) error {
	if r.path != "" {
		if err := r.save(st, false); err != nil {
			return err
		}
	}
	r.state.Store(st)
	return nil
}

// save writes the keyring file atomically (see keyfile.Write). The
// caller holds the file lock, except when creating the file (create),
// which never replaces one. As a last guard, save refuses with
// ErrConflict to replace a file that differs from what this Keyring last
// read or wrote.
func (r *Keyring) save(st *ringState, create bool) error {
	b, err := r.encode(st)
	if err != nil {
		return err
	}
	if !create {
		cur, err := os.ReadFile(r.path)
		if err != nil {
			return fmt.Errorf("kms: save: %w", err)
		}
		if sha256.Sum256(cur) != r.sum {
			return fmt.Errorf("%w: %s", ErrConflict, r.path)
		}
	}
	if err := keyfile.Write(r.path, b, create); err != nil {
		if errors.Is(err, keyfile.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExist, r.path)
		}
		return fmt.Errorf("kms: save: %w", err)
	}
	r.sum = sha256.Sum256(b)
	return nil
}

// log emits one audit event about scope s (nil for the keyring itself).
func (r *Keyring) log(ctx context.Context, action string, outcome audit.Outcome, reason string, s *scopeState, attrs ...audit.Attr) error {
	e := audit.Event{Time: r.cfg.now(), Action: action, Outcome: outcome, Reason: reason, Resource: "keyring"}
	if r.path != "" {
		e.Attributes = append(e.Attributes, audit.String("keyring", r.path))
	}
	if s != nil {
		e.Resource = "keyring/" + hex.EncodeToString(s.ring[:])
		e.Attributes = append(e.Attributes, audit.String("scope_tenant", s.scope.Tenant))
		if s.scope.Subject != "" {
			e.Attributes = append(e.Attributes, audit.Personal("scope_subject", s.scope.Subject))
		}
	}
	e.Attributes = append(e.Attributes, attrs...)
	switch {
	case action == "crypto.key_shred":
		e.Severity = audit.SeverityNotice
	case outcome != audit.OutcomeAllow:
		e.Severity = audit.SeverityWarning
	}
	if err := r.cfg.Audit.Log(ctx, e); err != nil {
		if s != nil && outcome == audit.OutcomeAllow {
			return fmt.Errorf("kms: %s is saved, but its audit event failed: %w", action, err)
		}
		return fmt.Errorf("kms: audit %s: %w", action, err)
	}
	return nil
}
