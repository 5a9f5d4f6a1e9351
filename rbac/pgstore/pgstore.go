// Package pgstore stores an rbac policy in PostgreSQL: the rules, role
// assignments, grants and access requests of an [rbac.Enforcer], in the
// table tomkit_rbac_rule, with every change announced to the other
// instances by NOTIFY on the channel tomkit_rbac.
//
// The table has Casbin's adapter layout (id, ptype, v0 to v5, text
// columns), the one earlier tomkit versions created through Casbin's gorm
// adapter, so an existing table is used as it is. Deletes match every
// column exactly and run in one transaction with the inserts of the same
// change, so a four-eyes approval (delete the request, insert the grant)
// succeeds at most once across instances.
//
//	pool, err := pgxpool.New(ctx, dsn)
//	...
//	st, err := pgstore.Open(ctx, pool)
//	...
//	e, err := rbac.New(ctx, rbac.Config{Logger: log, Policy: seed, Store: st})
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/rbac"
)

// Table and Channel name the policy table and the NOTIFY channel.
const (
	Table   = "tomkit_rbac_rule"
	Channel = "tomkit_rbac"
)

// maxFields is the number of value columns (v0 to v5).
const maxFields = 6

// Store is an [rbac.Store] on a pgx pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ rbac.Store = (*Store)(nil)

// ErrRow reports a malformed row handed to the Store.
var ErrRow = errors.New("pgstore: invalid row")

// Open creates the table in the pool's search_path if it does not exist
// and returns a Store on it. The pool must stay open as long as the Store
// is used.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstore: nil pool")
	}
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
	id bigserial PRIMARY KEY,
	ptype varchar(16),
	v0 text, v1 text, v2 text, v3 text, v4 text, v5 text
);
CREATE INDEX IF NOT EXISTS idx_`+Table+`_ptype ON `+Table+` (ptype)`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: create table: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Load returns every row, in insertion order. NULL columns read as empty
// strings.
func (s *Store) Load(ctx context.Context) ([]rbac.Row, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(ptype, ''), coalesce(v0, ''), coalesce(v1, ''), coalesce(v2, ''),
	coalesce(v3, ''), coalesce(v4, ''), coalesce(v5, '') FROM `+Table+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	defer rows.Close()
	var out []rbac.Row
	for rows.Next() {
		var r rbac.Row
		var v [maxFields]string
		if err := rows.Scan(&r.Ptype, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
			return nil, fmt.Errorf("pgstore: load: %w", err)
		}
		r.Fields = v[:]
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	return out, nil
}

func values(r rbac.Row) ([maxFields]string, error) {
	var v [maxFields]string
	if r.Ptype == "" || len(r.Fields) > maxFields {
		return v, fmt.Errorf("%w: type %q with %d fields", ErrRow, r.Ptype, len(r.Fields))
	}
	copy(v[:], r.Fields)
	return v, nil
}

// Change deletes del and inserts add in one transaction (see
// [rbac.Store]). Each delete matches the row type and all six value
// columns exactly, a missing field matching only an empty (or NULL)
// column; if one matches no row, the transaction is rolled back and
// Change returns 0.
func (s *Store) Change(ctx context.Context, del, add []rbac.Row) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	deleted := 0
	for _, r := range del {
		v, err := values(r)
		if err != nil {
			return 0, err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+Table+` WHERE ptype = $1
	AND coalesce(v0, '') = $2 AND coalesce(v1, '') = $3 AND coalesce(v2, '') = $4
	AND coalesce(v3, '') = $5 AND coalesce(v4, '') = $6 AND coalesce(v5, '') = $7`,
			r.Ptype, v[0], v[1], v[2], v[3], v[4], v[5])
		if err != nil {
			return 0, fmt.Errorf("pgstore: delete: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return 0, nil // rolled back by the deferred Rollback
		}
		deleted += int(tag.RowsAffected())
	}
	if len(add) > 0 {
		b := &pgx.Batch{}
		for _, r := range add {
			v, err := values(r)
			if err != nil {
				return 0, err
			}
			b.Queue(`INSERT INTO `+Table+` (ptype, v0, v1, v2, v3, v4, v5) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				r.Ptype, v[0], v[1], v[2], v[3], v[4], v[5])
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, fmt.Errorf("pgstore: insert: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pgstore: commit: %w", err)
	}
	return deleted, nil
}

// Notify sends payload on the channel tomkit_rbac.
func (s *Store) Notify(ctx context.Context, payload string) error {
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, payload); err != nil {
		return fmt.Errorf("pgstore: notify: %w", err)
	}
	return nil
}

// Listen holds one pool connection listening on tomkit_rbac until ctx is
// done or the connection fails (see [rbac.Store]).
func (s *Store) Listen(ctx context.Context, ready func(), fn func(payload string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it, or
		// close it if that fails.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(c, "UNLISTEN "+Channel); err != nil {
			_ = conn.Conn().Close(c)
		}
	}()
	ready()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("pgstore: listen: %w", err)
		}
		fn(n.Payload)
	}
}
