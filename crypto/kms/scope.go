package kms

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/internal/errtext"
)

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
	return r.change(ctx, func(old *ringState) (edit, error) {
		if old.scopes[k] != nil {
			return edit{}, nil
		}
		m := keyset.NewManager()
		id, err := m.Add(aead.AES256GCMNoPrefixKeyTemplate())
		if err != nil {
			return edit{}, errtext.Errorf("kms: create: %w", err)
		}
		if err := m.SetPrimary(id); err != nil {
			return edit{}, errtext.Errorf("kms: create: %w", err)
		}
		h, err := m.Handle()
		if err != nil {
			return edit{}, errtext.Errorf("kms: create: %w", err)
		}
		s := &scopeState{scope: scope, created: r.cfg.now().UTC(), minVersion: 1, handle: h}
		if _, err := rand.Read(s.ring[:]); err != nil {
			return edit{}, errtext.Errorf("kms: create: %w", err)
		}
		if err := s.load([]keyfile.Key{{ID: id, Version: 1, Created: s.created}}); err != nil {
			return edit{}, err
		}
		return edit{st: old.with(k, s), action: "crypto.key_create", scope: s, attrs: []audit.Attr{audit.String("key_version", "1")}}, nil
	})
}

// Rotate adds a new key to scope and makes it the primary: new messages
// are wrapped under it, and ciphertexts under older versions still
// decrypt until they are retired with [Keyring.SetMinVersion]. Use
// envelope's Rewrap to move old ciphertexts to the new key. It returns the
// new version.
func (r *Keyring) Rotate(ctx context.Context, scope audit.Actor) (uint32, error) {
	var v uint32
	err := r.change(ctx, func(old *ringState) (edit, error) {
		k, s, err := old.scope(scope)
		if err != nil {
			return edit{}, err
		}
		st, nv, err := r.rotate(old, k, s)
		if err != nil {
			return edit{}, err
		}
		return edit{st: st, action: "crypto.key_rotate", scope: st.scopes[k], attrs: []audit.Attr{audit.String("key_version", fmt.Sprint(nv))},
			done: func() { v = nv }}, nil
	})
	return v, err
}

// rotate returns old with a new primary key version in scope k.
func (r *Keyring) rotate(old *ringState, k scopeKey, s *scopeState) (*ringState, uint32, error) {
	m := keyset.NewManagerFromHandle(s.handle)
	id, err := m.Add(aead.AES256GCMNoPrefixKeyTemplate())
	if err != nil {
		return nil, 0, errtext.Errorf("kms: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, 0, errtext.Errorf("kms: rotate: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, 0, errtext.Errorf("kms: rotate: %w", err)
	}
	ns := &scopeState{scope: s.scope, ring: s.ring, created: s.created, minVersion: s.minVersion, handle: h}
	v := s.keys[len(s.keys)-1].version + 1
	if err := ns.load(append(s.fileKeys(), keyfile.Key{ID: id, Version: v, Created: r.cfg.now().UTC()})); err != nil {
		return nil, 0, err
	}
	ns.inherit(s)
	return old.with(k, ns), v, nil
}

// SetMinVersion sets the minimum decryption version of scope, as Vault
// Transit's min_decryption_version does: ciphertexts under older versions
// fail with [ErrKeyRetired], and the older keys are disabled in the Tink
// keyset. Lowering it again re-enables them. v must be between 1 and the
// primary version, else [ErrInvalidVersion].
func (r *Keyring) SetMinVersion(ctx context.Context, scope audit.Actor, v uint32) error {
	return r.change(ctx, func(old *ringState) (edit, error) {
		k, s, err := old.scope(scope)
		if err != nil {
			return edit{}, err
		}
		if v < 1 || v > s.primary.version {
			return edit{}, fmt.Errorf("%w: %d not in [1, %d]", ErrInvalidVersion, v, s.primary.version)
		}
		m := keyset.NewManagerFromHandle(s.handle)
		for _, kv := range s.keys {
			if kv.version < v {
				err = m.Disable(kv.id)
			} else {
				err = m.Enable(kv.id)
			}
			if err != nil {
				return edit{}, errtext.Errorf("kms: min version: %w", err)
			}
		}
		h, err := m.Handle()
		if err != nil {
			return edit{}, errtext.Errorf("kms: min version: %w", err)
		}
		ns := &scopeState{scope: s.scope, ring: s.ring, created: s.created, minVersion: v, handle: h}
		if err := ns.load(s.fileKeys()); err != nil {
			return edit{}, err
		}
		ns.inherit(s)
		return edit{st: old.with(k, ns), action: "crypto.key_min_version", scope: ns, revoke: true, attrs: []audit.Attr{audit.String("min_version", fmt.Sprint(v))}}, nil
	})
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
	return r.change(ctx, func(old *ringState) (edit, error) {
		k, s, err := old.scope(scope)
		if err != nil {
			return edit{}, err
		}
		ns := old.clone()
		delete(ns.scopes, k)
		delete(ns.rings, s.ring)
		ns.destroyed[s.ring] = r.cfg.now().UTC()
		return edit{st: ns, action: "crypto.key_shred", scope: s, revoke: true}, nil
	})
}
