package kms

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// A KEK is a key-encryption key for one scope: it wraps and unwraps the
// data-encryption keys (DEKs) that [github.com/tomkit/tomkit/crypto/envelope]
// generates for every message. It is the plug-in point of tomkit's
// encryption: the local [Keyring] and [Remote] (any Tink
// registry.KMSClient: Vault Transit, AWS, GCP, Scaleway) implement it.
//
// Implementations must be safe for concurrent use, must bind ad to the
// wrapped key (unwrapping with different ad fails), and must report
// [ErrKeyDestroyed], [ErrKeyRetired] and [ErrUnknownKey] for keys in those
// states so that callers can tell them apart.
type KEK interface {
	// Wrap encrypts dek under the current primary key, bound to ad, and
	// appends the result to dst. It returns the id of the key it used.
	Wrap(ctx context.Context, dst, dek, ad []byte) (KeyID, []byte, error)
	// Unwrap decrypts wrapped, which Wrap produced under key id with the
	// same ad, and appends the DEK to dst.
	Unwrap(ctx context.Context, dst []byte, id KeyID, wrapped, ad []byte) ([]byte, error)
}

// A Revocable KEK can tell, without wrapping or unwrapping, whether one
// of its keys may still be used. Envelope's DEK cache asks it before
// every use of a cached DEK, so that a shred, a retirement or a keyring
// that fell behind ([ErrStale]) stops cached keys at once, not after the
// cache's MaxAge. [LocalKEK] implements it.
type Revocable interface {
	KEK
	// Usable returns nil when key id may wrap and unwrap at now, else
	// the error Unwrap would return ([ErrKeyDestroyed], [ErrKeyRetired],
	// [ErrUnknownKey], [ErrStale]). now is the caller's reading of
	// time.Now, which spares the KEK a clock read on the hot path; a
	// [Keyring] with its own [Config.Clock] reads that instead. It must be
	// cheap: no I/O.
	Usable(id KeyID, now time.Time) error
}

// KeyID names one version of a KEK. It is written, in the clear, into the
// header of every ciphertext so that the right key can be found again.
//
// Ring identifies the key ring (one scope of a [Keyring], or one remote key
// URI). It is random for a local scope, so the tenant or subject name is
// never written into ciphertexts. Key identifies the version within the
// ring (the Tink key id for a local scope, zero for a remote key, whose
// versions the KMS tracks itself).
type KeyID struct {
	Ring [8]byte
	Key  uint32
}

// String returns the id as "ring/key" in hex, for logs and the CLI.
func (id KeyID) String() string {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], id.Key)
	return hex.EncodeToString(id.Ring[:]) + "/" + hex.EncodeToString(k[:])
}

// Errors returned by key operations. They are matched with [errors.Is];
// the envelope package returns them wrapped.
var (
	// ErrKeyDestroyed reports a ciphertext whose key was shredded with
	// [Keyring.Shred]. The ciphertext cannot be recovered, in backups
	// neither.
	ErrKeyDestroyed = errors.New("kms: key destroyed")
	// ErrKeyRetired reports a key version below the scope's minimum
	// decryption version (see [Keyring.SetMinVersion]).
	ErrKeyRetired = errors.New("kms: key version retired")
	// ErrUnknownKey reports a key id that no scope of the keyring knows,
	// or a scope that has no key yet.
	ErrUnknownKey = errors.New("kms: unknown key")
	// ErrUnwrap reports a wrapped key that failed authentication: it was
	// tampered with, or unwrapped with a different encryption context.
	ErrUnwrap = errors.New("kms: unwrap failed")
	// ErrWrongMasterKey reports a keyring file that does not decrypt under
	// the master key: the key is wrong or the file was tampered with.
	ErrWrongMasterKey = errors.New("kms: wrong master key or corrupt keyring")
	// ErrNoMasterKey reports that no master key was configured.
	ErrNoMasterKey = errors.New("kms: no master key")
	// ErrInvalidMasterKey reports a master key that is not the standard
	// base64 encoding of 32 bytes.
	ErrInvalidMasterKey = errors.New("kms: invalid master key")
	// ErrLoosePermissions reports a master key file or keyring file that
	// group or others may read or write. Fix it with chmod 600.
	ErrLoosePermissions = errors.New("kms: file permissions looser than 0600")
	// ErrInvalidScope reports a scope without a tenant.
	ErrInvalidScope = errors.New("kms: invalid scope")
	// ErrExist reports an attempt to create a keyring file that exists.
	ErrExist = errors.New("kms: keyring already exists")
	// ErrConflict reports a keyring file that changed under a writer
	// despite the lock (a process that does not lock, a restored backup).
	// The change was not made; retry it.
	ErrConflict = errors.New("kms: keyring file changed by another process")
	// ErrWrapLimit reports a key version that reached its wrap limit
	// ([Config.RotateAfter]) when its scope could not be rotated: Wrap
	// refuses rather than exceed the limit.
	ErrWrapLimit = errors.New("kms: key wrap limit reached")
	// ErrInvalidVersion reports a minimum decryption version that is zero
	// or above the primary version.
	ErrInvalidVersion = errors.New("kms: invalid key version")
	// ErrStale reports a keyring shared by several instances (in
	// PostgreSQL) that cannot confirm it holds the latest keys: it lost
	// its notification connection, or could not renew its lease. Key use
	// is refused until it has caught up, so that no instance uses a key
	// that was shredded or retired elsewhere. Retry later.
	ErrStale = errors.New("kms: keyring not confirmed current; key use refused")
)
