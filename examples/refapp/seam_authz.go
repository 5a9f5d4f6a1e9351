package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/rbac/pgstore"
)

// rbacAuthz is the deny-by-default authorizer: rbac.Enforcer on the
// policy file of the data directory (or, with -postgres, on the policy
// table seeded from it). Four-eyes approval and break-glass are rbac's.
type rbacAuthz struct {
	enf  *rbac.Enforcer
	pool *pgxpool.Pool
	stop chan struct{}
	done chan struct{}
}

// openAuthorizer loads the policy into an rbac.Enforcer. Break-glass
// elevations call the monitor's alert hook.
func openAuthorizer(ctx context.Context, a *app) (*rbacAuthz, error) {
	text, err := os.ReadFile(a.data.path(filePolicy))
	if err != nil {
		return nil, err
	}
	cfg := rbac.Config{
		Logger:        a.audit,
		Policy:        text,
		BreakGlassTTL: a.opts.breakTTL,
		Now:           a.now,
		Alert: func(ctx context.Context, e audit.Event) error {
			why := e.Reason
			for _, at := range e.Attributes {
				if at.Key == "justification" {
					why = at.Value
				}
			}
			a.mon.alert(ctx, "break-glass", fmt.Sprintf("%s broke the glass in %s: %s", e.Actor.Subject, e.Actor.Tenant, why))
			return nil
		},
	}
	z := &rbacAuthz{}
	if a.opts.postgres != "" {
		if z.pool, err = pgxpool.New(ctx, a.opts.postgres); err != nil {
			return nil, err
		}
		st, err := pgstore.Open(ctx, z.pool)
		if err != nil {
			z.Close()
			return nil, err
		}
		cfg.Store = st
	}
	if z.enf, err = rbac.New(ctx, cfg); err != nil {
		z.Close()
		return nil, err
	}
	z.stop, z.done = make(chan struct{}), make(chan struct{})
	go z.pruneLoop()
	return z, nil
}

// grantPruneInterval is how often expired grants and access requests are
// removed from the policy store. They deny from the instant they expire;
// the prune only keeps the store and policy dumps free of dead rows.
const grantPruneInterval = time.Hour

func (z *rbacAuthz) pruneLoop() {
	defer close(z.done)
	t := time.NewTicker(grantPruneInterval)
	defer t.Stop()
	for {
		select {
		case <-z.stop:
			return
		case <-t.C:
			ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "refapp-prune", Tenant: "-"})
			// A failed run is retried on the next tick.
			_, _ = z.enf.PruneExpired(ctx)
		}
	}
}

func (z *rbacAuthz) Close() error {
	if z.stop != nil {
		close(z.stop)
		<-z.done
		z.stop = nil
	}
	var err error
	if z.enf != nil {
		err = z.enf.Close()
	}
	if z.pool != nil {
		z.pool.Close()
	}
	return err
}

// withMFA marks ctx with the principal's MFA: a principal flagged MFA is
// treated as verified at the time of the request.
func withMFA(ctx context.Context, p principal, now time.Time) context.Context {
	if p.MFA {
		return rbac.WithMFA(ctx, now)
	}
	return ctx
}

// decide asks rbac whether the actor in ctx may perform action on object.
// It returns the decision, errMFARequired or errDenied (wrapping rbac's
// reason), or an error when the decision could not be made or logged.
func (z *rbacAuthz) decide(ctx context.Context, object, action string) (rbac.Decision, error) {
	d, err := z.enf.Decide(ctx, rbac.Request{Object: object, Action: action})
	if err != nil {
		return d, err
	}
	if !d.Allowed {
		if strings.HasPrefix(d.Reason, "mfa required") {
			return d, fmt.Errorf("%w: %s", errMFARequired, d.Reason)
		}
		return d, fmt.Errorf("%w: %s", errDenied, d.Reason)
	}
	return d, nil
}

// rbacErr maps the errors of rbac's four-eyes and break-glass flows to
// the HTTP contract.
func rbacErr(err error) (status int, code string) {
	switch {
	case errors.Is(err, rbac.ErrSelfApproval):
		return 403, codeFourEyes
	case errors.Is(err, rbac.ErrMFARequired):
		return 403, codeMFARequired
	case errors.Is(err, rbac.ErrNoSuchRequest), errors.Is(err, rbac.ErrRequestExpired):
		return 404, codeNotFound
	case errors.Is(err, rbac.ErrJustification), errors.Is(err, rbac.ErrTTL):
		return 400, codeBadRequest
	case errors.Is(err, rbac.ErrNotApprover), errors.Is(err, rbac.ErrNotEligible), errors.Is(err, rbac.ErrNotPrivileged), errors.Is(err, rbac.ErrDenied):
		return 403, codeForbidden
	}
	return 500, codeInternal
}

const integrationAuthz = "rbac (casbin, deny-by-default, MFA for privileged permissions, four-eyes, break-glass)"
