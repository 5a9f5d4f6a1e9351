// Package pgstore is the PostgreSQL [retention.Backend], built on pgx.
//
// Objects live in one table, retention_objects, in the connection's
// search_path, with the record in columns and an index on retain_until
// (and on class, created) so that expiry scans stay cheap: on a table of
// mostly live rows the purge's listing is a bitmap scan of those indexes,
// on a table of mostly expired rows a walk of the primary key. [Open] creates
// the table and indexes if they are missing.
//
// The purge ([Store.PurgeBatch]) is one statement per batch that selects
// the batch and deletes it server-side, re-checking expiry, legal hold,
// lock and the record's well-formedness inside the DELETE, after River's
// JobCleaner: no listing round trip, and no per-row work in Go. A batch
// is a small transaction of its own, so a purge killed part-way has lost
// nothing and the next run carries on, and readers (plain MVCC SELECTs)
// are never blocked. (A FOR UPDATE SKIP LOCKED sub-select was
// measured five times slower, as it writes every row twice.)
//
// Content is held in a bytea column, so Put reads the whole object into
// memory before writing it and Get returns an in-memory reader. Use the
// blobstore backend for large objects.
//
// Threat model: the database is trusted storage; its role must not be
// shared with code that bypasses the retention wrapper.
package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/retention"
)

// MaxObjectSize is the largest object Put accepts.
const MaxObjectSize = 256 << 20

// ErrTooLarge reports an object above [MaxObjectSize].
var ErrTooLarge = errors.New("pgstore: object too large")

const schema = `
CREATE TABLE IF NOT EXISTS retention_objects (
	key          text COLLATE "C" PRIMARY KEY,
	class        text        NOT NULL,
	created      timestamptz NOT NULL,
	retain_until timestamptz NOT NULL,
	lock_until   timestamptz,
	mode         text        NOT NULL DEFAULT '',
	legal_hold   boolean     NOT NULL DEFAULT false,
	tenant       text        NOT NULL DEFAULT '',
	subject      text        NOT NULL DEFAULT '',
	data         bytea       NOT NULL
);
CREATE INDEX IF NOT EXISTS retention_objects_retain_until ON retention_objects (retain_until);
CREATE INDEX IF NOT EXISTS retention_objects_class_created ON retention_objects (class, created);
`

// Store is a PostgreSQL [retention.Backend].
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ retention.Backend     = (*Store)(nil)
	_ retention.BatchPurger = (*Store)(nil)
)

// Open returns a Store using pool, creating the table and its indexes when
// they do not exist yet.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if _, err := pool.Exec(ctx, schema); err != nil {
		return nil, fmt.Errorf("pgstore: migrate: %w", err)
	}
	return &Store{pool: pool}, nil
}

const cols = `class, created, retain_until, lock_until, mode, legal_hold, tenant, subject`

func scanMeta(row interface{ Scan(...any) error }, extra ...any) (retention.Meta, error) {
	var (
		m     retention.Meta
		class string
		mode  string
		lock  *time.Time
	)
	dst := append([]any{&class, &m.Created, &m.RetainUntil, &lock, &mode, &m.LegalHold, &m.Tenant, &m.Subject}, extra...)
	if err := row.Scan(dst...); err != nil {
		return retention.Meta{}, err
	}
	m.Class, m.Mode = retention.Class(class), retention.LockMode(mode)
	m.Created, m.RetainUntil = m.Created.UTC(), m.RetainUntil.UTC()
	if lock != nil {
		m.LockUntil = lock.UTC()
	}
	if err := m.Validate(); err != nil {
		return retention.Meta{}, err
	}
	return m, nil
}

func args(m retention.Meta) []any {
	var lock *time.Time
	if !m.LockUntil.IsZero() {
		lock = &m.LockUntil
	}
	return []any{string(m.Class), m.Created, m.RetainUntil, lock, string(m.Mode), m.LegalHold, m.Tenant, m.Subject}
}

// Put implements [retention.Backend].
func (s *Store) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if err := retention.CheckKey(key); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxObjectSize+1))
	if err != nil {
		return fmt.Errorf("pgstore: put %q: %w", key, err)
	}
	if len(data) > MaxObjectSize {
		return fmt.Errorf("%w: %q", ErrTooLarge, key)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO retention_objects (key, `+cols+`, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (key) DO UPDATE SET class = EXCLUDED.class, created = EXCLUDED.created,
			retain_until = EXCLUDED.retain_until, lock_until = EXCLUDED.lock_until, mode = EXCLUDED.mode,
			legal_hold = EXCLUDED.legal_hold, tenant = EXCLUDED.tenant, subject = EXCLUDED.subject, data = EXCLUDED.data`,
		append(append([]any{key}, args(m)...), data)...)
	if err != nil {
		return fmt.Errorf("pgstore: put %q: %w", key, err)
	}
	return nil
}

// Get implements [retention.Backend].
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	var data []byte
	m, err := scanMeta(s.pool.QueryRow(ctx, `SELECT `+cols+`, data FROM retention_objects WHERE key = $1`, key), &data)
	if err != nil {
		return nil, retention.Meta{}, wrap(key, err)
	}
	return io.NopCloser(bytes.NewReader(data)), m, nil
}

// Stat implements [retention.Backend].
func (s *Store) Stat(ctx context.Context, key string) (retention.Meta, error) {
	m, err := scanMeta(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM retention_objects WHERE key = $1`, key))
	if err != nil {
		return retention.Meta{}, wrap(key, err)
	}
	return m, nil
}

func wrap(key string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	if errors.Is(err, retention.ErrCorruptMeta) {
		return fmt.Errorf("pgstore: %q: %w", key, err)
	}
	return fmt.Errorf("pgstore: %q: %w", key, err)
}

// SetMeta implements [retention.Backend].
func (s *Store) SetMeta(ctx context.Context, key string, m retention.Meta) error {
	if err := m.Validate(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE retention_objects SET class = $2, created = $3, retain_until = $4,
		lock_until = $5, mode = $6, legal_hold = $7, tenant = $8, subject = $9 WHERE key = $1`,
		append([]any{key}, args(m)...)...)
	if err != nil {
		return fmt.Errorf("pgstore: set meta %q: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return nil
}

// Delete implements [retention.Backend].
func (s *Store) Delete(ctx context.Context, key string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM retention_objects WHERE key = $1`, key)
	if err != nil {
		return fmt.Errorf("pgstore: delete %q: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return nil
}

// List implements [retention.Backend].
func (s *Store) List(ctx context.Context, after string, limit int) ([]retention.Entry, error) {
	return s.list(ctx, `TRUE`, []any{after, limit})
}

// expiredPred returns the SQL form of cut.Expired, with its arguments
// numbered from first.
func expiredPred(cut retention.Cutoff, first int) (string, []any) {
	var b strings.Builder
	a := []any{cut.Now}
	b.WriteString("(retain_until <= $" + strconv.Itoa(first))
	classes := make([]string, 0, len(cut.CreatedBefore))
	for c := range cut.CreatedBefore {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	for _, c := range classes {
		n := first + len(a)
		fmt.Fprintf(&b, " OR (class = $%d AND created <= $%d)", n, n+1)
		a = append(a, c, cut.CreatedBefore[retention.Class(c)])
	}
	b.WriteString(")")
	return b.String(), a
}

// ListExpired implements [retention.Backend].
func (s *Store) ListExpired(ctx context.Context, cut retention.Cutoff, after string, limit int) ([]retention.Entry, error) {
	pred, a := expiredPred(cut, 3)
	return s.list(ctx, pred, append([]any{after, limit}, a...))
}

func (s *Store) list(ctx context.Context, pred string, a []any) ([]retention.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, `+cols+` FROM retention_objects
		WHERE key > $1 AND `+pred+` ORDER BY key LIMIT $2`, a...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	defer rows.Close()
	var out []retention.Entry
	for rows.Next() {
		var key string
		m, err := scanMeta(rowScanner{rows, &key})
		if errors.Is(err, retention.ErrCorruptMeta) {
			out = append(out, retention.Entry{Key: key, Err: fmt.Errorf("pgstore: %q: %w", key, err)})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pgstore: list %q: %w", key, err)
		}
		out = append(out, retention.Entry{Key: key, Meta: m})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return out, nil
}

// rowScanner scans the key column ahead of the record columns.
type rowScanner struct {
	rows pgx.Rows
	key  *string
}

func (r rowScanner) Scan(dst ...any) error { return r.rows.Scan(append([]any{r.key}, dst...)...) }

// DeleteExpired implements [retention.Backend] in one statement, so that
// the expiry, hold and lock conditions are evaluated on each row as it is
// deleted: under READ COMMITTED a row changed by a concurrent transaction
// is re-checked in its new version (and survives if it is live now).
// Readers are never blocked; a writer holding one of the rows delays the
// batch until it commits.
func (s *Store) DeleteExpired(ctx context.Context, cut retention.Cutoff, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pred, a := expiredPred(cut, 2)
	rows, err := s.pool.Query(ctx, `DELETE FROM retention_objects
		WHERE key = ANY($1) AND `+pred+` AND NOT legal_hold AND (lock_until IS NULL OR lock_until <= $2)
		RETURNING key`, append([]any{keys}, a...)...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete expired: %w", err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete expired: %w", err)
	}
	sort.Strings(deleted)
	return deleted, nil
}

// wellFormed is the SQL form of [retention.Meta.Validate], so that
// PurgeBatch leaves a corrupt record alone for the purge to report.
const wellFormed = `(class ~ '^[abcdefghijklmnopqrstuvwxyz][abcdefghijklmnopqrstuvwxyz0123456789_-]{0,31}$'
	AND created <> '0001-01-01 00:00:00+00' AND retain_until <> '0001-01-01 00:00:00+00'
	AND retain_until >= created
	AND ((mode = '' AND lock_until IS NULL)
		OR (mode IN ('governance', 'compliance') AND lock_until IS NOT NULL
			AND lock_until <= retain_until AND lock_until >= created))
	AND octet_length(tenant) <= 256 AND octet_length(subject) <= 256)`

// purgeSQL returns the statement of PurgeBatch: the taken CTE is the
// ListExpired query (same predicate, same plan), the DELETE looks its keys
// up by primary key and re-checks every condition on the row it deletes,
// and the result is every taken key in order, with the record of those
// kept (class is NULL exactly for the deleted ones).
func purgeSQL(pred string) string {
	var kept strings.Builder
	for _, c := range strings.Split(cols, ", ") {
		kept.WriteString(", CASE WHEN d.key IS NULL THEN t." + c + " END")
	}
	return `WITH taken AS MATERIALIZED (
		SELECT key, ` + cols + ` FROM retention_objects
		WHERE key > $1 AND ` + pred + ` ORDER BY key LIMIT $2
	), d AS (
		DELETE FROM retention_objects WHERE key = ANY(ARRAY(SELECT key FROM taken))
			AND ` + pred + ` AND NOT legal_hold AND (lock_until IS NULL OR lock_until <= $3)
			AND ` + wellFormed + `
		RETURNING key
	)
	SELECT t.key` + kept.String() + ` FROM taken t LEFT JOIN d ON d.key = t.key ORDER BY t.key`
}

// PurgeBatch implements [retention.BatchPurger] in one statement, after
// River's JobCleaner: it selects the batch and deletes it server-side, so
// no listing round trip, no key array and no per-row allocation are
// needed. As in DeleteExpired the conditions are evaluated on each row as
// it is deleted, under READ COMMITTED in its newest version, and the
// batch is one short transaction that never blocks readers.
func (s *Store) PurgeBatch(ctx context.Context, cut retention.Cutoff, after string, limit int, deleted func(key []byte)) (retention.PurgedBatch, error) {
	pred, a := expiredPred(cut, 3)
	rows, err := s.pool.Query(ctx, purgeSQL(pred), append([]any{after, limit}, a...)...)
	if err != nil {
		return retention.PurgedBatch{}, fmt.Errorf("pgstore: purge batch: %w", err)
	}
	defer rows.Close()
	var (
		pb   retention.PurgedBatch
		last []byte
	)
	for rows.Next() {
		raw := rows.RawValues()
		k := raw[0]
		if pb.Listed == 0 {
			pb.First = string(k)
		}
		pb.Listed++
		last = append(last[:0], k...)
		if raw[1] == nil {
			deleted(k)
			continue
		}
		key := string(k)
		m, err := scanMeta(rowScanner{rows, new(string)})
		if errors.Is(err, retention.ErrCorruptMeta) {
			pb.Kept = append(pb.Kept, retention.Entry{Key: key, Err: fmt.Errorf("pgstore: %q: %w", key, err)})
			continue
		}
		if err != nil {
			return retention.PurgedBatch{}, fmt.Errorf("pgstore: purge batch %q: %w", key, err)
		}
		pb.Kept = append(pb.Kept, retention.Entry{Key: key, Meta: m})
	}
	if err := rows.Err(); err != nil {
		return retention.PurgedBatch{}, fmt.Errorf("pgstore: purge batch: %w", err)
	}
	pb.Last = string(last)
	return pb, nil
}
