package rbac

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

// pgTable and pgChannel name the policy table and the NOTIFY channel.
const (
	pgTable   = "tomkit_rbac_rule"
	pgChannel = "tomkit_rbac"
)

// pgRule is the table layout: Casbin's gorm adapter layout with text
// columns, so that reasons and justifications are not cut at 100 bytes.
type pgRule struct {
	ID    uint   `gorm:"primaryKey;autoIncrement"`
	Ptype string `gorm:"size:16;index"`
	V0    string `gorm:"type:text"`
	V1    string `gorm:"type:text"`
	V2    string `gorm:"type:text"`
	V3    string `gorm:"type:text"`
	V4    string `gorm:"type:text"`
	V5    string `gorm:"type:text"`
}

func (pgRule) TableName() string { return pgTable }

type pgStore struct {
	pool   *pgxpool.Pool
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (e *Enforcer) openPostgres(ctx context.Context, m model.Model, seed *policy.Policy) error {
	sqlDB := stdlib.OpenDBFromPool(e.cfg.Postgres)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	db = db.WithContext(context.WithoutCancel(ctx))
	a, err := gormadapter.NewAdapterByDBWithCustomTable(db, &pgRule{}, pgTable)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	ce, err := casbin.NewEnforcer(m, a)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	e.ce = ce
	if seed != nil {
		var n int64
		if err := db.Model(&pgRule{}).Count(&n).Error; err != nil {
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
		if n == 0 {
			if err := addAll(ce, seed); err != nil {
				return err
			}
			if err := ce.SavePolicy(); err != nil {
				return fmt.Errorf("%w: seed: %v", ErrStore, err)
			}
		}
	}
	lctx, cancel := context.WithCancel(context.Background())
	e.pg = &pgStore{pool: e.cfg.Postgres, cancel: cancel, done: make(chan struct{})}
	e.mu.Lock()
	err = e.reloadLocked(ctx)
	e.mu.Unlock()
	if err != nil {
		cancel()
		return err
	}
	ready := make(chan struct{})
	go e.listen(lctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		e.pg.close()
		return ctx.Err()
	}
	return nil
}

// listen waits for change notifications from other instances and reloads
// on each. After (re)connecting it reloads once, so that nothing sent
// while it was not listening is missed.
func (e *Enforcer) listen(ctx context.Context, ready chan struct{}) {
	defer close(e.pg.done)
	first := true
	for ctx.Err() == nil {
		err := e.listenOnce(ctx, &first, ready)
		if ctx.Err() != nil {
			return
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

func (e *Enforcer) listenOnce(ctx context.Context, first *bool, ready chan struct{}) error {
	conn, err := e.pg.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool; stop listening on it.
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(c, "UNLISTEN "+pgChannel); err != nil {
			_ = conn.Conn().Close(c)
		}
	}()
	if *first {
		*first = false
		close(ready)
	}
	// Catch up on anything missed before LISTEN took effect.
	_ = e.Reload(ctx)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == e.id {
			continue
		}
		_ = e.Reload(ctx)
	}
}

func (p *pgStore) notify(ctx context.Context, id string) error {
	_, err := p.pool.Exec(ctx, "SELECT pg_notify($1, $2)", pgChannel, id)
	return err
}

func (p *pgStore) close() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
}
