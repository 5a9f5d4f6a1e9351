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
// The guide, docs/ENVELOPE.md in the repository, has the sections "Threat
// model", "Errors", "Auditing", "Choosing a mode", "Format".
package envelope
