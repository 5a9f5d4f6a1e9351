package rbac

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tomkit/tomkit/audit"
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
// [Enforcer], and carries change notifications between the instances that
// share it. The PostgreSQL implementation is in the subpackage
// rbac/pgstore; without a Store the policy is held in memory only.
//
// The Enforcer writes the Store first and applies a change to its own
// in-memory policy only after the Store has committed it.
type Store interface {
	// Load returns every stored row.
	Load(ctx context.Context) ([]Row, error)

	// Change deletes the rows del and inserts the rows add, in one
	// transaction. A row of del is deleted only where every field is
	// equal (an empty field matches only an empty field, never
	// everything). If some row of del is not stored, Change changes
	// nothing and returns 0; otherwise it returns how many rows it
	// deleted (at least len(del); more when a row was stored twice).
	Change(ctx context.Context, del, add []Row) (deleted int, err error)

	// Notify tells every instance listening on the Store that the
	// stored rows changed. payload identifies the sender.
	Notify(ctx context.Context, payload string) error

	// Listen calls ready once it listens, then fn with the payload of
	// each notification, until ctx is done or the connection is lost; it
	// returns the reason. The Enforcer calls it again after a failure,
	// and reloads after each (re)connection, so that nothing sent while
	// it was not listening is missed.
	Listen(ctx context.Context, ready func(), fn func(payload string)) error
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

// watch runs the Store's Listen in a loop until ctx is done: it reloads
// after each (re)connection and on every notification another instance
// sent.
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
			_ = e.Reload(ctx)
		}, func(payload string) {
			if payload != e.id {
				_ = e.Reload(ctx)
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
