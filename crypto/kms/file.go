package kms

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms/internal/backend"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/internal/errtext"
)

// encode encodes st as the document of version seq (see
// backend.Store.Binding).
func (r *Keyring) encode(st *ringState, seq uint64) ([]byte, error) {
	f := keyfile.File{Scopes: []keyfile.Scope{}}
	if r.store != nil && r.store.Binding() != "" {
		f.Name, f.Seq = r.store.Binding(), seq
	}
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
				return nil, errtext.Errorf("kms: encrypt keyset: %w", err)
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
		return nil, errtext.Errorf("kms: %w", err)
	}
	return b, nil
}

// decode parses and checks a keyring file. A file in the legacy format
// (keyfile.V1) loads with every keyset marked for re-encryption, so the
// next change writes the whole file in the current format.
func (r *Keyring) decode(b []byte, v backend.Version) (*ringState, error) {
	f, err := keyfile.Parse(b, r.cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongMasterKey, err)
	}
	if bind := ""; r.store != nil {
		if bind = r.store.Binding(); f.Name != bind || bind != "" && f.Seq != v.Seq || bind == "" && f.Seq != 0 {
			return nil, fmt.Errorf("%w: document of keyring %q version %d stored as %q version %d", ErrWrongMasterKey, f.Name, f.Seq, bind, v.Seq)
		}
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
