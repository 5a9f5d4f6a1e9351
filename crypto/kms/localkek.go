package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// LocalKEK is the [KEK] of one scope of a [Keyring]. Its Wrap and Unwrap
// run in process with the keys of the Tink keyset; Wrap does not allocate
// but when it reserves its next block of wrap counts (see [Config.RotateAfter]).
// Per-message use is not audited (a durable audit write per message would
// cap throughput at the log's fsync rate); failures to unwrap are.
type LocalKEK struct {
	r   *Keyring
	key scopeKey
}

var _ Revocable = (*LocalKEK)(nil)

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
		if err := k.r.allow(k.r.cfg.now()); err != nil {
			return KeyID{}, nil, err
		}
		st := k.r.state.Load()
		s = st.scopes[k.key]
		if s == nil && k.key.tenant != "" && k.r.catchUp(ctx, st) {
			continue
		}
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
		return KeyID{}, nil, errtext.Errorf("kms: wrap: %w", err)
	}
	dst = p.aead.Seal(dst, dst[n:n+nonceLen], dek, ad)
	return KeyID{s.ring, p.id}, dst, nil
}

// Unwrap implements [KEK]. Failures are audited as "crypto.unwrap".
func (k *LocalKEK) Unwrap(ctx context.Context, dst []byte, id KeyID, wrapped, ad []byte) ([]byte, error) {
	st := k.r.state.Load()
	out, err := k.unwrap(dst, id, wrapped, ad)
	if errors.Is(err, ErrUnknownKey) && k.r.catchUp(ctx, st) {
		out, err = k.unwrap(dst, id, wrapped, ad)
	}
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
	kv, err := k.usable(id, k.r.cfg.now())
	if err != nil {
		return nil, err
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

// Usable implements [Revocable]: it reports whether key id of this scope
// may still be used, with the error Unwrap would return if not.
func (k *LocalKEK) Usable(id KeyID, now time.Time) error {
	if k.r.cfg.Clock != nil {
		now = k.r.cfg.Clock.Now()
	}
	_, err := k.usable(id, now)
	return err
}

func (k *LocalKEK) usable(id KeyID, now time.Time) (*keyVersion, error) {
	if err := k.r.allow(now); err != nil {
		return nil, err
	}
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
	return kv, nil
}

// catchUp reloads a keyring shared by several instances, for a key that
// another instance may have created a moment ago, and reports whether the
// state changed since seen. A file keyring is reloaded by the caller
// (Reload).
func (r *Keyring) catchUp(ctx context.Context, seen *ringState) bool {
	if r.gate == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.refresh(ctx, r.store); err != nil {
		return false
	}
	return r.state.Load() != seen
}

// allow refuses key use with ErrStale when the keyring's gate is closed.
func (r *Keyring) allow(now time.Time) error {
	if r.gate != nil && !r.gate.Allows(now) {
		return ErrStale
	}
	return nil
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

// left reports whether b has a wrap left, without taking it.
func (b *wrapBlock) left() bool {
	return b != nil && b.next.Load() < b.end
}

func newBlock(start, end uint64) *wrapBlock {
	b := &wrapBlock{end: end}
	b.next.Store(start)
	return b
}

// reserve reserves a block of wraps under the primary key of scope k,
// which was p when the caller's block ran out, rotating the scope first
// when the block would pass Config.RotateAfter. It does nothing when the
// primary changed or has a block again meanwhile: the caller retries.
func (r *Keyring) reserve(ctx context.Context, k scopeKey, p *keyVersion) error {
	return r.change(ctx, func(old *ringState) (edit, error) {
		s := old.scopes[k]
		if s == nil || s.primary != p || p.blk.Load().left() {
			return edit{}, nil // changed meanwhile: the caller looks again
		}
		block, limit := r.cfg.wrapBlock(), r.cfg.rotateAfter()
		n := p.reserved.Load()
		if n+block <= limit {
			// Raise the count before writing: if the write fails, the
			// count in memory is too high, never too low, and no wrap
			// uses the block.
			p.reserved.Store(n + block)
			return edit{st: old, done: func() { p.blk.Store(newBlock(n, n+block)) }}, nil
		}
		failed := func(err error) error {
			return fmt.Errorf("%w: version %d has %d wraps and the scope cannot rotate: %w", ErrWrapLimit, p.version, n, err)
		}
		st, v, err := r.rotate(old, k, s)
		if err != nil {
			return edit{}, failed(err)
		}
		np := st.scopes[k].primary
		np.reserved.Store(block)
		return edit{st: st, action: "crypto.key_rotate", reason: "wrap limit", scope: st.scopes[k],
			attrs: []audit.Attr{audit.String("key_version", fmt.Sprint(v)), audit.String("trigger", "wrap_limit"),
				audit.String("wraps", fmt.Sprint(n)), audit.String("rotate_after", fmt.Sprint(limit))},
			done: func() { np.blk.Store(newBlock(0, block)) }, failed: failed}, nil
	})
}
