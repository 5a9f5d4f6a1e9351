package rbac

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

// Row is one stored row of the policy: its type ("p" for a rule, "g" for
// a role assignment, "p2" for a grant, "p3" for an access request) and its
// fields, in Casbin's order. A store keeps at most six fields; missing
// trailing fields are stored as empty strings.
type Row struct {
	Ptype  string
	Fields []string
}

// Store persists the policy, grants and access requests for an
// [Enforcer], and carries its changes to the other instances that share
// it. The PostgreSQL implementation is in the subpackage rbac/pgstore;
// without a Store the policy is held in memory only.
//
// Every change gets the next sequence number, without gaps and in commit
// order, and is kept in a change log for a while, so that another
// instance applies the change itself instead of reloading the whole
// policy; when it finds a gap (the log no longer holds a change it
// missed), it reloads. The Enforcer writes the Store first and applies a
// change to its own in-memory policy only after the Store has committed
// it.
type Store interface {
	// Load returns every stored row and the sequence number of the last
	// change they include, read in one snapshot.
	Load(ctx context.Context) (rows []Row, seq int64, err error)

	// Change deletes the rows del and inserts the rows add, in one
	// transaction that also logs the change under the next sequence
	// number and announces it to the listeners. A row of del is deleted
	// only where every field is equal (an empty field matches only an
	// empty field, never everything). If some row of del is not stored,
	// Change changes nothing and returns 0, 0; otherwise it returns how
	// many rows it deleted (at least len(del); more when a row was
	// stored twice) and the change's sequence number.
	Change(ctx context.Context, del, add []Row) (deleted int, seq int64, err error)

	// Changes returns the logged changes with a sequence number above
	// after, in order. The log may have been trimmed: the caller checks
	// that the numbers follow on from after without a gap.
	Changes(ctx context.Context, after int64) ([]Changed, error)

	// Listen calls ready once it listens, then fn with the sequence
	// number of each change announced (-1 for an announcement without
	// one, after which the Enforcer reloads), until ctx is done or the
	// connection is lost; it returns the reason. The Enforcer calls it
	// again after a failure, and catches up after each (re)connection,
	// so that nothing announced while it was not listening is missed.
	Listen(ctx context.Context, ready func(), fn func(seq int64)) error
}

// Changed is one logged change of a [Store]: the rows it deleted and
// added, under its sequence number.
type Changed struct {
	Seq      int64
	Del, Add []Row
}

// arity is the number of fields of each row type.
var arity = map[string]int{"p": 6, "g": 3, "p2": 6, "p3": 6}

// rowFields checks a stored row and returns its fields, trimmed to the
// row type's arity.
func rowFields(r Row) ([]string, error) {
	n, ok := arity[r.Ptype]
	if !ok {
		return nil, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("stored row of unknown type %q", r.Ptype)}
	}
	if len(r.Fields) < n {
		return nil, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("stored %s row has %d fields, want %d", r.Ptype, len(r.Fields), n)}
	}
	for _, f := range r.Fields[n:] {
		if f != "" {
			return nil, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("stored %s row has more than %d fields", r.Ptype, n)}
		}
	}
	return r.Fields[:n], nil
}

// watch runs the Store's Listen in a loop until ctx is done: it catches
// up after each (re)connection and on every announced change it has not
// applied yet.
func (e *Enforcer) watch(ctx context.Context, ready chan struct{}) {
	defer close(e.watchDone)
	first := true
	for ctx.Err() == nil {
		err := e.store.Listen(ctx, func() {
			if first {
				first = false
				close(ready)
			}
			// Catch up on anything missed before listening.
			_ = e.sync(ctx)
		}, func(seq int64) {
			switch {
			case seq < 0:
				_ = e.Reload(ctx)
			case seq > e.applied.Load():
				_ = e.sync(ctx)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("listen ended")
		}
		_ = e.log(context.Background(), audit.Event{Action: "rbac.policy.watch", Outcome: audit.OutcomeError,
			Severity: audit.SeverityWarning, Reason: fmt.Sprintf("listen: %v; reconnecting", err)})
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// sync applies the store's changes this instance has not applied yet.
func (e *Enforcer) sync(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.syncLocked(ctx)
}

// syncLocked applies, in order, the logged changes after the last one
// applied, and re-indexes their tenants; an added row is checked as the
// API checks it. A gap in the log, an invalid row or a failure to apply
// falls back to a full reload. The caller holds e.mu.
func (e *Enforcer) syncLocked(ctx context.Context) error {
	if e.store == nil {
		return nil
	}
	from := e.applied.Load()
	cs, err := e.store.Changes(ctx, from)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	if len(cs) == 0 {
		return nil
	}
	if e.ix.Load() == nil || e.mir == nil {
		return e.reloadLocked(ctx)
	}
	for i, c := range cs {
		if c.Seq != from+int64(i)+1 {
			return e.reloadLocked(ctx) // a gap: the log was trimmed
		}
		if err := e.replay(c); err != nil {
			return e.reloadLocked(ctx)
		}
	}
	if err := e.reindex(); err != nil {
		return err
	}
	last := cs[len(cs)-1].Seq
	e.applied.Store(last)
	return e.log(ctx, audit.Event{Action: "rbac.policy.sync", Outcome: audit.OutcomeAllow, Severity: audit.SeverityInfo,
		Reason: fmt.Sprintf("applied %s up to %d", plural(len(cs), "change"), last)})
}

// replay applies one logged change to Casbin and the mirror, skipping
// what is applied already (this instance's own changes).
func (e *Enforcer) replay(c Changed) error {
	for _, r := range c.Del {
		f, err := rowFields(r)
		if err != nil {
			return err
		}
		r.Fields = f
		if !e.has(r) {
			continue
		}
		if err := e.memApply(r, false); err != nil {
			return err
		}
	}
	for _, r := range c.Add {
		f, err := rowFields(r)
		if err != nil {
			return err
		}
		r.Fields = f
		if e.has(r) {
			continue
		}
		if err := e.checkRow(r); err != nil {
			return err
		}
		if err := e.memApply(r, true); err != nil {
			return err
		}
	}
	return nil
}

// checkRow applies the API's checks to a row added by another instance.
func (e *Enforcer) checkRow(r Row) error {
	switch r.Ptype {
	case "p":
		ir, err := policy.RuleFromFields(r.Fields)
		if err != nil {
			return policyErr(err)
		}
		return e.mir.checkRule(ir, e.limits)
	case "g":
		return e.mir.checkLink(policy.Link{User: r.Fields[0], Role: r.Fields[1], Dom: r.Fields[2]}, e.limits)
	case "p2":
		_, err := grantFromFields(r.Fields)
		return err
	case "p3":
		_, err := requestFromFields(r.Fields)
		return err
	}
	return nil
}
