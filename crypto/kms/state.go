package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/internal/errtext"
)

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

func (s *scopeState) key(id uint32) *keyVersion {
	for _, k := range s.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

func checkScope(s audit.Actor) (scopeKey, error) {
	if s.Tenant == "" {
		return scopeKey{}, fmt.Errorf("%w: empty tenant", ErrInvalidScope)
	}
	return scopeKey{s.Tenant, s.Subject}, nil
}

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
				return errtext.Errorf("kms: keyset: %w", err)
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
				return errtext.Errorf("kms: keyset: %w", err)
			}
			if kv.aead, err = cipher.NewGCM(b); err != nil {
				return errtext.Errorf("kms: keyset: %w", err)
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
