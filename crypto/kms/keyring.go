package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
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

// scopeKey is the map key of a scope.
type scopeKey struct{ tenant, subject string }

type ringState struct {
	scopes    map[scopeKey]*scopeState
	rings     map[[8]byte]*scopeState
	destroyed map[[8]byte]time.Time
	// legacy is true for a state read from a keyfile.V1 file, until the
	// next change writes it in the current format.
	legacy bool
}

type scopeState struct {
	scope      audit.Actor
	ring       [8]byte
	created    time.Time
	minVersion uint32
	handle     *keyset.Handle
	keys       []*keyVersion // by version
	primary    *keyVersion
	// sealed is the keyset encrypted under the master key with this
	// state's metadata, once computed: only changed scopes are encrypted
	// again when the file is written. Guarded by Keyring.mu.
	sealed []byte
}

type keyVersion struct {
	id      uint32
	version uint32
	created time.Time
	aead    cipher.AEAD // AES-256-GCM of the Tink key, for the hot path
	// reserved is the number of wraps reserved under this version in the
	// file, by every process: an upper bound of the wraps made. It grows
	// under Keyring.mu.
	reserved atomic.Uint64
	// blk is this process's current block of reserved wraps, nil before
	// the first.
	blk atomic.Pointer[wrapBlock]
}

// wrapBlock is a range of reserved wraps [next, end) that Wrap takes from
// without a lock.
type wrapBlock struct {
	next atomic.Uint64
	end  uint64
}

// take takes one wrap from b.
func (b *wrapBlock) take() bool {
	return b != nil && b.next.Add(1) <= b.end
}

func (s *scopeState) key(id uint32) *keyVersion {
	for _, k := range s.keys {
		if k.id == id {
			return k
		}
	}
	return nil
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
	r.removeStale()
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

func checkScope(s audit.Actor) (scopeKey, error) {
	if s.Tenant == "" {
		return scopeKey{}, fmt.Errorf("%w: empty tenant", ErrInvalidScope)
	}
	return scopeKey{s.Tenant, s.Subject}, nil
}

// KEK returns the KEK of scope. It reflects later rotations; it fails
// with [ErrUnknownKey] at use while the scope has no key (see
// [Keyring.Create]) and with [ErrKeyDestroyed] for ciphertexts of a
// shredded scope.
func (r *Keyring) KEK(scope audit.Actor) *LocalKEK {
	return &LocalKEK{r: r, key: scopeKey{scope.Tenant, scope.Subject}}
}

// Create gives scope its first key. It does nothing when scope already has
// a key, so it may be called before every first use. A scope created
// again after [Keyring.Shred] gets new keys; the shredded ciphertexts stay
// unrecoverable.
func (r *Keyring) Create(ctx context.Context, scope audit.Actor) error {
	k, err := checkScope(scope)
	if err != nil {
		return err
	}
	if r.state.Load().scopes[k] != nil {
		return nil
	}
	unlock, err := r.begin()
	if err != nil {
		return err
	}
	defer unlock()
	old := r.state.Load()
	if old.scopes[k] != nil {
		return nil
	}
	m := keyset.NewManager()
	id, err := m.Add(aead.AES256GCMNoPrefixKeyTemplate())
	if err != nil {
		return fmt.Errorf("kms: create: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return fmt.Errorf("kms: create: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return fmt.Errorf("kms: create: %w", err)
	}
	s := &scopeState{scope: scope, created: r.cfg.now().UTC(), minVersion: 1, handle: h}
	if _, err := rand.Read(s.ring[:]); err != nil {
		return fmt.Errorf("kms: create: %w", err)
	}
	if err := s.load([]keyfile.Key{{ID: id, Version: 1, Created: s.created}}); err != nil {
		return err
	}
	if err := r.commit(old.with(k, s)); err != nil {
		return err
	}
	return r.log(ctx, "crypto.key_create", audit.OutcomeAllow, "", s, audit.String("key_version", "1"))
}

// Rotate adds a new key to scope and makes it the primary: new messages
// are wrapped under it, and ciphertexts under older versions still
// decrypt until they are retired with [Keyring.SetMinVersion]. Use
// envelope's Rewrap to move old ciphertexts to the new key. It returns the
// new version.
func (r *Keyring) Rotate(ctx context.Context, scope audit.Actor) (uint32, error) {
	unlock, err := r.begin()
	if err != nil {
		return 0, err
	}
	defer unlock()
	old := r.state.Load()
	k, s, err := old.scope(scope)
	if err != nil {
		return 0, err
	}
	st, v, err := r.rotate(old, k, s)
	if err != nil {
		return 0, err
	}
	if err := r.commit(st); err != nil {
		return 0, err
	}
	return v, r.log(ctx, "crypto.key_rotate", audit.OutcomeAllow, "", st.scopes[k], audit.String("key_version", fmt.Sprint(v)))
}

// SetMinVersion sets the minimum decryption version of scope, as Vault
// Transit's min_decryption_version does: ciphertexts under older versions
// fail with [ErrKeyRetired], and the older keys are disabled in the Tink
// keyset. Lowering it again re-enables them. v must be between 1 and the
// primary version, else [ErrInvalidVersion].
func (r *Keyring) SetMinVersion(ctx context.Context, scope audit.Actor, v uint32) error {
	unlock, err := r.begin()
	if err != nil {
		return err
	}
	defer unlock()
	old := r.state.Load()
	k, s, err := old.scope(scope)
	if err != nil {
		return err
	}
	if v < 1 || v > s.primary.version {
		return fmt.Errorf("%w: %d not in [1, %d]", ErrInvalidVersion, v, s.primary.version)
	}
	m := keyset.NewManagerFromHandle(s.handle)
	for _, kv := range s.keys {
		if kv.version < v {
			err = m.Disable(kv.id)
		} else {
			err = m.Enable(kv.id)
		}
		if err != nil {
			return fmt.Errorf("kms: min version: %w", err)
		}
	}
	h, err := m.Handle()
	if err != nil {
		return fmt.Errorf("kms: min version: %w", err)
	}
	ns := &scopeState{scope: s.scope, ring: s.ring, created: s.created, minVersion: v, handle: h}
	if err := ns.load(s.fileKeys()); err != nil {
		return err
	}
	ns.inherit(s)
	if err := r.commit(old.with(k, ns)); err != nil {
		return err
	}
	return r.log(ctx, "crypto.key_min_version", audit.OutcomeAllow, "", ns, audit.String("min_version", fmt.Sprint(v)))
}

// reserve reserves a block of wraps under the primary key of scope k,
// which was p when the caller's block ran out, rotating the scope first
// when the block would pass Config.RotateAfter. It does nothing when the
// primary changed or has a block again meanwhile: the caller retries.
func (r *Keyring) reserve(ctx context.Context, k scopeKey, p *keyVersion) error {
	unlock, err := r.begin()
	if err != nil {
		return fmt.Errorf("kms: wrap: reserve: %w", err)
	}
	defer unlock()
	old := r.state.Load()
	s := old.scopes[k]
	if s == nil || s.primary != p || p.blk.Load().take2() {
		return nil // changed meanwhile: the caller looks again
	}
	block, limit := r.cfg.wrapBlock(), r.cfg.rotateAfter()
	if n := p.reserved.Load(); n+block > limit {
		ns, v, err := r.rotate(old, k, s)
		if err != nil {
			return fmt.Errorf("%w: version %d has %d wraps and the scope cannot rotate: %w", ErrWrapLimit, p.version, n, err)
		}
		np := ns.scopes[k].primary
		np.reserved.Store(block)
		if err := r.commit(ns); err != nil {
			return fmt.Errorf("%w: version %d has %d wraps and the scope cannot rotate: %w", ErrWrapLimit, p.version, n, err)
		}
		np.blk.Store(newBlock(0, block))
		return r.log(ctx, "crypto.key_rotate", audit.OutcomeAllow, "wrap limit", ns.scopes[k],
			audit.String("key_version", fmt.Sprint(v)), audit.String("trigger", "wrap_limit"),
			audit.String("wraps", fmt.Sprint(n)), audit.String("rotate_after", fmt.Sprint(limit)))
	}
	n := p.reserved.Load()
	// Raise the count before writing: if the write fails, the count in
	// memory is too high, never too low, and no wrap uses the block.
	p.reserved.Store(n + block)
	if err := r.commit(old); err != nil {
		return fmt.Errorf("kms: wrap: reserve: %w", err)
	}
	p.blk.Store(newBlock(n, n+block))
	return nil
}

func newBlock(start, end uint64) *wrapBlock {
	b := &wrapBlock{end: end}
	b.next.Store(start)
	return b
}

// take2 reports whether b has a wrap left, without taking it.
func (b *wrapBlock) take2() bool {
	return b != nil && b.next.Load() < b.end
}

// rotate returns old with a new primary key version in scope k.
func (r *Keyring) rotate(old *ringState, k scopeKey, s *scopeState) (*ringState, uint32, error) {
	m := keyset.NewManagerFromHandle(s.handle)
	id, err := m.Add(aead.AES256GCMNoPrefixKeyTemplate())
	if err != nil {
		return nil, 0, fmt.Errorf("kms: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, 0, fmt.Errorf("kms: rotate: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, 0, fmt.Errorf("kms: rotate: %w", err)
	}
	ns := &scopeState{scope: s.scope, ring: s.ring, created: s.created, minVersion: s.minVersion, handle: h}
	v := s.keys[len(s.keys)-1].version + 1
	if err := ns.load(append(s.fileKeys(), keyfile.Key{ID: id, Version: v, Created: r.cfg.now().UTC()})); err != nil {
		return nil, 0, err
	}
	ns.inherit(s)
	return old.with(k, ns), v, nil
}

// Shred destroys every key of scope (crypto-shredding). All ciphertexts
// of the scope, wherever they are kept, backups included, become
// unrecoverable, and decrypting one fails with [ErrKeyDestroyed]. Only
// the scope's random ring id and the time are kept, so that the error can
// be told apart; the tenant and subject names are removed from the file.
//
// Shredding reaches as far as the keyring file does: temporary files left
// by a crash are removed at the next open or change, but copies of the
// file made before Shred (backups of the keyring itself) still hold the keys,
// so keep keyring backups short-lived or use a remote KMS whose key
// deletion is final.
func (r *Keyring) Shred(ctx context.Context, scope audit.Actor) error {
	unlock, err := r.begin()
	if err != nil {
		return err
	}
	defer unlock()
	old := r.state.Load()
	k, s, err := old.scope(scope)
	if err != nil {
		return err
	}
	ns := old.clone()
	delete(ns.scopes, k)
	delete(ns.rings, s.ring)
	ns.destroyed[s.ring] = r.cfg.now().UTC()
	if err := r.commit(ns); err != nil {
		return err
	}
	return r.log(ctx, "crypto.key_shred", audit.OutcomeAllow, "", s)
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

// LocalKEK is the [KEK] of one scope of a [Keyring]. Its Wrap and Unwrap
// run in process with the keys of the Tink keyset; Wrap does not allocate.
// Per-message use is not audited (a durable audit write per message would
// cap throughput at the log's fsync rate); failures to unwrap are.
type LocalKEK struct {
	r   *Keyring
	key scopeKey
}

var _ KEK = (*LocalKEK)(nil)

// wrappedLen is the length of a locally wrapped 32-byte DEK: the Tink
// AES-GCM RAW ciphertext format, nonce || ciphertext || tag.
const (
	nonceLen = 12
	tagLen   = 16
)

// Wrap implements [KEK]. Every wrap is counted against the primary key
// version; the count is reserved in the keyring file in blocks, and the
// scope is rotated when the version reaches [Config.RotateAfter] wraps.
// When the count cannot be reserved or the scope cannot be rotated, Wrap
// fails ([ErrWrapLimit] at the limit).
func (k *LocalKEK) Wrap(ctx context.Context, dst, dek, ad []byte) (KeyID, []byte, error) {
	var s *scopeState
	for {
		st := k.r.state.Load()
		s = st.scopes[k.key]
		if s == nil {
			if k.key.tenant == "" {
				return KeyID{}, nil, fmt.Errorf("%w: empty tenant", ErrInvalidScope)
			}
			return KeyID{}, nil, fmt.Errorf("%w: scope has no key; create it first", ErrUnknownKey)
		}
		if _, ok := st.destroyed[s.ring]; ok {
			return KeyID{}, nil, fmt.Errorf("%w: scope's ring %s was shredded", ErrKeyDestroyed, KeyID{Ring: s.ring})
		}
		if s.primary.blk.Load().take() {
			break
		}
		if err := k.r.reserve(ctx, k.key, s.primary); err != nil {
			return KeyID{}, nil, err
		}
	}
	p := s.primary
	n := len(dst)
	dst = slices.Grow(dst, nonceLen+len(dek)+tagLen)[:n+nonceLen]
	if _, err := rand.Read(dst[n:]); err != nil {
		return KeyID{}, nil, fmt.Errorf("kms: wrap: %w", err)
	}
	dst = p.aead.Seal(dst, dst[n:n+nonceLen], dek, ad)
	return KeyID{s.ring, p.id}, dst, nil
}

// Unwrap implements [KEK]. Failures are audited as "crypto.unwrap".
func (k *LocalKEK) Unwrap(ctx context.Context, dst []byte, id KeyID, wrapped, ad []byte) ([]byte, error) {
	out, err := k.unwrap(dst, id, wrapped, ad)
	if err != nil {
		reason := err.Error()
		if lerr := k.r.log(ctx, "crypto.unwrap", audit.OutcomeDeny, reason, nil, audit.String("key_id", id.String())); lerr != nil {
			return nil, errors.Join(err, lerr)
		}
		return nil, err
	}
	return out, nil
}

func (k *LocalKEK) unwrap(dst []byte, id KeyID, wrapped, ad []byte) ([]byte, error) {
	st := k.r.state.Load()
	if _, ok := st.destroyed[id.Ring]; ok {
		return nil, fmt.Errorf("%w: key %s was shredded", ErrKeyDestroyed, id)
	}
	s := st.scopes[k.key]
	if s == nil || s.ring != id.Ring {
		return nil, fmt.Errorf("%w: key %s is not a key of this scope", ErrUnknownKey, id)
	}
	kv := s.key(id.Key)
	if kv == nil {
		return nil, fmt.Errorf("%w: key %s", ErrUnknownKey, id)
	}
	if kv.version < s.minVersion {
		return nil, fmt.Errorf("%w: key %s is version %d, minimum is %d", ErrKeyRetired, id, kv.version, s.minVersion)
	}
	if len(wrapped) < nonceLen+tagLen {
		return nil, fmt.Errorf("%w: wrapped key too short", ErrUnwrap)
	}
	out, err := kv.aead.Open(dst, wrapped[:nonceLen], wrapped[nonceLen:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s", ErrUnwrap, id)
	}
	return out, nil
}

// --- state helpers ---

func (st *ringState) clone() *ringState {
	n := &ringState{
		scopes:    make(map[scopeKey]*scopeState, len(st.scopes)+1),
		rings:     make(map[[8]byte]*scopeState, len(st.rings)+1),
		destroyed: make(map[[8]byte]time.Time, len(st.destroyed)+1),
	}
	for k, v := range st.scopes {
		n.scopes[k] = v
	}
	for k, v := range st.rings {
		n.rings[k] = v
	}
	for k, v := range st.destroyed {
		n.destroyed[k] = v
	}
	return n
}

func (st *ringState) with(k scopeKey, s *scopeState) *ringState {
	n := st.clone()
	n.scopes[k] = s
	n.rings[s.ring] = s
	return n
}

func (st *ringState) scope(scope audit.Actor) (scopeKey, *scopeState, error) {
	k, err := checkScope(scope)
	if err != nil {
		return k, nil, err
	}
	s := st.scopes[k]
	if s == nil {
		return k, nil, fmt.Errorf("%w: no key for tenant %q", ErrUnknownKey, scope.Tenant)
	}
	return k, s, nil
}

// load builds the hot-path AEADs from the Tink keyset and checks it
// against the metadata.
func (s *scopeState) load(meta []keyfile.Key) error {
	if s.handle.Len() != len(meta) {
		return fmt.Errorf("%w: keyset has %d keys, metadata %d", ErrWrongMasterKey, s.handle.Len(), len(meta))
	}
	s.keys = nil
	s.primary = nil
	for _, fk := range meta {
		kv := &keyVersion{id: fk.ID, version: fk.Version, created: fk.Created}
		for i := 0; i < s.handle.Len(); i++ {
			e, err := s.handle.Entry(i)
			if err != nil {
				return fmt.Errorf("kms: keyset: %w", err)
			}
			if e.KeyID() != fk.ID {
				continue
			}
			gk, ok := e.Key().(*aesgcm.Key)
			if !ok {
				return fmt.Errorf("%w: key %d is not AES-GCM", ErrWrongMasterKey, fk.ID)
			}
			p := gk.Parameters().(*aesgcm.Parameters)
			if p.KeySizeInBytes() != 32 || p.IVSizeInBytes() != nonceLen || p.TagSizeInBytes() != tagLen || p.Variant() != aesgcm.VariantNoPrefix {
				return fmt.Errorf("%w: key %d is not AES256_GCM_RAW", ErrWrongMasterKey, fk.ID)
			}
			// The one place tomkit reads Tink key material: to run the
			// same AES-256-GCM (Tink's RAW format) without allocating.
			raw := gk.KeyBytes().Data(insecuresecretdataaccess.Token{})
			b, err := aes.NewCipher(raw)
			clear(raw)
			if err != nil {
				return fmt.Errorf("kms: keyset: %w", err)
			}
			if kv.aead, err = cipher.NewGCM(b); err != nil {
				return fmt.Errorf("kms: keyset: %w", err)
			}
			if e.IsPrimary() {
				s.primary = kv
			}
		}
		if kv.aead == nil {
			return fmt.Errorf("%w: key %d missing from keyset", ErrWrongMasterKey, fk.ID)
		}
		s.keys = append(s.keys, kv)
	}
	sort.Slice(s.keys, func(i, j int) bool { return s.keys[i].version < s.keys[j].version })
	if s.primary == nil {
		return fmt.Errorf("%w: keyset has no primary key", ErrWrongMasterKey)
	}
	return nil
}

func (s *scopeState) fileKeys() []keyfile.Key {
	out := make([]keyfile.Key, len(s.keys))
	for i, kv := range s.keys {
		out[i] = keyfile.Key{ID: kv.id, Version: kv.version, Created: kv.created}
	}
	return out
}

// inherit carries the wrap counts and this process's blocks of reserved
// wraps over from old, the same scope's earlier state, to s. A count
// never goes down, even if the file was replaced with an older copy.
func (s *scopeState) inherit(old *scopeState) {
	if old == nil || old.ring != s.ring {
		return
	}
	for _, kv := range s.keys {
		if o := old.key(kv.id); o != nil {
			kv.reserved.Store(max(kv.reserved.Load(), o.reserved.Load()))
			kv.blk.Store(o.blk.Load())
		}
	}
}

// --- file format (crypto/kms/internal/keyfile) ---

func (r *Keyring) encode(st *ringState) ([]byte, error) {
	f := keyfile.File{Scopes: []keyfile.Scope{}}
	// Encrypt in a fixed order, so that a seeded random source gives a
	// reproducible file (the known-answer vectors depend on it).
	scopes := make([]*scopeState, 0, len(st.scopes))
	for _, s := range st.scopes {
		scopes = append(scopes, s)
	}
	sort.Slice(scopes, func(i, j int) bool { return bytes.Compare(scopes[i].ring[:], scopes[j].ring[:]) < 0 })
	for _, s := range scopes {
		m := keyfile.Meta{Tenant: s.scope.Tenant, Subject: s.scope.Subject, Ring: keyfile.Ring(s.ring),
			Created: s.created, MinVersion: s.minVersion, Keys: s.fileKeys()}
		if s.sealed == nil {
			ad, err := keyfile.KeysetAD(keyfile.V2, m)
			if err != nil {
				return nil, err
			}
			var buf bytes.Buffer
			if err := s.handle.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), r.cfg.Master, ad); err != nil {
				return nil, fmt.Errorf("kms: encrypt keyset: %w", err)
			}
			s.sealed = buf.Bytes()
		}
		f.Scopes = append(f.Scopes, keyfile.Scope{Meta: m, Keyset: s.sealed})
		for _, kv := range s.keys {
			f.Wraps = append(f.Wraps, keyfile.Wraps{Ring: m.Ring, Key: kv.id, Reserved: kv.reserved.Load()})
		}
	}
	for ring, t := range st.destroyed {
		f.Destroyed = append(f.Destroyed, keyfile.Tombstone{Ring: keyfile.Ring(ring), Destroyed: t})
	}
	sort.Slice(f.Destroyed, func(i, j int) bool { return f.Destroyed[i].Ring < f.Destroyed[j].Ring })
	b, err := f.Encode(r.cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return b, nil
}

// decode parses and checks a keyring file. A file in the legacy format
// (keyfile.V1) loads with every keyset marked for re-encryption, so the
// next change writes the whole file in the current format.
func (r *Keyring) decode(b []byte) (*ringState, error) {
	f, err := keyfile.Parse(b, r.cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongMasterKey, err)
	}
	st := &ringState{scopes: map[scopeKey]*scopeState{}, rings: map[[8]byte]*scopeState{}, destroyed: map[[8]byte]time.Time{},
		legacy: f.Format == keyfile.V1}
	for _, fs := range f.Scopes {
		ring, err := keyfile.ParseRing(fs.Ring)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrongMasterKey, err)
		}
		ad, err := keyfile.KeysetAD(f.Format, fs.Meta)
		if err != nil {
			return nil, err
		}
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(fs.Keyset)), r.cfg.Master, ad)
		if err != nil {
			return nil, fmt.Errorf("%w: scope %s: %v", ErrWrongMasterKey, fs.Ring, err)
		}
		s := &scopeState{scope: audit.Actor{Tenant: fs.Tenant, Subject: fs.Subject}, ring: ring, created: fs.Created, minVersion: fs.MinVersion, handle: h}
		if !st.legacy {
			s.sealed = fs.Keyset
		}
		if err := s.load(fs.Keys); err != nil {
			return nil, err
		}
		k := scopeKey{fs.Tenant, fs.Subject}
		if fs.Tenant == "" || st.scopes[k] != nil || st.rings[ring] != nil {
			return nil, fmt.Errorf("%w: duplicate or empty scope", ErrWrongMasterKey)
		}
		st.scopes[k] = s
		st.rings[ring] = s
	}
	for _, w := range f.Wraps {
		ring, err := keyfile.ParseRing(w.Ring)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrongMasterKey, err)
		}
		var kv *keyVersion
		if s := st.rings[ring]; s != nil {
			kv = s.key(w.Key)
		}
		if kv == nil || kv.reserved.Load() != 0 {
			return nil, fmt.Errorf("%w: wrap count of unknown key %s/%d, or counted twice", ErrWrongMasterKey, w.Ring, w.Key)
		}
		kv.reserved.Store(w.Reserved)
	}
	if st.legacy {
		// The first format did not count wraps: assume each legacy
		// version used up, so that its scope rotates at its first wrap.
		for _, s := range st.scopes {
			for _, kv := range s.keys {
				kv.reserved.Store(r.cfg.rotateAfter())
			}
		}
	}
	for _, t := range f.Destroyed {
		ring, err := keyfile.ParseRing(t.Ring)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrongMasterKey, err)
		}
		// A ring is live or destroyed, never both: in a legacy file, whose
		// tombstones are not authenticated, this keeps an added tombstone
		// from failing a live scope's data as destroyed.
		if _, dup := st.destroyed[ring]; dup || st.rings[ring] != nil {
			return nil, fmt.Errorf("%w: ring %s both live and destroyed, or destroyed twice", ErrWrongMasterKey, t.Ring)
		}
		st.destroyed[ring] = t.Destroyed
	}
	return st, nil
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
	r.removeStale()
	if _, err := r.refresh(); err != nil {
		lock.Close()
		r.mu.Unlock()
		return nil, err
	}
	return func() { lock.Close(); r.mu.Unlock() }, nil
}

// lockFile takes an exclusive lock on FILE.lock; closing the file
// releases it.
func (r *Keyring) lockFile() (*os.File, error) {
	lock, err := os.OpenFile(r.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kms: lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("kms: lock: %w", err)
	}
	return lock, nil
}

// tempPattern names the temporary files of the keyring file path.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// removeStale removes temporary files left by a writer that crashed: they
// may hold keys that were shredded since. Temporary files exist only while
// their writer holds the file lock, which the caller now holds.
func (r *Keyring) removeStale() {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(r.path), tempPattern(r.path)))
	for _, f := range stale {
		os.Remove(f)
	}
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

// save writes the keyring file atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory. The caller holds the
// file lock, except when creating the file (create), which never replaces
// one. As a last guard, save refuses with ErrConflict to replace a file
// that differs from what this Keyring last read or wrote.
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
	dir := filepath.Dir(r.path)
	f, err := os.CreateTemp(dir, tempPattern(r.path))
	if err != nil {
		return fmt.Errorf("kms: save: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("kms: save: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("kms: save: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("kms: save: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("kms: save: %w", err)
	}
	if create {
		// Link fails if the file appeared meanwhile: never clobber a keyring.
		if err := os.Link(tmp, r.path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrExist, r.path)
			}
			return fmt.Errorf("kms: save: %w", err)
		}
	} else if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("kms: save: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
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
