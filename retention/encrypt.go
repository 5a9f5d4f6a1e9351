package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/internal/errtext"
)

// ErrErased reports an object whose key was destroyed by
// [Encrypted.Erase]: it is unrecoverable, in every copy and backup.
var ErrErased = kms.ErrKeyDestroyed

// EncryptConfig configures an [Encrypted] backend. Keyring and Logger
// are required; every other zero field has a safe meaning.
type EncryptConfig struct {
	// Keyring holds one key per tenant and per data subject. Required.
	// Open it with [kms.OpenOrCreate]; the scopes are created on first use.
	Keyring *kms.Keyring
	// Logger receives "retention.erase" events and, through the
	// envelope, failed decryptions. Required.
	Logger audit.Logger
	// MaxScopes is how many scopes' envelopes are kept ready at once.
	// Zero means [DefaultMaxScopes]. Past it, one is dropped for each new
	// one; a dropped envelope is built again at its next use.
	MaxScopes int
}

// DefaultMaxScopes is how many scopes' envelopes an [Encrypted] backend
// keeps when [EncryptConfig.MaxScopes] is zero.
const DefaultMaxScopes = 1024

// Encrypted is a [Backend] that encrypts every object at rest with
// tomkit's envelope encryption (AES-256-GCM, a fresh data key per object,
// streamed in authenticated segments) before it reaches the backend it
// wraps. Wrapped in a [Store], it is the per-tenant data path to use: the
// key follows the [audit.Actor] in the ctx, and nothing needs to be set
// up per tenant.
//
// The key is that of the object's data subject when [Meta.Subject] is set,
// else that of its tenant, so that [Encrypted.Erase] can crypto-shred one
// subject or a whole tenant. A [Store] sets both from the actor that
// writes. The key's scope in the [kms.Keyring] is created on the first
// write that needs it, once even under concurrent first writes, and
// audited by the keyring as "crypto.key_create"; a write after the scope
// was erased creates a new key, and the erased objects stay unreadable
// ([ErrErased]). The ciphertext is bound to an encryption context of
// tenant, class and key: an object copied under another key, or
// relabelled with another class or tenant, does not decrypt.
//
// The envelope of each scope is kept for reuse, at most
// [EncryptConfig.MaxScopes] of them, together with the scope's primary
// key version when it was built; it is built again when that version
// changes (rotation, shredding, re-creation), here or in another process
// sharing the keyring file once the keyring has seen the change (see
// [kms.Keyring.Reload]). Nothing built under a shredded key is used
// again.
//
// Records stay in the clear (the purge must read them); content never
// does. Wrap the result in a [Store] as with any backend. [Store.Purge]
// looks through an Encrypted backend: when the wrapped backend is a
// [BatchPurger] (pgstore), the purge runs in one statement per batch, as
// it does without encryption.
type Encrypted struct {
	b    Backend
	ring *kms.Keyring
	log  audit.Logger

	max int

	mu   sync.RWMutex
	envs map[audit.Actor]scopeEnv
}

// scopeEnv is the envelope of one scope and the primary key version of
// the scope when the envelope was built.
type scopeEnv struct {
	env     *envelope.Envelope
	primary kms.KeyID
}

var (
	_ Backend   = (*Encrypted)(nil)
	_ Partition = (*encPartition)(nil)
)

// NewEncrypted returns an encrypting backend over b.
func NewEncrypted(b Backend, cfg EncryptConfig) (*Encrypted, error) {
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if b == nil || cfg.Keyring == nil {
		return nil, errors.New("retention: encrypted backend needs a backend and a keyring")
	}
	if cfg.MaxScopes < 0 {
		return nil, fmt.Errorf("retention: encrypted backend: negative MaxScopes %d", cfg.MaxScopes)
	}
	if cfg.MaxScopes == 0 {
		cfg.MaxScopes = DefaultMaxScopes
	}
	return &Encrypted{b: b, ring: cfg.Keyring, log: cfg.Logger, max: cfg.MaxScopes, envs: map[audit.Actor]scopeEnv{}}, nil
}

// Raw returns the wrapped backend, which holds ciphertext. Backups copy
// from it, so that erasure reaches them as well.
func (e *Encrypted) Raw() Backend { return e.b }

// Partition implements [Backend]: the tenant's partition of the wrapped
// backend, encrypting under the keys of that tenant and its subjects.
func (e *Encrypted) Partition(tenant string) (Partition, error) {
	p, err := e.b.Partition(tenant)
	if err != nil {
		return nil, err
	}
	return &encPartition{e: e, p: p, tenant: tenant}, nil
}

// Tenants implements [Backend].
func (e *Encrypted) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	return e.b.Tenants(ctx, after, limit)
}

// Unpartitioned implements [Backend]. Its objects were encrypted under
// the keys of the tenants their records name, bound to their keys, so
// [Store.Migrate] moves them as ciphertext.
func (e *Encrypted) Unpartitioned() Partition {
	return &encPartition{e: e, p: e.b.Unpartitioned()}
}

// encPartition is one tenant's partition of an [Encrypted] backend; tenant
// is empty for the unpartitioned key space.
type encPartition struct {
	e      *Encrypted
	p      Partition
	tenant string
}

func (ep *encPartition) scopeOf(m Meta) (audit.Actor, error) {
	if m.Tenant == "" {
		return audit.Actor{}, fmt.Errorf("%w in the record to encrypt for", ErrNoTenant)
	}
	if ep.tenant != "" && m.Tenant != ep.tenant {
		return audit.Actor{}, fmt.Errorf("%w: record names tenant %q in the partition of %q", ErrInvalidTenant, m.Tenant, ep.tenant)
	}
	return audit.Actor{Tenant: m.Tenant, Subject: m.Subject}, nil
}

// envelope returns the envelope of scope, creating the scope's key first
// when create is set. For a scope without a key (never created, or
// shredded) and create unset, it returns an envelope that is not kept: it
// fails to open with what the ciphertext's key is ([ErrErased] for a
// shredded one).
func (e *Encrypted) envelope(ctx context.Context, scope audit.Actor, create bool) (*envelope.Envelope, error) {
	if create {
		// Does nothing, without I/O, when the scope has a key.
		if err := e.ring.Create(ctx, scope); err != nil {
			return nil, err
		}
	}
	primary, err := e.ring.Primary(scope)
	if err != nil {
		if create {
			return nil, err // shredded since it was created
		}
		return envelope.New(e.ring.KEK(scope), envelope.Config{Logger: e.log})
	}
	e.mu.RLock()
	se, ok := e.envs[scope]
	e.mu.RUnlock()
	if ok && se.primary == primary {
		return se.env, nil
	}
	env, err := envelope.New(e.ring.KEK(scope), envelope.Config{Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if se, ok := e.envs[scope]; ok && se.primary == primary {
		return se.env, nil
	}
	if _, ok := e.envs[scope]; !ok && len(e.envs) >= e.max {
		for s := range e.envs { // drops one at random
			delete(e.envs, s)
			break
		}
	}
	e.envs[scope] = scopeEnv{env: env, primary: primary}
	return env, nil
}

// drop forgets the envelopes of scope, or of every scope of its tenant
// when it names no subject.
func (e *Encrypted) drop(scope audit.Actor) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.envs {
		if s == scope || scope.Subject == "" && s.Tenant == scope.Tenant {
			delete(e.envs, s)
		}
	}
}

// cached reports how many scopes' envelopes e keeps; for tests.
func (e *Encrypted) cached() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.envs)
}

// Envelope returns the envelope of the tenant in ctx, under the tenant's
// own key (scope audit.Actor{Tenant: t}), creating the key on first use
// (audited as "crypto.key_create"), for data a product keeps outside a
// [Store]: a column of its own database, a message to a queue. Bind every
// message to its tenant and object with [TenantContext]. A ctx without a
// tenant is [ErrNoTenant]. Call Envelope for each use rather than keeping
// the result: it is cached here, and a rotated or shredded key reaches it
// at the next call. Zero data retention ([Config.ZDRFor]) does not reach
// what is sealed here: keep the content of a tenant under such a rule
// out of it.
func (e *Encrypted) Envelope(ctx context.Context) (*envelope.Envelope, error) {
	tenant := audit.ActorFrom(ctx).Tenant
	if err := checkActorTenant(tenant); err != nil {
		return nil, err
	}
	env, err := e.envelope(ctx, audit.Actor{Tenant: tenant}, true)
	if err != nil {
		return nil, errtext.Errorf("retention: envelope: %w", err)
	}
	return env, nil
}

// TenantContext returns the encryption context that binds a message
// sealed with [Encrypted.Envelope] to the tenant in ctx and to object, a
// name for what it is (a table and row id, say): a ciphertext moved to
// another tenant or object does not open. Without a tenant in ctx, the
// context names none, and the tenant's envelope cannot be had anyway.
func TenantContext(ctx context.Context, object string) envelope.Context {
	return envelope.Context{"tomkit.tenant": audit.ActorFrom(ctx).Tenant, "tomkit.object": object}
}

func encContext(key string, m Meta) envelope.Context {
	return envelope.Context{"tomkit.retention.key": key, "tenant": m.Tenant, "class": string(m.Class)}
}

// sealLimit is the size up to which an object is encrypted and decrypted
// in memory, as one message, rather than streamed: one segment of the
// envelope format. Both give the same format.
const sealLimit = envelope.DefaultSegmentSize

// Put implements [Partition]: the content is encrypted in memory up to
// one segment, and as it streams beyond.
func (ep *encPartition) Put(ctx context.Context, key string, r io.Reader, m Meta) error {
	e := ep.e
	scope, err := ep.scopeOf(m)
	if err != nil {
		return errtext.Errorf("retention: encrypt: %w", err)
	}
	env, err := e.envelope(ctx, scope, true)
	if err != nil {
		return errtext.Errorf("retention: encrypt: %w", err)
	}
	head, err := io.ReadAll(&io.LimitedReader{R: r, N: sealLimit})
	if err != nil {
		return errtext.Errorf("retention: encrypt: %w", err)
	}
	if len(head) < sealLimit {
		ct, err := env.Seal(ctx, make([]byte, 0, len(head)+env.Overhead(len(head))), head, encContext(key, m))
		clear(head)
		if err != nil {
			return errtext.Errorf("retention: encrypt: %w", err)
		}
		return ep.p.Put(ctx, key, bytes.NewReader(ct), m)
	}
	r = io.MultiReader(bytes.NewReader(head), r)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := env.Encrypt(ctx, pw, encContext(key, m))
		if err == nil {
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	err = ep.p.Put(ctx, key, pr, m)
	pr.CloseWithError(errors.New("retention: encrypted put aborted"))
	<-done // r is not read after Put returns
	return err
}

type decReader struct {
	io.Reader
	c io.Closer
}

func (d decReader) Close() error { return d.c.Close() }

// Get implements [Partition]. An object whose key was erased fails with
// [ErrErased]; one that was altered fails, at Get or while reading, with
// an envelope authentication error. No unauthenticated byte is returned.
func (ep *encPartition) Get(ctx context.Context, key string) (io.ReadCloser, Meta, error) {
	e := ep.e
	rc, m, err := ep.p.Get(ctx, key)
	if err != nil {
		return nil, Meta{}, err
	}
	scope, err := ep.scopeOf(m)
	if err != nil {
		rc.Close()
		return nil, Meta{}, errtext.Errorf("retention: decrypt: %w", err)
	}
	env, err := e.envelope(ctx, scope, false)
	if err == nil {
		var head []byte
		head, err = io.ReadAll(&io.LimitedReader{R: rc, N: sealLimit + int64(env.Overhead(sealLimit))})
		if err == nil && len(head) < sealLimit+env.Overhead(sealLimit) {
			// The whole object: open it in memory.
			rc.Close()
			var pt []byte
			if pt, err = env.Open(ctx, nil, head, encContext(key, m)); err != nil {
				return nil, Meta{}, errtext.Errorf("retention: decrypt: %w", err)
			}
			return io.NopCloser(bytes.NewReader(pt)), m, nil
		}
		var pr io.Reader
		if err == nil {
			pr, err = env.Decrypt(ctx, io.MultiReader(bytes.NewReader(head), rc), encContext(key, m))
		}
		if err == nil {
			return decReader{pr, rc}, m, nil
		}
	}
	rc.Close()
	return nil, Meta{}, errtext.Errorf("retention: decrypt: %w", err)
}

// Stat implements [Partition].
func (ep *encPartition) Stat(ctx context.Context, key string) (Meta, error) {
	return ep.p.Stat(ctx, key)
}

// SetMeta implements [Partition]. The class, tenant and subject are bound
// to the ciphertext and cannot change.
func (ep *encPartition) SetMeta(ctx context.Context, key string, m Meta) error {
	if _, err := ep.scopeOf(m); err != nil {
		return errtext.Errorf("retention: set meta %q: %w", key, err)
	}
	old, err := ep.p.Stat(ctx, key)
	if err != nil {
		return err
	}
	if old.Class != m.Class || old.Tenant != m.Tenant || old.Subject != m.Subject {
		return fmt.Errorf("retention: set meta %q: class, tenant and subject of an encrypted object are fixed", key)
	}
	return ep.p.SetMeta(ctx, key, m)
}

// Delete implements [Partition].
func (ep *encPartition) Delete(ctx context.Context, key string) error { return ep.p.Delete(ctx, key) }

// List implements [Partition].
func (ep *encPartition) List(ctx context.Context, after string, limit int) ([]Entry, error) {
	return ep.p.List(ctx, after, limit)
}

// ListExpired implements [Partition].
func (ep *encPartition) ListExpired(ctx context.Context, cut Cutoff, after string, limit int) ([]Entry, error) {
	return ep.p.ListExpired(ctx, cut, after, limit)
}

// DeleteExpired implements [Partition].
func (ep *encPartition) DeleteExpired(ctx context.Context, cut Cutoff, keys []string) ([]string, error) {
	return ep.p.DeleteExpired(ctx, cut, keys)
}

// Erase crypto-shreds the data of a data subject (scope with Tenant and
// Subject) or of a whole tenant (scope with Tenant only: the tenant's key
// and the keys of all its subjects). The keys are destroyed in the
// keyring, so every copy of the ciphertext, backups included, is
// unreadable from then on ([ErrErased]); the objects themselves remain
// until the purge removes them. The erasure is audited as
// "retention.erase" at warning severity, with the subject as a personal
// attribute.
//
// Erasure reaches as far as the keyring does: see [kms.Keyring.Shred] on
// copies of the keyring file.
func (e *Encrypted) Erase(ctx context.Context, scope audit.Actor) error {
	if scope.Tenant == "" {
		return fmt.Errorf("%w in the erase scope", ErrNoTenant)
	}
	scopes := []audit.Actor{scope}
	if scope.Subject == "" {
		// Subjects' keys created elsewhere (another process on the file,
		// another instance in PostgreSQL) are listed too.
		if err := e.ring.Reload(ctx); err != nil {
			return errtext.Errorf("retention: erase: %w", err)
		}
		scopes = nil
		for _, si := range e.ring.List() {
			if si.Destroyed.IsZero() && si.Scope.Tenant == scope.Tenant {
				scopes = append(scopes, si.Scope)
			}
		}
	}
	var err error
	shredded := 0
	for _, s := range scopes {
		if serr := e.ring.Shred(ctx, s); serr != nil && !errors.Is(serr, kms.ErrUnknownKey) {
			err = errors.Join(err, serr)
			continue
		}
		shredded++
		e.drop(s)
	}
	ev := audit.Event{Action: "retention.erase", Resource: "tenant:" + scope.Tenant, Outcome: audit.OutcomeAllow,
		Severity: audit.SeverityWarning, Reason: "crypto-shredding (Art. 17 GDPR)",
		Attributes: []audit.Attr{audit.String("keys_destroyed", fmt.Sprint(shredded))}}
	if scope.Subject != "" {
		ev.Attributes = append(ev.Attributes, audit.Personal("subject", scope.Subject))
	}
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeError, err.Error()
	}
	if lerr := e.log.Log(ctx, ev); lerr != nil {
		return errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	if err != nil {
		return errtext.Errorf("retention: erase: %w", err)
	}
	return nil
}
