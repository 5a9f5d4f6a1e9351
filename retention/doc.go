// Package retention is retention-aware storage: every object carries a data
// class and a retain-until date, is unreadable from that date on, and is
// deleted by a batched purge that leaves evidence.
//
// Object-lock systems (S3 Object Lock, GCS bucket lock, Azure immutable
// storage) guarantee a minimum: data is not deleted before a date. The GDPR
// needs a maximum as well: storage limitation (Art. 5(1)(e)) and erasure
// (Art. 17). This package enforces both. It implements the TOM clauses on
// encrypted backups kept at most 30 days (90 with deletion cycles) and on
// content excluded under zero-data-retention operation.
//
// [New] wraps a [Backend] (retention/fsstore, the embedded default;
// retention/pgstore; retention/blobstore) in a [Store]. [Store.Put]
// stamps each object with its [Class] and a retain-until that never lies
// beyond the [Policy]'s maximum age ([DefaultPolicy]: content 30 days);
// from then on it is [ErrExpired], whether or not [Store.Purge] has run.
// Every object lives in the partition of the tenant of the [audit.Actor]
// in the ctx; another tenant's object is [ErrNotFound], a ctx without a
// tenant [ErrNoTenant]. [PutOptions.LockFor] and [Store.SetLegalHold]
// keep data longer where the law requires. [Config.ZDR] and
// [Config.ZDRFor] keep content out of the backend (zero data retention).
// A Store over [NewEncrypted] is the way to keep tenant data: encrypted
// under a key per tenant and subject, erased by crypto-shredding
// ([Encrypted.Erase]). [Backups] writes, rotates and restore-verifies
// encrypted snapshots. Every decision is audited.
//
// The guide, docs/RETENTION.md in the repository, has tenants, the
// policy, reads, locks and holds, the purge, zero data retention, the
// data path, backups, backends and the threat model.
package retention
