// Package retention is retention-aware storage: every object carries a data
// class and a retain-until date, is unreadable from that date on, and is
// deleted by a batched purge that leaves evidence.
//
// Object-lock systems (S3 Object Lock, GCS bucket lock, Azure immutable
// storage) guarantee a minimum: data is not deleted before a date. The GDPR
// needs a maximum as well: storage limitation (Art. 5(1)(e)) and erasure
// (Art. 17). This package enforces both.
//
// It implements these TOM clauses: "encrypted daily backups, kept at most
// 30 days, with regular restore tests" and "backups with defined deletion
// and overwrite cycles of up to 90 days; content data excluded under
// zero-data-retention operation".
//
// # Tenants
//
// Every object belongs to the tenant of the [audit.Actor] in the ctx that
// wrote it, and lives in that tenant's [Partition] of the [Backend]: a
// directory per tenant (fsstore), the tenant as the first column of the
// primary key (pgstore), a key prefix per tenant (blobstore). Two tenants
// can use the same key without colliding, and no listing of one partition
// returns another's objects. Get, Stat, Put, Delete, legal holds and
// overrides act in the caller's partition only: another tenant's object
// is [ErrNotFound], by the same path and with the same error as a missing
// one, and the miss is audited as a deny. A ctx without a tenant (no
// actor, or a subject without a tenant) is [ErrNoTenant] before anything
// reaches the backend; a name [CheckTenant] refuses is [ErrInvalidTenant].
//
// [Store.Purge], [Store.Migrate] and the [Backups] methods cross tenants.
// They take only the operator path, a ctx from [WithOperator] whose actor
// has a subject and no tenant ([ErrNotOperator] otherwise), and their
// audit events name the operator and mark the crossing. A store written
// before tenant partitioning is refused with [ErrUnpartitioned], which
// names the fix: [Store.Migrate] (`tomkit retention migrate`) moves each
// object into the partition of the tenant its record names, never to
// whoever asks first.
//
// # Policy
//
// A [Policy] gives each [Class] a maximum age. [DefaultPolicy] follows the
// TOMs: content 30 days, metadata 90, backups 30 ([DefaultBackupAge]),
// logs 30, audit evidence 365. The backup class may be raised to at most
// 90 days ([MaxBackupAge]). [Store.Put] stamps each object with its class,
// its creation time and a retain-until that can never lie beyond the
// creation time plus the class's maximum age; a request for more is
// [ErrRetentionTooLong], an unknown class [ErrUnknownClass], a negative or
// absurd duration [ErrInvalidDuration]. When a policy is tightened later,
// objects already stored are held to the new maximum as well.
//
// # Reads
//
// From its retain-until on, an object is [ErrExpired] for [Store.Get] and
// [Store.Stat], whether or not the purge has run: the purge only reclaims
// space, it is not what makes data unavailable. Reads of expired objects
// are audited as "retention.read" with outcome deny.
//
// # Minimum retention and legal hold
//
// [PutOptions.LockFor] sets a minimum retention (never beyond the maximum)
// in one of two modes, after S3 Object Lock. Under [LockGovernance] an
// early delete needs a privileged override: the caller asks for it with
// [WithOverride] and [Config.AllowOverride] must grant it to the actor; the
// delete is then audited at warning severity with the reason. Under
// [LockCompliance] there is no early delete at all ([ErrLocked]).
//
// A legal hold ([Store.SetLegalHold]) blocks every deletion, early or due,
// until it is lifted, which needs a granted override.
//
// When a legal hold meets a maximum age, the hold wins: the object is not
// deleted when it expires. Each purge run emits a
// "retention.purge.held" event at warning severity for it and lists it in
// [PurgeReport.Held], so that the over-retention is visible and justified
// in the evidence. The object stays unreadable for normal reads; a granted
// override may read it (audited), which is what the legal process needs.
//
// # Purge
//
// [Store.Purge] works partition by partition, in small batches in key
// order: list expired objects,
// then ask the backend to delete them with an atomic re-check, so that an
// object rewritten or put on hold after it was listed survives (a
// [BatchPurger] backend such as pgstore does both in one statement). Each batch
// commits on its own, which keeps readers unblocked (River's JobCleaner
// pattern) and makes the purge resumable: a run that dies part-way has
// deleted whole batches only, and the next run finishes the job. Each batch
// and each run is audited; the run's "retention.purge" event carries the
// counts, the SHA-256 digest of the deleted keys and the time. The
// command `tomkit retention purge [--dry-run]` runs it.
//
// # Zero data retention
//
// With [Config.ZDR] set, [ClassContent] never reaches the backend: under
// [ZDRRefuse] content writes fail with [ErrZeroRetention]; under
// [ZDRMemory] content is held in process memory only, for at most
// [Config.ZDRTTL] (15 minutes by default, 24 hours at most), and is lost on
// restart. Legal holds and locks on content are refused under ZDR, as they
// would need persistence. Metadata and the other classes are stored as
// usual. Backups leave content out whenever the source runs with ZDR.
//
// [Config.ZDRFor] decides per call instead, from the ctx, so that tenants
// of one store differ: section203.ZeroRetention gives each tenant in
// § 203 mode its rule (refuse, or memory only) and stores the content of
// the others. A refusal by such a rule matches [ErrZeroRetention] and the
// rule's own error (section203.ErrZeroRetention). Content refused or kept
// in memory never reaches the backend, so backups cannot hold it; content
// a tenant stored before its rule applied stays until it expires or is
// erased.
//
// # Encryption and erasure: the per-tenant data path
//
// A [Store] over [NewEncrypted] is the way to keep tenant data: every
// object is encrypted at rest with tomkit's envelope encryption under the
// key of the actor in the ctx that wrote it (its tenant and subject),
// bound to tenant, class and key, in that tenant's partition. Keys are
// created on first use (audited once by the keyring), envelopes are kept
// per scope in a bounded cache that follows rotation and shredding, and
// nothing is set up per tenant. [Encrypted.Envelope] gives the tenant's
// envelope for data kept outside the store. [Encrypted.Erase]
// crypto-shreds a subject or a tenant: the keys are destroyed, and every
// copy, backups included, becomes unreadable ([ErrErased]); a later write
// of that scope gets a new key.
//
// The crypto/envelope and crypto/kms packages underneath are the
// building blocks: use them directly for a format of your own (files, a
// stream to another service), and then create each scope's key with
// kms.Keyring.Create before its first use. The section203 Isolation silo
// is for a separate backend per tenant.
//
// # Backups
//
// [Backups] is a backup set: [Backups.Snapshot] writes an encrypted
// snapshot of a store (expired objects and, under ZDR, content left out;
// an encrypting backend is copied as ciphertext, so erasure reaches
// backups), [Backups.Rotate] deletes snapshots past the retention window
// (30 days by default, at most 90), and [Backups.RestoreVerify] restores a
// snapshot into a scratch backend and compares digests, failing with
// [ErrBackupCorrupt] on any difference. Every step is audited.
//
// # Backends
//
// A [Backend] is raw storage: the fsstore package (the embedded default),
// pgstore (PostgreSQL) and blobstore (gocloud.dev/blob: S3, GCS, Azure,
// Scaleway, fileblob, memblob). All pass the same conformance suite.
//
// # Threat model
//
// The package protects against retention mistakes by the application (data
// kept too long, deleted too early, read after expiry, content leaking into
// storage or backups under ZDR) and against a corrupted or tampered backup
// going unnoticed. It trusts the backend's storage and its administrators:
// whoever can write the backend directly can change records, though a
// corrupt record fails closed as [ErrCorruptMeta]. Time comes from
// [Config.Clock]; a clock set back delays expiry.
package retention
