package retention

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// MigrateOptions configures [Store.Migrate].
type MigrateOptions struct {
	// DryRun reports what would move without moving anything.
	DryRun bool
	// Orphans names the tenant that receives objects whose record names
	// no valid tenant (written without one, or with a name [CheckTenant]
	// refuses). Empty means no tenant does: such objects stay where they
	// are, are listed in [MigrateReport.Orphans], and Migrate fails with
	// [ErrUnpartitioned]. Each adoption is audited at warning severity.
	// Under an encrypting backend an adopted object stays bound to the
	// tenant it was encrypted for and does not decrypt in its new
	// partition; it is kept for the purge or for recovery by hand.
	Orphans string
}

// MigrateReport is the evidence of one migration run.
type MigrateReport struct {
	DryRun bool
	// Moved counts the objects moved into the partition of the tenant
	// their record names; Adopted those moved into
	// [MigrateOptions.Orphans].
	Moved, Adopted int
	// Orphans lists the objects left in place because their record names
	// no valid tenant, or cannot be read.
	Orphans []string
	// Conflicts lists the objects left in place because their tenant's
	// partition already holds a different object under the same key.
	Conflicts []string
	// Digest is the hex SHA-256 of the moved objects' qualified names
	// ("tenant/key"), each followed by a newline, in key order.
	Digest string
}

// Migrate moves every object of a store written before tenant
// partitioning into the partition of the tenant its record names, which
// is the tenant of the actor that wrote it: nothing is re-keyed, and no
// object goes to whichever tenant asks first. Until it has run, every
// tenant call of a Store over such a backend fails with
// [ErrUnpartitioned].
//
// It is an operator path (see [WithOperator]; else [ErrNotOperator]) and
// is audited as "retention.migrate", naming the operator, with the counts
// and the digest. Objects of an encrypting backend move as ciphertext. A
// run that dies part-way is finished by running it again. Objects without
// a valid tenant are moved only when [MigrateOptions.Orphans] names a
// tenant for them; otherwise they, and any conflicts, are reported and
// Migrate returns [ErrUnpartitioned].
func (s *Store) Migrate(ctx context.Context, o MigrateOptions) (MigrateReport, error) {
	op, reason, err := operator(ctx)
	if err == nil && o.Orphans != "" {
		err = checkActorTenant(o.Orphans)
	}
	if err != nil {
		return MigrateReport{}, s.deny(ctx, "retention.migrate", "", err)
	}
	attrs := operatorAttrs(op, reason)
	rep := MigrateReport{DryRun: o.DryRun}
	err = s.migrate(ctx, o, &rep, attrs)
	if err == nil && (len(rep.Orphans) > 0 || len(rep.Conflicts) > 0) {
		err = fmt.Errorf("%w: %d objects without a valid tenant (set an orphan tenant to adopt them), %d conflicting with an object already in their tenant's partition",
			ErrUnpartitioned, len(rep.Orphans), len(rep.Conflicts))
	}
	ev := audit.Event{Action: "retention.migrate", Outcome: audit.OutcomeAllow, Severity: audit.SeverityNotice,
		Attributes: append(attrs,
			audit.String("dry_run", strconv.FormatBool(o.DryRun)),
			audit.String("moved", strconv.Itoa(rep.Moved)),
			audit.String("adopted", strconv.Itoa(rep.Adopted)),
			audit.String("orphans", strconv.Itoa(len(rep.Orphans))),
			audit.String("conflicts", strconv.Itoa(len(rep.Conflicts))),
			audit.String("digest", rep.Digest))}
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityWarning
	}
	if lerr := s.log.Log(context.WithoutCancel(ctx), ev); lerr != nil {
		return rep, errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	return rep, err
}

func (s *Store) migrate(ctx context.Context, o MigrateOptions, rep *MigrateReport, attrs []audit.Attr) error {
	raw := s.b
	if r, ok := raw.(interface{ Raw() Backend }); ok {
		raw = r.Raw() // move ciphertext as it is
	}
	old := raw.Unpartitioned()
	sum := sha256.New()
	after := ""
	for {
		es, err := old.List(ctx, after, 500)
		if err != nil {
			return errtext.Errorf("retention: migrate: %w", err)
		}
		if len(es) == 0 {
			break
		}
		after = es[len(es)-1].Key
		for _, e := range es {
			if e.Err != nil {
				rep.Orphans = append(rep.Orphans, e.Key)
				continue
			}
			m, tenant, adopt := e.Meta, e.Meta.Tenant, false
			if checkActorTenant(tenant) != nil {
				if o.Orphans == "" {
					rep.Orphans = append(rep.Orphans, e.Key)
					continue
				}
				tenant, adopt = o.Orphans, true
				m.Tenant = tenant
			}
			moved, err := s.moveOne(ctx, o.DryRun, old, raw, tenant, e.Key, m)
			if err != nil {
				return errtext.Errorf("retention: migrate %q: %w", e.Key, err)
			}
			if !moved {
				rep.Conflicts = append(rep.Conflicts, e.Key)
				continue
			}
			writeKey(sum, qualified(tenant, e.Key))
			if !adopt {
				rep.Moved++
				continue
			}
			rep.Adopted++
			if err := s.log.Log(ctx, audit.Event{Action: "retention.migrate.adopt", Resource: e.Key,
				Outcome: audit.OutcomeAllow, Severity: audit.SeverityWarning,
				Reason:     "object without a valid tenant assigned by the operator",
				Attributes: append(attrs, audit.String("tenant", tenant), audit.String("recorded_tenant", e.Meta.Tenant))}); err != nil {
				return errtext.Errorf("retention: migrate: audit: %w", err)
			}
		}
	}
	rep.Digest = hex.EncodeToString(sum.Sum(nil))
	return nil
}

// moveOne copies one object into tenant's partition, then deletes it from
// the unpartitioned key space. An identical object already in the
// partition (from an interrupted run) counts as moved; a different one is
// a conflict, and nothing is changed.
func (s *Store) moveOne(ctx context.Context, dryRun bool, old Partition, raw Backend, tenant, key string, m Meta) (bool, error) {
	p, err := raw.Partition(tenant)
	if err != nil {
		return false, err
	}
	cur, err := p.Stat(ctx, key)
	switch {
	case err == nil:
		a, aerr := encodeMeta(cur)
		b, berr := encodeMeta(m)
		if aerr != nil || berr != nil || !bytes.Equal(a, b) {
			return false, nil
		}
	case errors.Is(err, ErrNotFound):
		if dryRun {
			return true, nil
		}
		rc, _, err := old.Get(ctx, key)
		if err != nil {
			return false, err
		}
		err = p.Put(ctx, key, rc, m)
		rc.Close()
		if err != nil {
			return false, err
		}
	default:
		return false, err
	}
	if dryRun {
		return true, nil
	}
	if err := old.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, nil
}
