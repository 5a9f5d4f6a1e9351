// Package kms manages tomkit's key-encryption keys (KEKs): per-tenant and
// per-subject Tink keysets in a local keyring file, or keys in an external
// KMS reached through any Tink registry.KMSClient (Vault Transit, AWS, GCP,
// Scaleway). It implements the TOM clauses on key management: encryption
// keys held in a KMS-integrated, Vault-compatible store, rotated regularly,
// with bring-your-own-key, and crypto-shredding for erasure (Art. 17 GDPR).
//
// # Key management
//
// A [Keyring] holds one Tink keyset of AES256_GCM keys per scope. A scope
// is a tenant, or one data subject of a tenant, named by an
// [github.com/tomkit/tomkit/audit.Actor]. The keyring file is encrypted
// under a master key, which comes from the TOMKIT_MASTER_KEY environment
// variable ([MasterKeyFromEnv]), from a file only its owner may access
// ([MasterKeyFromFile]), or from a remote KMS ([RemoteMasterKey]).
//
// Key operations follow Vault Transit:
//
//   - [Keyring.Rotate] adds a new primary key; older ciphertexts still
//     decrypt.
//   - envelope's Rewrap moves a ciphertext's DEK under the primary
//     without touching its payload.
//   - [Keyring.SetMinVersion] retires older keys ([ErrKeyRetired]).
//   - [Keyring.Shred] destroys a scope's keys: its ciphertexts become
//     unrecoverable and decrypting one fails with [ErrKeyDestroyed].
//
// A scope has no key until [Keyring.Create] gives it one. The per-tenant
// data path of package retention (retention.NewEncrypted) does so on
// first use; code that uses [Keyring.KEK] directly must call Create
// first. [Keyring.Primary] tells the current key version of a scope,
// without I/O.
//
// A service and `tomkit keys` may share a keyring file; a service sees
// changes made elsewhere (a shred, a retirement) after [Keyring.Reload].
//
// # Several instances
//
// The keyring file is the default for one instance. Replicas share a
// keyring in PostgreSQL through package
// [github.com/tomkit/tomkit/crypto/kms/pgstore], which returns the same
// [Keyring]: once [Keyring.Shred] or [Keyring.SetMinVersion] has returned
// on one instance, no instance seals under or opens with the keys it took
// out of use, and an instance that cannot confirm it holds the latest
// keys refuses every key use with [ErrStale]. A [Revocable] KEK lets
// envelope's DEK cache stop cached keys at the same moment.
//
// # Key wrap limit
//
// A local KEK wraps each DEK with AES-256-GCM under a random 96-bit nonce,
// and NIST SP 800-38D allows one key at most 2^32 such invocations. The
// keyring counts wraps per key version in the keyring file, shared by
// every process that uses the file, and rotates the scope (audited as
// "crypto.key_rotate" with trigger=wrap_limit) when a version reaches
// [DefaultRotateAfter] (2^31) wraps, or [Config.RotateAfter]. Counts are
// reserved in blocks (up to 65536) before use, so a crash or exit can only
// overcount. Wrap fails when it cannot reserve a count (the file cannot
// be written) and, with [ErrWrapLimit], when the scope has to rotate and
// cannot. [Remote] keys are not counted here: the KMS holds its own limits.
//
// # Threat model
//
// The keyring file may be stolen: without the master key it reveals only
// scope names, key ids and times. The whole file is authenticated under
// the master key: changing any of it (to lower a minimum version, move a
// keyset to another tenant, add or remove a destroyed scope) makes it fail
// to load with [ErrWrongMasterKey]. A file in the first format, whose list
// of destroyed scopes was not authenticated, is rewritten in the current
// one at its next change (see docs/FORMAT.md). Someone who can write the
// file can still replace it with an older copy; keep it on storage only
// the service can write. Keys are in process memory while in use.
//
// # Auditing
//
// Every key operation emits an audit event: "crypto.keyring_create",
// "crypto.keyring_open" (loading the keys), "crypto.key_create",
// "crypto.key_rotate" (with trigger=wrap_limit when the keyring rotated
// by itself), "crypto.key_min_version", "crypto.key_shred",
// "crypto.kek_load" (a remote key) and "crypto.unwrap" for every failure
// to unwrap a DEK (destroyed, retired or unknown key, wrong context,
// tampering). Successful per-message wraps and unwraps are not audited:
// they happen once per message, and a durable audit write each would cap
// throughput at the audit log's fsync rate. A failing audit write fails
// the operation; for changes already written to the keyring file the
// error says so.
package kms
