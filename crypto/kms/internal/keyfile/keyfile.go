// Package keyfile is the keyring file format of package kms, documented
// in docs/FORMAT.md: the JSON document, the associated data that binds
// each scope's metadata to its encrypted keyset, and the authenticator
// that binds everything else (the list of destroyed scopes, the wrap
// counters) to the master key. It holds no keys of its own.
package keyfile

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/internal/errtext"
)

// Format names. V1 is read (and rewritten as V2 at the next change); V2
// is written.
const (
	V1 = "tomkit-keyring-v1"
	V2 = "tomkit-keyring-v2"
)

// authLabel starts the associated data of a V2 file's authenticator.
const authLabel = "tomkit-keyring-v2 auth\n"

// Errors of the format. Package kms reports them as its ErrWrongMasterKey.
var (
	ErrFormat = errors.New("keyfile: malformed keyring file")
	ErrAuth   = errors.New("keyfile: keyring file fails authentication")
)

// File is a keyring file.
type File struct {
	Format    string      `json:"format"`
	Scopes    []Scope     `json:"scopes"`
	Destroyed []Tombstone `json:"destroyed,omitempty"`
	// Wraps (V2) counts the DEK wraps reserved under each key version.
	Wraps []Wraps `json:"wraps,omitempty"`
	// Name and Seq (V2, in a database only) bind the document to its
	// keyring's name and to its version number there, so that a
	// document cannot be moved to another keyring or replayed under a
	// later version. A file has neither.
	Name string `json:"name,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`
	// Auth (V2) is the master key's encryption of nothing, with every
	// other field of the file as associated data: a MAC that only the
	// master key can make.
	Auth []byte `json:"auth,omitempty"`
}

// Meta is the part of a scope bound as associated data to its encrypted
// keyset, so that changing it (lowering the minimum version, moving a
// keyset to another tenant) fails to decrypt.
type Meta struct {
	Tenant     string    `json:"tenant"`
	Subject    string    `json:"subject,omitempty"`
	Ring       string    `json:"ring"`
	Created    time.Time `json:"created"`
	MinVersion uint32    `json:"min_version"`
	Keys       []Key     `json:"keys"`
}

// Scope is one scope: its metadata and its keyset.
type Scope struct {
	Meta
	// Keyset is the Tink keyset, encrypted under the master key (Tink's
	// binary EncryptedKeyset) with KeysetAD of Meta as associated data.
	Keyset []byte `json:"keyset"`
}

// Key is one key version of a scope.
type Key struct {
	ID      uint32    `json:"id"`
	Version uint32    `json:"version"`
	Created time.Time `json:"created"`
}

// Wraps is the number of DEK wraps reserved under one key version by
// every process sharing the file: an upper bound of the wraps made.
type Wraps struct {
	Ring     string `json:"ring"`
	Key      uint32 `json:"key"`
	Reserved uint64 `json:"reserved"`
}

// Tombstone records a shredded scope by its ring id.
type Tombstone struct {
	Ring      string    `json:"ring"`
	Destroyed time.Time `json:"destroyed"`
}

// KeysetAD returns the associated data of a scope's keyset in a file of
// format f: the format name, a newline and the JSON of m. The format name
// differs between versions, so a V2 keyset cannot be moved into a V1 file,
// whose other fields are not authenticated.
func KeysetAD(f string, m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte(f+"\n"), b...), nil
}

func (f *File) authAD() ([]byte, error) {
	g := *f
	g.Auth = nil
	b, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	return append([]byte(authLabel), b...), nil
}

// Encode sets the format to V2, authenticates the file under master and
// returns its encoding.
func (f *File) Encode(master tink.AEAD) ([]byte, error) {
	f.Format = V2
	ad, err := f.authAD()
	if err != nil {
		return nil, err
	}
	if f.Auth, err = master.Encrypt(nil, ad); err != nil {
		return nil, errtext.Errorf("keyfile: authenticate: %w", err)
	}
	return json.MarshalIndent(f, "", "  ")
}

// Parse parses a V1 or V2 file. A V2 file's authenticator is checked
// under master before anything else is used; a V1 file has none (its
// tombstones are not authenticated) and is returned as is.
func Parse(b []byte, master tink.AEAD) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	switch f.Format {
	case V1:
		if f.Auth != nil || f.Wraps != nil {
			return nil, fmt.Errorf("%w: authenticator in a %s file", ErrFormat, V1)
		}
	case V2:
		ad, err := f.authAD()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if _, err := master.Decrypt(f.Auth, ad); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuth, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown format %q", ErrFormat, f.Format)
	}
	return &f, nil
}

// Ring encodes a ring id.
func Ring(r [8]byte) string { return hex.EncodeToString(r[:]) }

// ParseRing decodes a ring id: 16 lowercase hex digits.
func ParseRing(s string) ([8]byte, error) {
	var ring [8]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 || hex.EncodeToString(b) != s {
		return ring, fmt.Errorf("%w: bad ring id %q", ErrFormat, s)
	}
	copy(ring[:], b)
	return ring, nil
}
