package main

import (
	"context"
	"fmt"
	"os"
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
		Clock:         audit.ClockFunc(a.now),
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

const integrationAuthz = "rbac (casbin, deny-by-default, MFA for privileged permissions, four-eyes, break-glass)"
