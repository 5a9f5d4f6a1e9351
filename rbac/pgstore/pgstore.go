// Package pgstore stores an rbac policy in PostgreSQL: the rules, role
// assignments, grants and access requests of an [rbac.Enforcer], in the
// table tomkit_rbac_rule, with every change logged in tomkit_rbac_change
// and announced to the other instances by NOTIFY on the channel
// tomkit_rbac, which carries the change's sequence number.
//
// The rule table has Casbin's adapter layout (id, ptype, v0 to v5, text
// columns), the one earlier tomkit versions created through Casbin's gorm
// adapter, so an existing table is used as it is. Deletes match every
// column exactly and run in one transaction with the inserts of the same
// change, so a four-eyes approval (delete the request, insert the grant)
// succeeds at most once across instances. The sequence number comes from
// a one-row counter updated last in that transaction, so numbers have no
// gaps and follow commit order. The log keeps the last [LogSize]
// changes.
//
//	pool, err := pgxpool.New(ctx, dsn)
//	...
//	st, err := pgstore.Open(ctx, pool)
//	...
//	e, err := rbac.New(ctx, rbac.Config{Logger: log, Policy: seed, Store: st})
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/rbac"
)

// Table, LogTable, SeqTable and Channel name the policy table, the
// change log, the sequence counter and the NOTIFY channel.
const (
	Table    = "tomkit_rbac_rule"
	LogTable = "tomkit_rbac_change"
	SeqTable = "tomkit_rbac_seq"
	Channel  = "tomkit_rbac"
)

// LogSize is how many changes the log keeps. An instance that missed
// more reloads the whole policy.
const LogSize = 10000

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
CREATE INDEX IF NOT EXISTS idx_`+Table+`_ptype ON `+Table+` (ptype);
CREATE TABLE IF NOT EXISTS `+LogTable+` (seq bigint PRIMARY KEY, body jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS `+SeqTable+` (one boolean PRIMARY KEY DEFAULT true CHECK (one), n bigint NOT NULL);
INSERT INTO `+SeqTable+` (n) VALUES (0) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, errtext.Errorf("pgstore: create table: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Load returns every row, in insertion order, and the sequence number
// of the last change, from one snapshot. NULL columns read as empty
// strings.
func (s *Store) Load(ctx context.Context) ([]rbac.Row, int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, errtext.Errorf("pgstore: load: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT n FROM `+SeqTable).Scan(&seq); err != nil {
		return nil, 0, errtext.Errorf("pgstore: load: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT coalesce(ptype, ''), coalesce(v0, ''), coalesce(v1, ''), coalesce(v2, ''),
	coalesce(v3, ''), coalesce(v4, ''), coalesce(v5, '') FROM `+Table+` ORDER BY id`)
	if err != nil {
		return nil, 0, errtext.Errorf("pgstore: load: %w", err)
	}
	defer rows.Close()
	var out []rbac.Row
	for rows.Next() {
		var r rbac.Row
		var v [maxFields]string
		if err := rows.Scan(&r.Ptype, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
			return nil, 0, errtext.Errorf("pgstore: load: %w", err)
		}
		r.Fields = v[:]
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, errtext.Errorf("pgstore: load: %w", err)
	}
	return out, seq, nil
}

// logBody is a change as stored in the log: rows as [ptype, v0, ..., v5].
type logBody struct {
	Del [][]string `json:"del,omitempty"`
	Add [][]string `json:"add,omitempty"`
}

func logRows(rows []rbac.Row) [][]string {
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, append([]string{r.Ptype}, r.Fields...))
	}
	return out
}

func fromLog(rows [][]string) ([]rbac.Row, error) {
	out := make([]rbac.Row, 0, len(rows))
	for _, r := range rows {
		if len(r) < 1 || len(r) > maxFields+1 {
			return nil, fmt.Errorf("%w: logged row with %d fields", ErrRow, len(r))
		}
		out = append(out, rbac.Row{Ptype: r[0], Fields: r[1:]})
	}
	return out, nil
}

// Changes returns the logged changes after seq, in order.
func (s *Store) Changes(ctx context.Context, after int64) ([]rbac.Changed, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, body FROM `+LogTable+` WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		return nil, errtext.Errorf("pgstore: changes: %w", err)
	}
	defer rows.Close()
	var out []rbac.Changed
	for rows.Next() {
		var c rbac.Changed
		var body []byte
		if err := rows.Scan(&c.Seq, &body); err != nil {
			return nil, errtext.Errorf("pgstore: changes: %w", err)
		}
		var b logBody
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, errtext.Errorf("pgstore: change %d: %w", c.Seq, err)
		}
		if c.Del, err = fromLog(b.Del); err != nil {
			return nil, err
		}
		if c.Add, err = fromLog(b.Add); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errtext.Errorf("pgstore: changes: %w", err)
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
// Change returns 0, 0. Otherwise the same transaction numbers the change,
// logs it and announces it on tomkit_rbac (NOTIFY is delivered at
// commit), and Change returns the number.
func (s *Store) Change(ctx context.Context, del, add []rbac.Row) (int, int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, errtext.Errorf("pgstore: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	deleted := 0
	for _, r := range del {
		v, err := values(r)
		if err != nil {
			return 0, 0, err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+Table+` WHERE ptype = $1
	AND coalesce(v0, '') = $2 AND coalesce(v1, '') = $3 AND coalesce(v2, '') = $4
	AND coalesce(v3, '') = $5 AND coalesce(v4, '') = $6 AND coalesce(v5, '') = $7`,
			r.Ptype, v[0], v[1], v[2], v[3], v[4], v[5])
		if err != nil {
			return 0, 0, errtext.Errorf("pgstore: delete: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return 0, 0, nil // rolled back by the deferred Rollback
		}
		deleted += int(tag.RowsAffected())
	}
	if len(add) > 0 {
		b := &pgx.Batch{}
		for _, r := range add {
			v, err := values(r)
			if err != nil {
				return 0, 0, err
			}
			b.Queue(`INSERT INTO `+Table+` (ptype, v0, v1, v2, v3, v4, v5) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				r.Ptype, v[0], v[1], v[2], v[3], v[4], v[5])
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, 0, errtext.Errorf("pgstore: insert: %w", err)
		}
	}
	// Number the change last: the counter's row lock orders concurrent
	// changes from here to their commit.
	var seq int64
	if err := tx.QueryRow(ctx, `UPDATE `+SeqTable+` SET n = n + 1 RETURNING n`).Scan(&seq); err != nil {
		return 0, 0, errtext.Errorf("pgstore: sequence: %w", err)
	}
	body, err := json.Marshal(logBody{Del: logRows(del), Add: logRows(add)})
	if err != nil {
		return 0, 0, errtext.Errorf("pgstore: log: %w", err)
	}
	lb := &pgx.Batch{}
	lb.Queue(`INSERT INTO `+LogTable+` (seq, body) VALUES ($1, $2)`, seq, body)
	if seq%100 == 0 {
		lb.Queue(`DELETE FROM `+LogTable+` WHERE seq <= $1`, seq-LogSize)
	}
	lb.Queue(`SELECT pg_notify($1, $2)`, Channel, strconv.FormatInt(seq, 10))
	if err := tx.SendBatch(ctx, lb).Close(); err != nil {
		return 0, 0, errtext.Errorf("pgstore: log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, errtext.Errorf("pgstore: commit: %w", err)
	}
	return deleted, seq, nil
}

// Listen holds one pool connection listening on tomkit_rbac until ctx is
// done or the connection fails (see [rbac.Store]).
func (s *Store) Listen(ctx context.Context, ready func(), fn func(seq int64)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return errtext.Errorf("pgstore: listen: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return errtext.Errorf("pgstore: listen: %w", err)
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
			return errtext.Errorf("pgstore: listen: %w", err)
		}
		seq, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil || seq < 1 {
			seq = -1 // not a change number (an older version's NOTIFY)
		}
		fn(seq)
	}
}
