package kms

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms/internal/backend"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Config configures a [Keyring]. Master and Logger are required; every
// other zero field has a safe meaning.
type Config struct {
	// Master encrypts the keyring file. Use [MasterKeyFromEnv],
	// [MasterKeyFromFile], [ParseMasterKey] or [RemoteMasterKey]. Nil is
	// refused with [ErrNoMasterKey].
	Master tink.AEAD
	// Logger receives one event per key operation (see the package
	// documentation). Nil is refused with [audit.ErrNoLogger].
	Logger audit.Logger
	// Clock gives the time of key operations and events. Nil means the
	// system clock.
	Clock audit.Clock
	// RotateAfter is how many DEKs one key version may wrap before the
	// keyring rotates its scope by itself (see "Key wrap limit" in
	// docs/KMS.md). Zero means [DefaultRotateAfter]; larger
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
	if c.Clock != nil {
		return c.Clock.Now()
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
// others' changes at its next change or [Keyring.Reload]. Replicas of a
// service share a keyring in PostgreSQL instead (package
// [github.com/tomkit/tomkit/crypto/kms/pgstore]), where every change
// reaches every instance before a shred or retirement returns.
type Keyring struct {
	cfg Config
	// store keeps the keyring; nil for an in-memory keyring.
	store backend.Store
	// gate, when not nil, must allow every key use (see backend.Gate).
	gate  *backend.Gate
	mu    sync.Mutex // serializes changes and reloads
	state atomic.Pointer[ringState]
	// ver is the version of the stored keyring as this Keyring last read
	// or wrote it; a write finding anything else fails with ErrConflict.
	// Guarded by mu.
	ver backend.Version
}

func emptyState() *ringState {
	return &ringState{scopes: map[scopeKey]*scopeState{}, rings: map[[8]byte]*scopeState{}, destroyed: map[[8]byte]time.Time{}}
}

// Create creates a new, empty keyring. With a non-empty path it creates
// the keyset file with mode 0600 and refuses an existing one with
// [ErrExist]; with an empty path the keyring lives in memory only and its
// keys are lost when the process exits (useful for tests).
func Create(ctx context.Context, path string, cfg Config) (*Keyring, error) {
	if path == "" {
		r, err := newKeyring(nil, cfg)
		if err != nil {
			return nil, err
		}
		r.state.Store(emptyState())
		if err := r.log(ctx, "crypto.keyring_create", audit.OutcomeAllow, "", nil); err != nil {
			return nil, err
		}
		return r, nil
	}
	r, _, err := openStore(ctx, fileStore{path}, cfg, createOnly)
	return r, err
}

// Open loads the keyring in the keyset file at path. A file that group or
// others may access is refused with [ErrLoosePermissions]; a file that
// does not decrypt under cfg.Master, or whose metadata was changed, with
// [ErrWrongMasterKey]. Loading the keys is audited as "crypto.keyring_open".
func Open(ctx context.Context, path string, cfg Config) (*Keyring, error) {
	if cfg.Master == nil {
		return nil, ErrNoMasterKey
	}
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if path == "" {
		return nil, errors.New("kms: open: empty path")
	}
	r, _, err := openStore(ctx, fileStore{path}, cfg, openOnly)
	return r, err
}

type openMode int

const (
	openOnly openMode = iota
	createOnly
	openOrCreate
)

func init() {
	backend.OpenKeyring = func(ctx context.Context, s backend.Store, cfg any, create bool) (any, bool, error) {
		mode := openOnly
		if create {
			mode = openOrCreate
		}
		return openStore(ctx, s, cfg.(Config), mode)
	}
}

// openStore opens the keyring kept by s, or creates it (see openMode).
// created reports whether it is new.
func openStore(ctx context.Context, s backend.Store, cfg Config, mode openMode) (r *Keyring, created bool, err error) {
	r, err = newKeyring(s, cfg)
	if err != nil {
		return nil, false, err
	}
	if mode != openOnly {
		st := emptyState()
		b, err := r.encode(st, 1)
		if err != nil {
			return nil, false, err
		}
		v, err := s.Create(ctx, b)
		switch {
		case err == nil:
			r.ver = v
			r.state.Store(st)
			s.Applied(v)
			if err := r.log(ctx, "crypto.keyring_create", audit.OutcomeAllow, "", nil); err != nil {
				return nil, false, err
			}
			return r, true, nil
		case errors.Is(err, backend.ErrExist) && mode == openOrCreate:
		case errors.Is(err, backend.ErrExist):
			return nil, false, fmt.Errorf("%w: %s", ErrExist, s.Name())
		case strings.HasPrefix(err.Error(), "kms: "):
			return nil, false, err
		default:
			return nil, false, errtext.Errorf("kms: create: %w", err)
		}
	}
	b, v, err := s.Read(ctx, backend.Version{})
	if err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return nil, false, errtext.Errorf("kms: open: %s: %w", s.Name(), err)
		}
		if !strings.HasPrefix(err.Error(), "kms: ") {
			err = errtext.Errorf("kms: open: %w", err)
		}
		return nil, false, err
	}
	st, err := r.decode(b, v)
	if err != nil {
		_ = r.log(ctx, "crypto.keyring_open", audit.OutcomeError, err.Error(), nil)
		return nil, false, err
	}
	r.ver = v
	r.state.Store(st)
	s.Applied(v)
	var attrs []audit.Attr
	if st.legacy {
		// Rewritten in the current format, and authenticated, at the
		// next change.
		attrs = append(attrs, audit.String("format", keyfile.V1))
	}
	if err := r.log(ctx, "crypto.keyring_open", audit.OutcomeAllow, "", nil, attrs...); err != nil {
		return nil, false, err
	}
	return r, false, nil
}

func newKeyring(s backend.Store, cfg Config) (*Keyring, error) {
	if cfg.Master == nil {
		return nil, ErrNoMasterKey
	}
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	r := &Keyring{cfg: cfg, store: s}
	if s != nil {
		r.gate = s.Gate()
	}
	return r, nil
}

// Close releases what the keyring holds besides memory: for a keyring in
// PostgreSQL, its connection and its lease; its keys are refused
// afterwards with [ErrStale]. For a file or in-memory keyring it does
// nothing.
func (r *Keyring) Close() error {
	if r.store == nil {
		return nil
	}
	return r.store.Close()
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
// as "crypto.keyring_reload". For an in-memory keyring it does nothing; a
// keyring in PostgreSQL reloads by itself.
func (r *Keyring) Reload(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed, err := r.refresh(ctx, r.store)
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
	// revoke is set for a change that takes keys out of use (a shred, a
	// retirement): it returns only once every instance sharing the
	// keyring has applied it.
	revoke bool
	// done, if set, runs after the write and before the audit event.
	done func()
	// failed, if set, says what a failed write means.
	failed func(error) error
}

// change makes one change under the keyring's locks: it takes r.mu and
// the store's lock, loads what other processes wrote meanwhile (so that
// the change builds on it), lets build compute the change from the
// current state, writes the new state, and audits it. Every change to a
// keyring goes through it.
func (r *Keyring) change(ctx context.Context, build func(old *ringState) (edit, error)) error {
	revoke, v, err := r.changeLocked(ctx, build)
	if err != nil || !revoke || r.store == nil {
		return err
	}
	// Outside r.mu, so that this instance keeps applying the changes of
	// others while it waits for them to apply its own.
	if err := r.store.Settle(ctx, v); err != nil {
		return errtext.Errorf("kms: the change is saved, but not every instance has applied it yet: %w", err)
	}
	return nil
}

func (r *Keyring) changeLocked(ctx context.Context, build func(old *ringState) (edit, error)) (bool, backend.Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var tx backend.Tx
	if r.store != nil {
		var err error
		if tx, err = r.store.Begin(ctx); err != nil {
			if !strings.HasPrefix(err.Error(), "kms: ") {
				err = errtext.Errorf("kms: %w", err)
			}
			return false, r.ver, err
		}
		defer tx.End()
		if _, err := r.refresh(ctx, tx); err != nil {
			return false, r.ver, err
		}
	}
	e, err := build(r.state.Load())
	if err != nil || e.st == nil {
		return false, r.ver, err
	}
	if tx != nil {
		if err := r.save(ctx, tx, e.st); err != nil {
			if e.failed != nil {
				return false, r.ver, e.failed(err)
			}
			return false, r.ver, err
		}
		tx.End()
	}
	r.state.Store(e.st)
	if r.store != nil {
		r.store.Applied(r.ver)
	}
	if e.done != nil {
		e.done()
	}
	if e.action != "" {
		if err := r.log(ctx, e.action, audit.OutcomeAllow, e.reason, e.scope, e.attrs...); err != nil {
			return false, r.ver, err
		}
	}
	return e.revoke, r.ver, nil
}

// refresh loads the stored keyring if it differs from what r last read
// or wrote. The caller holds r.mu.
func (r *Keyring) refresh(ctx context.Context, from backend.Reader) (bool, error) {
	b, v, err := from.Read(ctx, r.ver)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "kms: ") {
			err = errtext.Errorf("kms: %w", err)
		}
		return false, err
	}
	if b == nil {
		return false, nil
	}
	st, err := r.decode(b, v)
	if err != nil {
		return false, err
	}
	old := r.state.Load()
	for ring, s := range st.rings {
		s.inherit(old.rings[ring])
	}
	r.state.Store(st)
	r.ver = v
	r.store.Applied(v)
	return true, nil
}

// save writes st in the change tx. The caller holds r.mu.
func (r *Keyring) save(ctx context.Context, tx backend.Tx, st *ringState) error {
	b, err := r.encode(st, r.ver.Seq+1)
	if err != nil {
		return err
	}
	v, err := tx.Write(ctx, r.ver, b)
	if err != nil {
		if errors.Is(err, backend.ErrConflict) {
			return fmt.Errorf("%w: %s", ErrConflict, r.store.Name())
		}
		if !strings.HasPrefix(err.Error(), "kms: ") {
			err = errtext.Errorf("kms: save: %w", err)
		}
		return err
	}
	r.ver = v
	return nil
}

// log emits one audit event about scope s (nil for the keyring itself).
func (r *Keyring) log(ctx context.Context, action string, outcome audit.Outcome, reason string, s *scopeState, attrs ...audit.Attr) error {
	e := audit.Event{Time: r.cfg.now(), Action: action, Outcome: outcome, Reason: reason, Resource: "keyring"}
	if r.store != nil {
		e.Attributes = append(e.Attributes, audit.String("keyring", r.store.Name()))
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
	if err := r.cfg.Logger.Log(ctx, e); err != nil {
		if s != nil && outcome == audit.OutcomeAllow {
			return errtext.Errorf("kms: %s is saved, but its audit event failed: %w", action, err)
		}
		return errtext.Errorf("kms: audit %s: %w", action, err)
	}
	return nil
}
