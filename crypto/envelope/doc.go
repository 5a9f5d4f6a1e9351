// Package envelope encrypts data at rest with AES-256-GCM under a fresh
// data-encryption key (DEK) per message or stream, wrapped by a
// key-encryption key (KEK) from package [github.com/tomkit/tomkit/crypto/kms].
// It implements the TOM clause "data and artifacts at rest are encrypted
// with AES-256(-GCM)", with key rotation, rewrap and crypto-shredding.
//
// Two calls cover messages, two cover streams:
//
//	ct, err := env.Seal(ctx, nil, plaintext, envelope.Context{"tenant": "t1"})
//	pt, err := env.Open(ctx, nil, ct, envelope.Context{"tenant": "t1"})
//
//	w, err := env.Encrypt(ctx, file, ec) // io.WriteCloser
//	r, err := env.Decrypt(ctx, file, ec) // io.Reader
//
// For tenant data, use the per-tenant data path of package retention
// (a retention.Store over retention.NewEncrypted, or
// retention.Encrypted.Envelope for data kept elsewhere): it picks the key
// from the actor in the ctx and creates it on first use. An Envelope made
// here by hand needs its scope's key created first (kms.Keyring.Create);
// otherwise the first Seal fails with [ErrUnknownKey].
//
// # Threat model
//
// An attacker who can read, change, truncate, reorder or swap stored
// ciphertexts (a stolen disk, a backup, a malicious storage operator)
// learns nothing but lengths and key ids, and cannot make a ciphertext
// open to anything but its original plaintext. In detail:
//
//   - Each message has its own AES-256 DEK, wrapped by the KEK, and its
//     payload is encrypted with AES-256-GCM (the standard library's
//     crypto/cipher) under it. With the opt-in [Cache], a DEK seals a
//     bounded number of messages, each under its own message number in
//     the nonces, so no nonce repeats under a key.
//   - The encryption [Context] is bound as associated data both to the
//     wrapped DEK and to every payload segment, and into the key
//     derivation: a ciphertext opens only with its context, and a header
//     moved to another ciphertext or context fails.
//   - Key commitment: the header carries a 256-bit SHA-256 commitment to
//     the payload key, checked in constant time before any decryption, so
//     no ciphertext decrypts under two keys (as in the AWS Encryption SDK's
//     committing suites).
//   - Payloads are cut into segments authenticated one by one, with the
//     segment index and a last-segment flag in the nonce: truncation,
//     reordering and duplication are detected, and neither Open nor the
//     Decrypt reader ever returns unauthenticated bytes.
//
// Out of scope: hiding message lengths, protecting keys in the memory of
// a compromised process, and rollback of a keyring file by someone who can
// write it.
//
// # Errors
//
// Every failure is typed: [ErrAuthentication], [ErrTruncated],
// [ErrMalformed], [ErrUnsupportedVersion], [ErrTooLarge],
// [ErrInvalidContext], and the key errors of package kms such as
// [ErrKeyDestroyed], matched with errors.Is. No partial plaintext is ever
// returned.
//
// # Auditing
//
// Failed decryptions and every rewrap emit an audit event; key operations
// are audited by the KEK. Successful Seal and Open calls are not audited
// one by one, which would cost a durable log write per message.
//
// # Choosing a mode
//
// The default, a fresh DEK per message, fits most data: records, files,
// backups. Compromise of one DEK exposes one message, and shredding or
// retiring a KEK takes effect at once. Large messages and streams run at
// the speed of the standard library's AES-GCM; small ones pay a fixed
// setup per message (drawing the DEK, wrapping it, encoding the context,
// one hash for the commitment, the AES key schedule): at 1 KiB, 1.3 to 2
// times the CPU time of the "floor" rows of BenchmarkSeal and
// BenchmarkOpen, which do
// only the least a fresh key needs (draw or unwrap it, expand it, seal 1
// KiB), and about 0.5 (Seal) and 0.9 (Open) times Tink's KMS envelope
// AEAD.
//
// [Config.Cache] fits hot paths of many small records with the same
// encryption context (an event or session store): a DEK seals up to
// [Cache].MaxMessages messages, bytes and age, and Open reuses unwrapped
// DEKs. At 1 KiB Seal and Open take 2.5 to 3.3 times the CPU time of
// the standard library's AES-GCM with a key expanded once. The price is that
// one DEK covers many messages, and a shred or retirement reaches the
// cache only after MaxAge. With a remote KMS the cache also saves a KMS
// call per message. Seal and Open allocate only the AES-GCM state of a
// new key (two allocations) when dst has room, and nothing on a cache
// hit. Streams run in constant memory.
//
// # Format
//
// The ciphertext format is versioned and documented in docs/FORMAT.md,
// with known-answer vectors in testdata/. Its header starts with the
// magic "tmke" and a version byte; new versions are only added, and every
// version this package ever wrote stays readable.
package envelope
