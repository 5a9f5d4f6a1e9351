// Package pgstore is the PostgreSQL [retention.Backend], built on pgx.
//
// Objects live in one table, retention_tenant_objects, in the
// connection's search_path. The tenant is the first column of the primary
// key (tenant, key): every statement of a tenant's partition is bounded
// to its tenant, so two tenants can use the same key and no listing of one
// returns another's rows. The record is kept in columns, with indexes on
// (tenant, retain_until) and (tenant, class, created) so that expiry scans
// stay cheap: on a table of mostly live rows the purge's listing is a
// bitmap scan of those indexes, on a table of mostly expired rows a walk
// of the primary key. [Open] creates the table and indexes if they are
// missing. The table retention_objects of a store written before tenant
// partitioning, when there is one, is its unpartitioned key space; Open
// never creates it, and once retention.Store.Migrate has emptied it, it
// may be dropped.
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

	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention/internal/backendkit"
)

// MaxObjectSize is the largest object Put accepts.
const MaxObjectSize = 256 << 20

// ErrTooLarge reports an object above [MaxObjectSize].
var ErrTooLarge = errors.New("pgstore: object too large")

const schema = `
CREATE TABLE IF NOT EXISTS retention_tenant_objects (
	tenant       text COLLATE "C" NOT NULL CHECK (tenant ~ '^[abcdefghijklmnopqrstuvwxyz0123456789_][abcdefghijklmnopqrstuvwxyz0123456789_-]{0,62}$'),
	key          text COLLATE "C" NOT NULL,
	class        text        NOT NULL,
	created      timestamptz NOT NULL,
	retain_until timestamptz NOT NULL,
	lock_until   timestamptz,
	mode         text        NOT NULL DEFAULT '',
	legal_hold   boolean     NOT NULL DEFAULT false,
	subject      text        NOT NULL DEFAULT '',
	data         bytea       NOT NULL,
	PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS retention_tenant_objects_retain_until ON retention_tenant_objects (tenant, retain_until);
CREATE INDEX IF NOT EXISTS retention_tenant_objects_class_created ON retention_tenant_objects (tenant, class, created);
`

// Store is a PostgreSQL [retention.Backend].
type Store struct {
	pool   *pgxpool.Pool
	legacy bool // the table retention_objects exists
}

var (
	_ retention.Backend     = (*Store)(nil)
	_ retention.Partition   = (*partition)(nil)
	_ retention.BatchPurger = (*partition)(nil)
)

// Open returns a Store using pool, creating the table and its indexes when
// they do not exist yet.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if _, err := pool.Exec(ctx, schema); err != nil {
		return nil, errtext.Errorf("pgstore: migrate: %w", err)
	}
	s := &Store{pool: pool}
	if err := pool.QueryRow(ctx, `SELECT to_regclass('retention_objects') IS NOT NULL`).Scan(&s.legacy); err != nil {
		return nil, errtext.Errorf("pgstore: open: %w", err)
	}
	return s, nil
}

// partition is one tenant's rows of retention_tenant_objects or (tenant
// "") the table retention_objects of a store from before tenant
// partitioning. Every statement takes the tenant as $1: the partition
// condition is "tenant = $1" in the first case, and "$1 = ”" (always
// true) in the second.
type partition struct {
	s      *Store
	tenant string
	table  string
	cond   string
	none   bool // unpartitioned, and there is no such table
}

// Partition implements [retention.Backend].
func (s *Store) Partition(tenant string) (retention.Partition, error) {
	if err := retention.CheckTenant(tenant); err != nil {
		return nil, errtext.Errorf("pgstore: %w", err)
	}
	return &partition{s: s, tenant: tenant, table: "retention_tenant_objects", cond: "tenant = $1"}, nil
}

// Unpartitioned implements [retention.Backend].
func (s *Store) Unpartitioned() retention.Partition {
	return &partition{s: s, table: "retention_objects", cond: "$1::text = ''", none: !s.legacy}
}

// Tenants implements [retention.Backend] with a loose index scan of the
// primary key: one index probe per tenant, however many rows each has.
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE t AS (
		(SELECT tenant FROM retention_tenant_objects WHERE tenant > $1 ORDER BY tenant LIMIT 1)
		UNION ALL
		SELECT (SELECT o.tenant FROM retention_tenant_objects o WHERE o.tenant > t.tenant ORDER BY o.tenant LIMIT 1)
		FROM t WHERE t.tenant IS NOT NULL
	) SELECT tenant FROM t WHERE tenant IS NOT NULL LIMIT $2`, after, limit)
	if err != nil {
		return nil, errtext.Errorf("pgstore: tenants: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, errtext.Errorf("pgstore: tenants: %w", err)
	}
	return ts, nil
}

// errNoTable reports a write to the unpartitioned key space of a store
// that has none.
var errNoTable = errors.New("pgstore: no table retention_objects from before tenant partitioning")

func (p *partition) checkMeta(m retention.Meta) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if p.tenant != "" && m.Tenant != p.tenant {
		return errtext.Errorf("pgstore: %w: record names tenant %q in the partition of %q", retention.ErrInvalidTenant, m.Tenant, p.tenant)
	}
	return nil
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

// putArgs returns the arguments of an insert: $1 the tenant (the
// record's, which is the partition's in a tenant partition), $2 the key,
// $3 to $9 the other record columns, $10 the content.
func (p *partition) putArgs(key string, m retention.Meta, data []byte) []any {
	var lock *time.Time
	if !m.LockUntil.IsZero() {
		lock = &m.LockUntil
	}
	return []any{m.Tenant, key, string(m.Class), m.Created, m.RetainUntil, lock, string(m.Mode), m.LegalHold, m.Subject, data}
}

// Put implements [retention.Partition].
func (p *partition) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if err := backendkit.CheckKey(key); err != nil {
		return err
	}
	if err := p.checkMeta(m); err != nil {
		return err
	}
	if p.none {
		return errNoTable
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxObjectSize+1))
	if err != nil {
		return errtext.Errorf("pgstore: put %q: %w", key, err)
	}
	if len(data) > MaxObjectSize {
		return fmt.Errorf("%w: %q", ErrTooLarge, key)
	}
	conflict := "(tenant, key)"
	if p.tenant == "" {
		conflict = "(key)"
	}
	_, err = p.s.pool.Exec(ctx, `INSERT INTO `+p.table+` (key, `+cols+`, data)
		VALUES ($2, $3, $4, $5, $6, $7, $8, $1, $9, $10)
		ON CONFLICT `+conflict+` DO UPDATE SET class = EXCLUDED.class, created = EXCLUDED.created,
			retain_until = EXCLUDED.retain_until, lock_until = EXCLUDED.lock_until, mode = EXCLUDED.mode,
			legal_hold = EXCLUDED.legal_hold, tenant = EXCLUDED.tenant, subject = EXCLUDED.subject, data = EXCLUDED.data`,
		p.putArgs(key, m, data)...)
	if err != nil {
		return errtext.Errorf("pgstore: put %q: %w", key, err)
	}
	return nil
}

// Get implements [retention.Partition].
func (p *partition) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	var data []byte
	if p.none {
		return nil, retention.Meta{}, fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	m, err := scanMeta(p.s.pool.QueryRow(ctx, `SELECT `+cols+`, data FROM `+p.table+` WHERE `+p.cond+` AND key = $2`, p.tenant, key), &data)
	if err != nil {
		return nil, retention.Meta{}, wrap(key, err)
	}
	return io.NopCloser(bytes.NewReader(data)), m, nil
}

// Stat implements [retention.Partition].
func (p *partition) Stat(ctx context.Context, key string) (retention.Meta, error) {
	if p.none {
		return retention.Meta{}, fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	m, err := scanMeta(p.s.pool.QueryRow(ctx, `SELECT `+cols+` FROM `+p.table+` WHERE `+p.cond+` AND key = $2`, p.tenant, key))
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
		return errtext.Errorf("pgstore: %q: %w", key, err)
	}
	return errtext.Errorf("pgstore: %q: %w", key, err)
}

// SetMeta implements [retention.Partition].
func (p *partition) SetMeta(ctx context.Context, key string, m retention.Meta) error {
	if err := p.checkMeta(m); err != nil {
		return err
	}
	if p.none {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	a := p.putArgs(key, m, nil)
	a[0] = p.tenant
	tag, err := p.s.pool.Exec(ctx, `UPDATE `+p.table+` SET class = $3, created = $4, retain_until = $5,
		lock_until = $6, mode = $7, legal_hold = $8, subject = $9 WHERE `+p.cond+` AND key = $2`, a[:9]...)
	if err != nil {
		return errtext.Errorf("pgstore: set meta %q: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return nil
}

// Delete implements [retention.Partition].
func (p *partition) Delete(ctx context.Context, key string) error {
	if p.none {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	tag, err := p.s.pool.Exec(ctx, `DELETE FROM `+p.table+` WHERE `+p.cond+` AND key = $2`, p.tenant, key)
	if err != nil {
		return errtext.Errorf("pgstore: delete %q: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return nil
}

// List implements [retention.Partition].
func (p *partition) List(ctx context.Context, after string, limit int) ([]retention.Entry, error) {
	return p.list(ctx, `TRUE`, []any{p.tenant, after, limit})
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

// ListExpired implements [retention.Partition].
func (p *partition) ListExpired(ctx context.Context, cut retention.Cutoff, after string, limit int) ([]retention.Entry, error) {
	pred, a := expiredPred(cut, 4)
	return p.list(ctx, pred, append([]any{p.tenant, after, limit}, a...))
}

func (p *partition) list(ctx context.Context, pred string, a []any) ([]retention.Entry, error) {
	if p.none {
		return nil, nil
	}
	rows, err := p.s.pool.Query(ctx, `SELECT key, `+cols+` FROM `+p.table+`
		WHERE `+p.cond+` AND key > $2 AND `+pred+` ORDER BY key LIMIT $3`, a...)
	if err != nil {
		return nil, errtext.Errorf("pgstore: list: %w", err)
	}
	defer rows.Close()
	var out []retention.Entry
	for rows.Next() {
		var key string
		m, err := scanMeta(rowScanner{rows, &key})
		if errors.Is(err, retention.ErrCorruptMeta) {
			out = append(out, retention.Entry{Key: key, Err: errtext.Errorf("pgstore: %q: %w", key, err)})
			continue
		}
		if err != nil {
			return nil, errtext.Errorf("pgstore: list %q: %w", key, err)
		}
		out = append(out, retention.Entry{Key: key, Meta: m})
	}
	if err := rows.Err(); err != nil {
		return nil, errtext.Errorf("pgstore: list: %w", err)
	}
	return out, nil
}

// rowScanner scans the key column ahead of the record columns.
type rowScanner struct {
	rows pgx.Rows
	key  *string
}

func (r rowScanner) Scan(dst ...any) error { return r.rows.Scan(append([]any{r.key}, dst...)...) }

// DeleteExpired implements [retention.Partition] in one statement, so that
// the expiry, hold and lock conditions are evaluated on each row as it is
// deleted: under READ COMMITTED a row changed by a concurrent transaction
// is re-checked in its new version (and survives if it is live now).
// Readers are never blocked; a writer holding one of the rows delays the
// batch until it commits.
func (p *partition) DeleteExpired(ctx context.Context, cut retention.Cutoff, keys []string) ([]string, error) {
	if len(keys) == 0 || p.none {
		return nil, nil
	}
	pred, a := expiredPred(cut, 3)
	rows, err := p.s.pool.Query(ctx, `DELETE FROM `+p.table+`
		WHERE `+p.cond+` AND key = ANY($2) AND `+pred+` AND NOT legal_hold AND (lock_until IS NULL OR lock_until <= $3)
		RETURNING key`, append([]any{p.tenant, keys}, a...)...)
	if err != nil {
		return nil, errtext.Errorf("pgstore: delete expired: %w", err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, errtext.Errorf("pgstore: delete expired: %w", err)
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
func (p *partition) purgeSQL(pred string) string {
	var kept strings.Builder
	for _, c := range strings.Split(cols, ", ") {
		kept.WriteString(", CASE WHEN d.key IS NULL THEN t." + c + " END")
	}
	return `WITH taken AS MATERIALIZED (
		SELECT key, ` + cols + ` FROM ` + p.table + `
		WHERE ` + p.cond + ` AND key > $2 AND ` + pred + ` ORDER BY key LIMIT $3
	), d AS (
		DELETE FROM ` + p.table + ` WHERE ` + p.cond + ` AND key = ANY(ARRAY(SELECT key FROM taken))
			AND ` + pred + ` AND NOT legal_hold AND (lock_until IS NULL OR lock_until <= $4)
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
func (p *partition) PurgeBatch(ctx context.Context, cut retention.Cutoff, after string, limit int, deleted func(key []byte)) (retention.PurgedBatch, error) {
	if p.none {
		return retention.PurgedBatch{}, nil
	}
	pred, a := expiredPred(cut, 4)
	rows, err := p.s.pool.Query(ctx, p.purgeSQL(pred), append([]any{p.tenant, after, limit}, a...)...)
	if err != nil {
		return retention.PurgedBatch{}, errtext.Errorf("pgstore: purge batch: %w", err)
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
			pb.Kept = append(pb.Kept, retention.Entry{Key: key, Err: errtext.Errorf("pgstore: %q: %w", key, err)})
			continue
		}
		if err != nil {
			return retention.PurgedBatch{}, errtext.Errorf("pgstore: purge batch %q: %w", key, err)
		}
		pb.Kept = append(pb.Kept, retention.Entry{Key: key, Meta: m})
	}
	if err := rows.Err(); err != nil {
		return retention.PurgedBatch{}, errtext.Errorf("pgstore: purge batch: %w", err)
	}
	pb.Last = string(last)
	return pb, nil
}
