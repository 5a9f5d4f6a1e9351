package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// ErrErased reports an object whose key was destroyed by
// [Encrypted.Erase]: it is unrecoverable, in every copy and backup.
var ErrErased = kms.ErrKeyDestroyed

// EncryptConfig configures an [Encrypted] backend.
type EncryptConfig struct {
	// Keyring holds one key per tenant and per data subject. Required.
	Keyring *kms.Keyring
	// Logger receives "retention.erase" events and, through the
	// envelope, failed decryptions. Required.
	Logger audit.Logger
}

// Encrypted is a [Backend] that encrypts every object at rest with
// tomkit's envelope encryption (AES-256-GCM, a fresh data key per object,
// streamed in authenticated segments) before it reaches the backend it
// wraps.
//
// The key is that of the object's data subject when [Meta.Subject] is set,
// else that of its tenant, so that [Encrypted.Erase] can crypto-shred one
// subject or a whole tenant. The ciphertext is bound to an encryption
// context of tenant, class and key: an object copied under another key,
// or relabelled with another class or tenant, does not decrypt.
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

	mu   sync.Mutex
	envs map[audit.Actor]*envelope.Envelope
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
	return &Encrypted{b: b, ring: cfg.Keyring, log: cfg.Logger, envs: map[audit.Actor]*envelope.Envelope{}}, nil
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

func (e *Encrypted) envelope(ctx context.Context, scope audit.Actor, create bool) (*envelope.Envelope, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if env, ok := e.envs[scope]; ok {
		return env, nil
	}
	if create {
		if err := e.ring.Create(ctx, scope); err != nil {
			return nil, err
		}
	}
	env, err := envelope.New(e.ring.KEK(scope), envelope.Config{Audit: e.log})
	if err != nil {
		return nil, err
	}
	e.envs[scope] = env
	return env, nil
}

func encContext(key string, m Meta) envelope.Context {
	return envelope.Context{"tomkit.retention.key": key, "tenant": m.Tenant, "class": string(m.Class)}
}

// Put implements [Partition]: the content is encrypted as it streams.
func (ep *encPartition) Put(ctx context.Context, key string, r io.Reader, m Meta) error {
	e := ep.e
	scope, err := ep.scopeOf(m)
	if err != nil {
		return fmt.Errorf("retention: put %q: %w", key, err)
	}
	env, err := e.envelope(ctx, scope, true)
	if err != nil {
		return fmt.Errorf("retention: put %q: %w", key, err)
	}
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
		return nil, Meta{}, fmt.Errorf("retention: get %q: %w", key, err)
	}
	env, err := e.envelope(ctx, scope, false)
	if err == nil {
		var pr io.Reader
		pr, err = env.Decrypt(ctx, rc, encContext(key, m))
		if err == nil {
			return decReader{pr, rc}, m, nil
		}
	}
	rc.Close()
	return nil, Meta{}, fmt.Errorf("retention: get %q: %w", key, err)
}

// Stat implements [Partition].
func (ep *encPartition) Stat(ctx context.Context, key string) (Meta, error) {
	return ep.p.Stat(ctx, key)
}

// SetMeta implements [Partition]. The class, tenant and subject are bound
// to the ciphertext and cannot change.
func (ep *encPartition) SetMeta(ctx context.Context, key string, m Meta) error {
	if _, err := ep.scopeOf(m); err != nil {
		return fmt.Errorf("retention: set meta %q: %w", key, err)
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
			return fmt.Errorf("retention: erase: %w", err)
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
		e.mu.Lock()
		delete(e.envs, s)
		e.mu.Unlock()
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
		return errors.Join(err, fmt.Errorf("retention: audit: %w", lerr))
	}
	if err != nil {
		return fmt.Errorf("retention: erase: %w", err)
	}
	return nil
}
