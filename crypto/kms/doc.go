// Package kms manages tomkit's key-encryption keys (KEKs): per-tenant and
// per-subject Tink keysets in a local keyring file, or keys in an external
// KMS reached through any Tink registry.KMSClient (Vault Transit, AWS, GCP,
// Scaleway). It implements the TOM clauses on key management: encryption
// keys held in a KMS-integrated, Vault-compatible store, rotated regularly,
// with bring-your-own-key, and crypto-shredding for erasure (Art. 17 GDPR).
//
// [Create], [Open] and [OpenOrCreate] give a [Keyring] file sealed by a
// master key ([MasterKeyFromEnv], [MasterKeyFromFile], [RemoteMasterKey]);
// crypto/kms/pgstore keeps one in PostgreSQL for several instances.
// [Keyring.Create] makes the key of a scope (a tenant or a subject) and
// [Keyring.KEK] is its [KEK]; [Keyring.Rotate] adds a key version,
// [Keyring.Shred] crypto-shreds the scope. [NewRemote] wraps keys in an
// external KMS instead. Every key operation is audited.
//
// The guide, docs/KMS.md in the repository, has the sections "Key
// management", "Several instances", "Key wrap limit", "Threat model",
// "Auditing".
package kms
