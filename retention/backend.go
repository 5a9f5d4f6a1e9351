package retention

import (
	"context"
	"errors"
	"github.com/tomkit/tomkit/retention/internal/record"
	"io"
	"time"
)

// LockMode is the minimum-retention mode of an object, after S3 Object
// Lock.
type LockMode string

// The lock modes.
const (
	// LockNone means no minimum retention.
	LockNone LockMode = ""
	// LockGovernance blocks deletion before the lock ends, except through
	// a privileged override (see [WithOverride]), which is audited.
	LockGovernance LockMode = "governance"
	// LockCompliance blocks deletion before the lock ends for everyone.
	LockCompliance LockMode = "compliance"
)

// Meta is the retention record kept beside every object. Backends store it
// faithfully; the [Store] wrapper decides it.
type Meta struct {
	// Class is the object's data class.
	Class Class
	// Created is when the object was written.
	Created time.Time
	// RetainUntil is the maximum retention: from this instant on the
	// object is expired, never returned by [Store.Get], and deleted by
	// the next purge. It is never later than Created plus the class's
	// maximum age.
	RetainUntil time.Time
	// LockUntil is the minimum retention: before it the object may not
	// be deleted, as [Mode] says. Zero means no lock.
	LockUntil time.Time
	// Mode is the lock's mode; [LockNone] exactly when LockUntil is zero.
	Mode LockMode
	// LegalHold blocks every deletion, early or due, until it is lifted.
	LegalHold bool
	// Tenant and Subject are the [audit.Actor] that wrote the object.
	Tenant, Subject string
}

// Entry is a key and its record, as listed by a [Partition].
type Entry struct {
	Key  string
	Meta Meta
	// Err is set (wrapping [ErrCorruptMeta]) when the object's record
	// cannot be read; Meta is then zero. List returns such entries, and
	// ListExpired those it meets, so that a corrupt record is reported
	// instead of blocking every later purge.
	Err error
}

// Cutoff decides which objects a purge may remove.
type Cutoff struct {
	// Now is the instant of the purge.
	Now time.Time
	// CreatedBefore holds, per class, the creation instant at or before
	// which an object is older than the class's current maximum age, so
	// that tightening a policy also shortens retention already granted.
	CreatedBefore map[Class]time.Time
}

// Expired reports whether m is past its maximum retention at c.
func (c Cutoff) Expired(m Meta) bool {
	if !m.RetainUntil.After(c.Now) {
		return true
	}
	cb, ok := c.CreatedBefore[m.Class]
	return ok && !m.Created.After(cb)
}

// Deletable reports whether a purge at c may delete m: it is expired, not
// under legal hold, and its lock (if any) has ended.
func (c Cutoff) Deletable(m Meta) bool {
	return c.Expired(m) && !m.LegalHold && !m.LockUntil.After(c.Now)
}

// Backend is raw storage partitioned per tenant. Each tenant's objects
// live in a [Partition] of their own, at the lowest layer that stores them
// (a directory per tenant in fsstore, a tenant column in the primary key
// in pgstore, a key prefix in blobstore), so that two tenants can use the
// same key without colliding and nothing done through one tenant's
// Partition reaches another's. A Backend enforces nothing else except the
// atomic re-check in [Partition.DeleteExpired]; wrap it in a [Store].
// Implementations are in the fsstore, pgstore and blobstore packages.
type Backend interface {
	// Partition returns the objects of tenant. It returns
	// [ErrInvalidTenant] unless [CheckTenant] accepts tenant, and does no
	// I/O.
	Partition(tenant string) (Partition, error)
	// Tenants returns up to limit names of tenants that may hold objects,
	// greater than after, in ascending order.
	Tenants(ctx context.Context, after string, limit int) ([]string, error)
	// Unpartitioned returns the key space of a store written before
	// tenant partitioning. [Store.Migrate] moves its objects into their
	// tenants' partitions; it is empty in a store created since.
	Unpartitioned() Partition
}

// Partition is one key space of a [Backend]: the objects of one tenant,
// kept with their [Meta].
//
// Keys are strings of 1 to [MaxKeyLen] bytes of valid UTF-8 without
// control characters; [Store] checks them before calling a Partition.
type Partition interface {
	// Put stores the object read from r with m, replacing any object
	// under key. The object and its record are committed together and
	// atomically: a reader sees the old pair or the new pair. In a
	// tenant's partition, m.Tenant must be that tenant, else Put (and
	// SetMeta) fails with [ErrInvalidTenant].
	Put(ctx context.Context, key string, r io.Reader, m Meta) error
	// Get returns the object's content and record, or [ErrNotFound].
	Get(ctx context.Context, key string) (io.ReadCloser, Meta, error)
	// Stat returns the object's record, or [ErrNotFound].
	Stat(ctx context.Context, key string) (Meta, error)
	// SetMeta replaces the record of an existing object, or returns
	// [ErrNotFound].
	SetMeta(ctx context.Context, key string, m Meta) error
	// Delete removes the object, or returns [ErrNotFound].
	Delete(ctx context.Context, key string) error
	// List returns up to limit entries with keys greater than after, in
	// ascending key order. An object with a corrupt record is listed with
	// [Entry.Err] set.
	List(ctx context.Context, after string, limit int) ([]Entry, error)
	// ListExpired is List restricted to entries for which cut.Expired
	// holds, held and locked ones included (and corrupt entries it meets,
	// see [Entry.Err]).
	ListExpired(ctx context.Context, cut Cutoff, after string, limit int) ([]Entry, error)
	// DeleteExpired deletes those of keys whose current record satisfies
	// cut.Deletable, re-checking each at the moment of deletion so that
	// an object rewritten or put on hold since it was listed survives.
	// Missing keys are skipped. It returns the deleted keys.
	DeleteExpired(ctx context.Context, cut Cutoff, keys []string) ([]string, error)
}

// BatchPurger is an optional interface of a [Partition] that lists and
// deletes one purge batch in a single server-side step, without a round
// trip per step or per key. [Store.Purge] uses it, when the partition has
// it, for every run that is not a dry run.
type BatchPurger interface {
	// PurgeBatch takes the up to limit entries that ListExpired(ctx, cut,
	// after, limit) would list, and deletes those whose current record
	// satisfies cut.Deletable and is well-formed, re-checking each at the
	// moment of deletion as DeleteExpired does. It calls deleted with the
	// key of each deleted object, in ascending key order; the slice is
	// only valid during the call. The batch's deletions are committed
	// when PurgeBatch returns a nil error (and only then).
	PurgeBatch(ctx context.Context, cut Cutoff, after string, limit int, deleted func(key []byte)) (PurgedBatch, error)
}

// PurgedBatch is what [BatchPurger.PurgeBatch] reports.
type PurgedBatch struct {
	// Listed counts the expired entries taken (deleted or kept); zero
	// means there are no more after the given key.
	Listed int
	// First and Last are the least and greatest keys taken.
	First, Last string
	// Kept lists the entries taken but not deleted, as they were when
	// taken: corrupt ones (with [Entry.Err]), held or locked ones, and
	// ones that became live or were deleted by someone else meanwhile.
	Kept []Entry
}

// MaxKeyLen is the longest key, in bytes.
const MaxKeyLen = record.MaxKeyLen

// Errors about objects.
var (
	// ErrNotFound reports a missing object.
	ErrNotFound = errors.New("retention: object not found")
	// ErrExpired reports an object past its maximum retention. [Store.Get]
	// and [Store.Stat] return it from the instant of expiry, whether or
	// not a purge has run yet.
	ErrExpired = errors.New("retention: object expired")
	// ErrCorruptMeta reports a metadata record that cannot be parsed or
	// is inconsistent. The object is treated as unreadable.
	ErrCorruptMeta = record.ErrCorrupt
	// ErrInvalidKey reports a key that is empty, too long, not UTF-8 or
	// contains control characters.
	ErrInvalidKey = record.ErrInvalidKey
	// ErrLocked reports an early delete of an object under a
	// minimum-retention lock: any delete in compliance mode, and one
	// without a granted override in governance mode.
	ErrLocked = errors.New("retention: object locked")
	// ErrLegalHold reports a delete of an object under legal hold.
	ErrLegalHold = errors.New("retention: object under legal hold")
	// ErrOverrideDenied reports a privileged action (lifting a hold) by an
	// actor that is not granted the override.
	ErrOverrideDenied = errors.New("retention: override denied")
	// ErrUnknownMode reports a lock mode other than governance or
	// compliance, or a mode without a lock duration.
	ErrUnknownMode = errors.New("retention: unknown lock mode")
	// ErrZeroRetention reports a content-class write refused because the
	// store runs in zero-data-retention mode.
	ErrZeroRetention = errors.New("retention: content refused under zero data retention")
)

// encodeMeta returns the stored encoding of m, or [ErrCorruptMeta] when m is
// inconsistent. The backends use its twin, backendkit.EncodeMeta.
func encodeMeta(m Meta) ([]byte, error) {
	return record.Encode(toRecord(m))
}

// parseMeta parses a record written by encodeMeta. Anything else is
// [ErrCorruptMeta].
func parseMeta(b []byte) (Meta, error) {
	r, err := record.Parse(b)
	if err != nil {
		return Meta{}, err
	}
	return fromRecord(r), nil
}

// Validate reports [ErrCorruptMeta] when m is inconsistent.
func (m Meta) Validate() error { return toRecord(m).Validate() }

func toRecord(m Meta) record.Record {
	return record.Record{Class: string(m.Class), Created: m.Created, RetainUntil: m.RetainUntil,
		LockUntil: m.LockUntil, Mode: string(m.Mode), LegalHold: m.LegalHold, Tenant: m.Tenant, Subject: m.Subject}
}

func fromRecord(r record.Record) Meta {
	return Meta{Class: Class(r.Class), Created: r.Created, RetainUntil: r.RetainUntil,
		LockUntil: r.LockUntil, Mode: LockMode(r.Mode), LegalHold: r.LegalHold, Tenant: r.Tenant, Subject: r.Subject}
}
