package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// DefaultPurgeBatch is the batch size of [Store.Purge] when
// [PurgeOptions.BatchSize] is zero. On PostgreSQL a batch of 5,000 is one
// statement of some tens of milliseconds, which removes well over 50,000
// rows/s; at 1,000 the per-statement overhead caps the rate near 50,000.
const DefaultPurgeBatch = 5000

// MaxPurgeBatch is the largest batch [Store.Purge] accepts.
const MaxPurgeBatch = 50000

// PurgeOptions configures one purge run.
type PurgeOptions struct {
	// DryRun lists what would be deleted without deleting anything.
	DryRun bool
	// BatchSize is how many objects are listed and deleted per batch.
	// Zero means [DefaultPurgeBatch].
	BatchSize int
}

// PurgeReport is the evidence of one purge run. It is also what the
// "retention.purge" audit event carries.
type PurgeReport struct {
	// Time is the purge's cutoff instant; Finished is when it ended.
	Time, Finished time.Time
	DryRun         bool
	// Expired counts the expired objects found.
	Expired int
	// Deleted counts the objects deleted (or, in a dry run, that would
	// be).
	Deleted int
	// Held lists expired objects kept by a legal hold or an unfinished
	// lock: the hold wins over the maximum age, and each is audited.
	Held []string
	// Corrupt lists objects whose record cannot be read. They are neither
	// deleted nor kept silently: each is audited at critical severity, and
	// the purge goes on with the others.
	Corrupt []string
	// Skipped counts objects that were expired when listed but no longer
	// deletable when deleted (rewritten or put on hold meanwhile), or
	// deleted by a concurrent purge.
	Skipped int
	// Batches counts the batches.
	Batches int
	// Tenants counts the tenants' partitions purged.
	Tenants int
	// Digest is the hex SHA-256 of the deleted keys, each qualified by
	// its tenant ("tenant/key") and followed by a newline, in ascending
	// order of tenant, then key. Two runs that delete the same set
	// have the same digest.
	Digest string
}

// Purge deletes every object past its maximum retention, in every
// tenant's partition (and in the unpartitioned key space of a store not
// yet migrated), in batches, and records evidence. It is the operator
// path: ctx must come from [WithOperator] with an [audit.Actor] that has a
// subject and no tenant, else [ErrNotOperator]; the "retention.purge"
// event names the operator and says that it crossed tenants.
//
// Each batch lists up to BatchSize expired objects of one partition in key
// order and asks the backend to delete them with an atomic re-check, so an
// object that became live again (rewritten) or was put on hold after
// listing is never deleted, and readers are never blocked. A partition
// that is a [BatchPurger] (pgstore) does both in one statement per batch;
// with others the next batch is listed while the current one is deleted.
// A purge that dies part-way leaves every batch it finished done and no
// half-deleted object behind; running it again finishes the job. Running
// it twice is harmless.
//
// When a legal hold meets a maximum age, the hold wins: the object is not
// deleted, a "retention.purge.held" event at warning severity is emitted
// for it, and it is listed in [PurgeReport.Held]. It remains unreadable
// (see [Store.Get]).
//
// Each batch emits a "retention.purge.batch" event and the run ends with a
// "retention.purge" event carrying the counts, the digest and the time.
// Content kept in memory under [ZDRMemory] is swept as well.
func (s *Store) Purge(ctx context.Context, o PurgeOptions) (PurgeReport, error) {
	op, reason, err := operator(ctx)
	if err != nil {
		return PurgeReport{}, s.deny(ctx, "retention.purge", "", err)
	}
	return s.purge(ctx, o, operatorAttrs(op, reason), nil)
}

// purge runs a purge of one partition (only) or, when only is nil, of
// every partition and of the unpartitioned key space.
func (s *Store) purge(ctx context.Context, o PurgeOptions, attrs []audit.Attr, only *string) (PurgeReport, error) {
	batch := o.BatchSize
	if batch == 0 {
		batch = DefaultPurgeBatch
	}
	if batch < 0 || batch > MaxPurgeBatch {
		return PurgeReport{}, fmt.Errorf("%w: purge batch size %d", ErrInvalidDuration, batch)
	}
	now := s.now().UTC()
	cut := s.policy.Cutoff(now)
	rep := PurgeReport{Time: now, DryRun: o.DryRun}
	s.sweepMemory(now)

	all := sha256.New()
	one := func(tenant string, p Partition) error {
		rep.Tenants++
		if bp, ok := batchPurgerOf(p); ok && !o.DryRun {
			return s.purgeBatches(ctx, bp, tenant, cut, batch, &rep, all, attrs)
		}
		return s.purgeListed(ctx, p, tenant, o.DryRun, cut, batch, &rep, all, attrs)
	}
	if only != nil {
		p, err := s.b.Partition(*only)
		if err != nil {
			return rep, s.purgeFailed(ctx, rep, err, attrs)
		}
		if err := one(*only, p); err != nil {
			return rep, err
		}
	} else {
		if err := one("", s.b.Unpartitioned()); err != nil {
			return rep, err
		}
		rep.Tenants--
		err := s.eachTenant(ctx, func(t string, p Partition) error { return one(t, p) })
		if err != nil {
			return rep, s.purgeFailed(ctx, rep, err, attrs)
		}
	}
	rep.Digest = hex.EncodeToString(all.Sum(nil))
	rep.Finished = s.now().UTC()
	ev := rep.event(audit.OutcomeAllow, "", attrs)
	if len(rep.Held) > 0 || len(rep.Corrupt) > 0 {
		ev.Severity = audit.SeverityWarning
	}
	if err := s.log.Log(ctx, ev); err != nil {
		return rep, errtext.Errorf("retention: purge: audit: %w", err)
	}
	return rep, nil
}

// reported marks an error that purgeFailed has already audited, so that
// it is not audited twice on its way out.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

// eachTenant calls f with every tenant's partition, in name order.
func (s *Store) eachTenant(ctx context.Context, f func(tenant string, p Partition) error) error {
	after := ""
	for {
		ts, err := s.b.Tenants(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		if len(ts) == 0 {
			return nil
		}
		for _, t := range ts {
			p, err := s.b.Partition(t)
			if err != nil {
				return err
			}
			if err := f(t, p); err != nil {
				return err
			}
		}
		after = ts[len(ts)-1]
	}
}

// batchPurgerOf returns p's [BatchPurger], looking through a partition of
// an [Encrypted] backend: its records are those of the partition it
// wraps, in the clear, and it deletes nothing of its own, so the wrapped
// partition's one-step purge serves it unchanged.
func batchPurgerOf(p Partition) (BatchPurger, bool) {
	for {
		switch v := p.(type) {
		case BatchPurger:
			return v, true
		case *encPartition:
			p = v.p
		default:
			return nil, false
		}
	}
}

// purgeBatches runs the purge with a backend that lists and deletes each
// batch in one step: nothing but the kept entries and two keys per batch
// is copied into the process, so a purge of millions of rows allocates
// next to nothing.
func (s *Store) purgeBatches(ctx context.Context, bp BatchPurger, tenant string, cut Cutoff, batch int, rep *PurgeReport, all hash.Hash, attrs []audit.Attr) error {
	var (
		after string
		bd    = sha256.New()
		bsum  []byte
		n     int
	)
	prefix := []byte(qualified(tenant, ""))
	deleted := func(k []byte) {
		n++
		all.Write(prefix)
		all.Write(k)
		all.Write(newline)
		bd.Write(k)
		bd.Write(newline)
	}
	for {
		if err := ctx.Err(); err != nil {
			return s.purgeFailed(ctx, *rep, err, attrs)
		}
		n = 0
		bd.Reset()
		pb, err := bp.PurgeBatch(ctx, cut, after, batch, deleted)
		if err != nil {
			return s.purgeFailed(ctx, *rep, err, attrs)
		}
		if pb.Listed == 0 {
			return nil
		}
		after = pb.Last
		rep.Batches++
		rep.Expired += pb.Listed
		rep.Deleted += n
		for _, e := range pb.Kept {
			del, err := s.keep(ctx, tenant, cut, e, rep)
			if err != nil {
				return err
			}
			if del {
				rep.Skipped++
			}
		}
		bsum = bd.Sum(bsum[:0])
		if err := s.batchEvent(ctx, tenant, rep.Time, false, n, pb.First, pb.Last, bsum); err != nil {
			return err
		}
	}
}

// purgeListed runs the purge with ListExpired and DeleteExpired.
func (s *Store) purgeListed(ctx context.Context, p Partition, tenant string, dryRun bool, cut Cutoff, batch int, rep *PurgeReport, all hash.Hash, attrs []audit.Attr) error {
	// The next batch is listed while the current one is deleted: the
	// listing does not depend on the deletion (which re-checks anyway),
	// and overlapping the two round trips nearly doubles the rate.
	lctx, stopList := context.WithCancel(ctx)
	defer stopList()
	batches := make(chan listed, 1)
	go lister(lctx, p, cut, batch, batches)
	for {
		if err := ctx.Err(); err != nil {
			return s.purgeFailed(ctx, *rep, err, attrs)
		}
		var lb listed
		select {
		case lb = <-batches:
		case <-ctx.Done():
			return s.purgeFailed(ctx, *rep, ctx.Err(), attrs)
		}
		entries, err := lb.entries, lb.err
		if err != nil {
			return s.purgeFailed(ctx, *rep, err, attrs)
		}
		if len(entries) == 0 {
			return nil
		}
		after := entries[len(entries)-1].Key
		rep.Batches++
		rep.Expired += len(entries)
		var cand []string
		for _, e := range entries {
			del, err := s.keep(ctx, tenant, cut, e, rep)
			if err != nil {
				return err
			}
			if del {
				cand = append(cand, e.Key)
			}
		}
		deleted := cand
		if !dryRun && len(cand) > 0 {
			deleted, err = p.DeleteExpired(ctx, cut, cand)
			if err != nil {
				return s.purgeFailed(ctx, *rep, err, attrs)
			}
		}
		rep.Skipped += len(cand) - len(deleted)
		rep.Deleted += len(deleted)
		bd := sha256.New()
		for _, k := range deleted {
			writeKey(all, qualified(tenant, k))
			writeKey(bd, k)
		}
		if err := s.batchEvent(ctx, tenant, rep.Time, dryRun, len(deleted), entries[0].Key, after, bd.Sum(nil)); err != nil {
			return err
		}
	}
}

// keep reports whether e is deletable; otherwise it records and audits e
// as corrupt or held.
func (s *Store) keep(ctx context.Context, tenant string, cut Cutoff, e Entry, rep *PurgeReport) (bool, error) {
	if e.Err != nil {
		rep.Corrupt = append(rep.Corrupt, qualified(tenant, e.Key))
		if err := s.log.Log(ctx, audit.Event{Action: "retention.purge.corrupt", Resource: qualified(tenant, e.Key), Outcome: audit.OutcomeError,
			Severity: audit.SeverityCritical, Reason: e.Err.Error(), Time: rep.Time}); err != nil {
			return false, errtext.Errorf("retention: purge: audit: %w", err)
		}
		return false, nil
	}
	if cut.Deletable(e.Meta) {
		return true, nil
	}
	rep.Held = append(rep.Held, qualified(tenant, e.Key))
	why := "legal hold blocks deletion past maximum age"
	if !e.Meta.LegalHold {
		why = "minimum-retention lock blocks deletion past maximum age"
	}
	if err := s.log.Log(ctx, audit.Event{Action: "retention.purge.held", Resource: qualified(tenant, e.Key), Outcome: audit.OutcomeDeny,
		Severity: audit.SeverityWarning, Reason: why, Time: rep.Time,
		Attributes: []audit.Attr{audit.String("retain_until", e.Meta.RetainUntil.Format(time.RFC3339Nano))}}); err != nil {
		return false, errtext.Errorf("retention: purge: audit: %w", err)
	}
	return false, nil
}

func (s *Store) batchEvent(ctx context.Context, tenant string, now time.Time, dryRun bool, deleted int, first, last string, digest []byte) error {
	if err := s.log.Log(ctx, audit.Event{Action: "retention.purge.batch", Outcome: audit.OutcomeAllow, Time: now,
		Attributes: []audit.Attr{
			audit.String("tenant", tenant),
			audit.String("dry_run", strconv.FormatBool(dryRun)),
			audit.String("deleted", strconv.Itoa(deleted)),
			audit.String("first", first), audit.String("last", last),
			audit.String("digest", hex.EncodeToString(digest)),
		}}); err != nil {
		return errtext.Errorf("retention: purge: audit: %w", err)
	}
	return nil
}

var newline = []byte{'\n'}

type listed struct {
	entries []Entry
	err     error
}

// lister sends batches of expired entries of p in key order, then an
// empty batch (or an error), and stops.
func lister(ctx context.Context, p Partition, cut Cutoff, batch int, out chan<- listed) {
	after := ""
	for {
		es, err := p.ListExpired(ctx, cut, after, batch)
		select {
		case out <- listed{es, err}:
		case <-ctx.Done():
			return
		}
		if err != nil || len(es) == 0 {
			return
		}
		after = es[len(es)-1].Key
	}
}

func writeKey(h hash.Hash, k string) {
	h.Write([]byte(k))
	h.Write([]byte{'\n'})
}

func (s *Store) sweepMemory(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.mem {
		if !o.meta.RetainUntil.After(now) {
			delete(s.mem, k)
		}
	}
}

func (s *Store) purgeFailed(ctx context.Context, rep PurgeReport, err error, attrs []audit.Attr) error {
	var r reported
	if errors.As(err, &r) {
		return err
	}
	rep.Finished = s.now().UTC()
	err = errtext.Errorf("retention: purge: %w", err)
	if lerr := s.log.Log(context.WithoutCancel(ctx), rep.event(audit.OutcomeError, err.Error(), attrs)); lerr != nil {
		return reported{fmt.Errorf("%w (audit: %v)", err, lerr)}
	}
	return reported{err}
}

func (r PurgeReport) event(out audit.Outcome, reason string, attrs []audit.Attr) audit.Event {
	return audit.Event{Action: "retention.purge", Outcome: out, Reason: reason, Time: r.Time,
		Attributes: append(slices.Clip(attrs),
			audit.String("tenants", strconv.Itoa(r.Tenants)),
			audit.String("dry_run", strconv.FormatBool(r.DryRun)),
			audit.String("expired", strconv.Itoa(r.Expired)),
			audit.String("deleted", strconv.Itoa(r.Deleted)),
			audit.String("held", strconv.Itoa(len(r.Held))),
			audit.String("corrupt", strconv.Itoa(len(r.Corrupt))),
			audit.String("skipped", strconv.Itoa(r.Skipped)),
			audit.String("batches", strconv.Itoa(r.Batches)),
			audit.String("digest", r.Digest),
			audit.String("finished", r.Finished.Format(time.RFC3339Nano)),
		)}
}
