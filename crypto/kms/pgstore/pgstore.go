// Package pgstore keeps [kms.Keyring]s in PostgreSQL, for a service that
// runs as several instances on one database. It is the shared counterpart
// of the keyring file, which stays the embedded default for one instance;
// importing package kms alone links no database driver.
//
// Each keyring is one row holding the same document as the keyring file:
// every keyset encrypted under the master key, and the whole document
// authenticated under it. Someone with access to the database but not to
// the master key can neither read keys nor change the document (lower a
// minimum version, add or remove a destroyed scope) without [Open] and
// every running instance refusing it with [kms.ErrWrongMasterKey]. The
// document is bound to the keyring's name and version number, so an older
// one stored again (to bring back a shredded key) is refused too; only a
// restore of the whole row, as from a backup, goes unnoticed by instances
// started after it ([ErrRollback] for those running).
//
// # Changes and their propagation
//
// Every change (a new scope, a rotation, a retirement, a shred, a block of
// wrap counts) is one transaction that locks the row, builds on what it
// holds, writes the new document under the next version number and sends
// that number with NOTIFY. Every instance LISTENs on a connection of its
// own and reloads.
//
// The rule: once [kms.Keyring.Shred] or [kms.Keyring.SetMinVersion] has
// returned on any instance, no instance seals under, or opens with, the
// keys it took out of use. Each instance holds a lease, renewed every
// third of [WithLease] while it listens and has applied the latest
// version; its keys work only while its lease runs ([kms.ErrStale]
// otherwise). Shred and SetMinVersion commit, then wait until every other
// instance with a running lease has applied the new version (each says
// so when it renews) or until its lease has run out. An instance that
// loses its notification connection, or cannot apply the latest version
// (a tampered row), refuses key use at once, and until it has caught up.
// Envelope's DEK cache asks the keyring before each use of a cached DEK
// (see [kms.Revocable]), so cached DEKs stop at the same moment.
//
// Lease expiry is measured by the database's clock for the waiting
// instance and by each instance's own monotonic clock, started before
// its renewal was sent, for the instance itself, so clock offsets between
// hosts do not matter.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/crypto/kms/internal/backend"
	"github.com/tomkit/tomkit/internal/errtext"
)

// channel is the LISTEN/NOTIFY channel of every keyring in a database.
const channel = "tomkit_kms"

// DefaultLease is the lease of an instance when [WithLease] is not given.
const DefaultLease = 6 * time.Second

const schema = `
CREATE TABLE IF NOT EXISTS tomkit_kms_keyrings (
	name    text PRIMARY KEY,
	version bigint NOT NULL CHECK (version > 0),
	doc     bytea NOT NULL,
	updated timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS tomkit_kms_leases (
	keyring  text NOT NULL,
	instance text NOT NULL,
	applied  bigint NOT NULL,
	expires  timestamptz NOT NULL,
	PRIMARY KEY (keyring, instance)
);`

// ErrRollback reports a keyring row whose version went back below one
// this instance has applied: the row was restored from an older copy.
var ErrRollback = errors.New("pgstore: keyring version went back")

// An Option changes a rarely changed setting of [Open].
type Option func(*options)

type options struct {
	name  string
	lease time.Duration
}

// WithName names the keyring, so that several keyrings can share one
// schema. The default is "default". A name is 1 to 200 bytes.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithLease sets how long an instance may use keys without confirming
// that it holds the latest keyring version: the longest that
// [kms.Keyring.Shred] waits for an instance that stopped answering, and
// how soon an instance cut off from the database refuses key use. The
// default is [DefaultLease]; values below 300ms are raised to it.
func WithLease(d time.Duration) Option { return func(o *options) { o.lease = d } }

// Open opens the keyring named by [WithName] in pool's database, creating
// its tables and the keyring itself when missing (audited as
// "crypto.keyring_create"; otherwise "crypto.keyring_open"), and starts
// following changes made by other instances. A keyring that does not
// open under cfg.Master is refused with [kms.ErrWrongMasterKey], never
// replaced. The pool must stay open until [kms.Keyring.Close], which
// stops following changes and gives up the lease.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg kms.Config, opts ...Option) (*kms.Keyring, error) {
	o := options{name: "default", lease: DefaultLease}
	for _, f := range opts {
		f(&o)
	}
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
	}
	if o.name == "" || len(o.name) > 200 {
		return nil, fmt.Errorf("pgstore: keyring name must be 1 to 200 bytes, not %d", len(o.name))
	}
	o.lease = max(o.lease, 300*time.Millisecond)
	if cfg.Master == nil {
		return nil, kms.ErrNoMasterKey
	}
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if err := migrate(ctx, pool); err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, errtext.Errorf("pgstore: %w", err)
	}
	s := &store{pool: pool, name: o.name, id: hex.EncodeToString(id[:]), lease: o.lease, now: time.Now, log: cfg.Logger,
		acked: make(chan struct{}), done: make(chan struct{})}
	if cfg.Clock != nil {
		s.now = cfg.Clock.Now
	}
	kr, _, err := backend.OpenKeyring(ctx, s, cfg, true)
	if err != nil {
		return nil, err
	}
	r := kr.(*kms.Keyring)
	s.reload = r.Reload
	if opened != nil {
		opened(r, s)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan error, 1)
	go s.run(lctx, ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, errtext.Errorf("pgstore: follow keyring changes: %w", err)
	}
	return r, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return errtext.Errorf("pgstore: %w", err)
	}
	defer tx.Rollback(ctx)
	// Two instances starting at once would race on CREATE TABLE.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tomkit_kms_schema'))"); err != nil {
		return errtext.Errorf("pgstore: %w", err)
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return errtext.Errorf("pgstore: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return errtext.Errorf("pgstore: %w", err)
	}
	return nil
}

// store is one instance's view of one keyring row.
// Errors of its methods carry no prefix: package kms adds its own.
type store struct {
	pool  *pgxpool.Pool
	name  string
	id    string // this instance, in the leases table
	lease time.Duration
	now   func() time.Time
	log   audit.Logger
	gate  backend.Gate
	// applied is the version the keyring uses.
	applied atomic.Uint64
	// reload is the keyring's Reload.
	reload func(context.Context) error

	mu    sync.Mutex
	acked chan struct{} // closed and replaced when another instance acknowledges a version

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	// renewed is the version of the last renewal; used by the listener only.
	renewed uint64
	// pid is the backend process id of the listening connection (tests).
	pid atomic.Uint32
}

var _ backend.Store = (*store)(nil)

func (s *store) Name() string { return "postgres:" + s.name }

func (s *store) Binding() string { return s.name }

func (s *store) Gate() *backend.Gate { return &s.gate }

func (s *store) Applied(v backend.Version) { s.applied.Store(v.Seq) }

func (s *store) Read(ctx context.Context, have backend.Version) ([]byte, backend.Version, error) {
	return s.read(ctx, s.pool, have, "")
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *store) read(ctx context.Context, q querier, have backend.Version, lock string) ([]byte, backend.Version, error) {
	var seq int64
	var doc []byte
	err := q.QueryRow(ctx, "SELECT version, doc FROM tomkit_kms_keyrings WHERE name = $1"+lock, s.name).Scan(&seq, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, have, backend.ErrNotExist
	}
	if err != nil {
		return nil, have, fmt.Errorf("read keyring: %w", err)
	}
	v := backend.Version{Seq: uint64(seq)}
	switch {
	case v.Seq == have.Seq:
		return nil, have, nil
	case v.Seq < have.Seq || v.Seq < s.applied.Load():
		return nil, have, fmt.Errorf("%w: from %d to %d", ErrRollback, max(have.Seq, s.applied.Load()), v.Seq)
	}
	return doc, v, nil
}

func (s *store) Create(ctx context.Context, doc []byte) (backend.Version, error) {
	tag, err := s.pool.Exec(ctx, "INSERT INTO tomkit_kms_keyrings (name, version, doc) VALUES ($1, 1, $2) ON CONFLICT (name) DO NOTHING", s.name, doc)
	if err != nil {
		return backend.Version{}, fmt.Errorf("create keyring: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return backend.Version{}, backend.ErrExist
	}
	return backend.Version{Seq: 1}, nil
}

func (s *store) Begin(ctx context.Context) (backend.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin change: %w", err)
	}
	return &change{s: s, tx: tx}, nil
}

// change is one change: a transaction holding the row lock.
type change struct {
	s  *store
	tx pgx.Tx
}

func (c *change) Read(ctx context.Context, have backend.Version) ([]byte, backend.Version, error) {
	return c.s.read(ctx, c.tx, have, " FOR UPDATE")
}

func (c *change) Write(ctx context.Context, have backend.Version, doc []byte) (backend.Version, error) {
	var seq int64
	err := c.tx.QueryRow(ctx, `UPDATE tomkit_kms_keyrings SET doc = $2, version = version + 1, updated = clock_timestamp()
		WHERE name = $1 AND version = $3 RETURNING version`, c.s.name, doc, int64(have.Seq)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return have, backend.ErrConflict
	}
	if err != nil {
		return have, fmt.Errorf("write keyring: %w", err)
	}
	if _, err := c.tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, "v "+strconv.FormatInt(seq, 10)+" "+c.s.name); err != nil {
		return have, errtext.Errorf("notify: %w", err)
	}
	if err := c.tx.Commit(ctx); err != nil {
		return have, fmt.Errorf("commit keyring: %w", err)
	}
	return backend.Version{Seq: uint64(seq)}, nil
}

func (c *change) End() { _ = c.tx.Rollback(context.Background()) }

// Settle waits until no other instance holds a running lease at a
// version below v. It deletes the leases that ran out first (see renew).
func (s *store) Settle(ctx context.Context, v backend.Version) error {
	for {
		s.mu.Lock()
		acked := s.acked
		s.mu.Unlock()
		if _, err := s.pool.Exec(ctx, "DELETE FROM tomkit_kms_leases WHERE keyring = $1 AND instance <> $2 AND expires <= clock_timestamp()",
			s.name, s.id); err != nil {
			return fmt.Errorf("wait for instances: %w", err)
		}
		var n int
		var secs float64
		err := s.pool.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM min(expires) - clock_timestamp()), 0)::float8
			FROM tomkit_kms_leases WHERE keyring = $1 AND instance <> $2 AND applied < $3 AND expires > clock_timestamp()`,
			s.name, s.id, int64(v.Seq)).Scan(&n, &secs)
		if err != nil {
			return fmt.Errorf("wait for instances: %w", err)
		}
		if n == 0 {
			return nil
		}
		// Wake on an acknowledgement, or when the first lease runs out;
		// look again at least every tenth of a lease.
		d := min(time.Duration(secs*float64(time.Second))+time.Millisecond, s.lease/10)
		t := time.NewTimer(d)
		select {
		case <-acked:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

func (s *store) signalAck() {
	s.mu.Lock()
	close(s.acked)
	s.acked = make(chan struct{})
	s.mu.Unlock()
}

// Close stops following changes and gives up the lease.
func (s *store) Close() error {
	s.closeOnce.Do(func() {
		s.gate.Close()
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		s.dropLease()
	})
	return nil
}

// dropLease deletes this instance's lease, so that no change waits for
// it; its gate is closed already.
func (s *store) dropLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, "DELETE FROM tomkit_kms_leases WHERE keyring = $1 AND instance = $2", s.name, s.id)
}

// run follows the keyring's changes until ctx ends: it listens, applies
// each new version and renews the lease; on any failure it closes the
// gate, drops the lease and reconnects. The first outcome goes to ready.
func (s *store) run(ctx context.Context, ready chan<- error) {
	defer close(s.done)
	first := true
	for {
		err := s.follow(ctx, &first, ready)
		s.gate.Close()
		if ctx.Err() != nil {
			return
		}
		s.dropLease()
		if first {
			ready <- err
			return
		}
		_ = s.log.Log(context.Background(), audit.Event{Time: s.now(), Action: "crypto.keyring_watch", Outcome: audit.OutcomeError,
			Severity: audit.SeverityWarning, Resource: "keyring", Reason: fmt.Sprintf("%v; key use refused until caught up", err),
			Attributes: []audit.Attr{audit.String("keyring", s.Name())}})
		t := time.NewTimer(min(s.lease/6, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// opened, when set by a test, learns each keyring's store.
var opened func(*kms.Keyring, *store)

// reconnectHook, when set by a test, runs before each connection attempt
// after the first.
var reconnectHook func()

func (s *store) follow(ctx context.Context, first *bool, ready chan<- error) error {
	if !*first && reconnectHook != nil {
		reconnectHook()
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // ours alone, closed when done
	defer conn.Close(context.Background())
	s.pid.Store(conn.PgConn().PID())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "DELETE FROM tomkit_kms_leases WHERE keyring = $1 AND expires < clock_timestamp() - interval '1 hour'", s.name); err != nil {
		return err
	}
	if err := s.catchUp(ctx, conn); err != nil {
		return err
	}
	if *first {
		*first = false
		ready <- nil
	}
	// The lease is renewed every third of its length, whether or not
	// notifications keep arriving.
	next := time.Now().Add(s.lease / 3)
	for {
		if !time.Now().Before(next) {
			next = time.Now().Add(s.lease / 3)
			if err := s.catchUp(ctx, conn); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil && !conn.IsClosed() {
				continue // time to renew
			}
			return err
		}
		kind, name, seq, ok := parsePayload(n.Payload)
		if !ok || name != s.name {
			continue
		}
		switch kind {
		case 'v':
			if seq <= s.applied.Load() {
				continue
			}
			if err := s.catchUp(ctx, conn); err != nil {
				return err
			}
		case 'a':
			s.signalAck()
		}
	}
}

// parsePayload parses a notification: "v SEQ NAME" (keyring NAME is at
// version SEQ) or "a NAME" (an instance acknowledged a version of NAME).
func parsePayload(p string) (kind byte, name string, seq uint64, ok bool) {
	k, rest, _ := strings.Cut(p, " ")
	switch k {
	case "v":
		n, name, found := strings.Cut(rest, " ")
		v, err := strconv.ParseUint(n, 10, 64)
		if !found || err != nil || v == 0 || name == "" || strconv.FormatUint(v, 10) != n {
			return 0, "", 0, false
		}
		return 'v', name, v, true
	case "a":
		if rest == "" {
			return 0, "", 0, false
		}
		return 'a', rest, 0, true
	}
	return 0, "", 0, false
}

// catchUp renews the lease and, when the keyring is ahead of what this
// instance applied, reloads it and renews again, which acknowledges the
// new version (announced, for Settle). It fails only when the keyring
// cannot be read or applied.
func (s *store) catchUp(ctx context.Context, conn *pgx.Conn) error {
	for range 5 {
		have := s.applied.Load()
		t0 := s.now()
		cur, ok, err := s.renew(ctx, conn, have)
		if err != nil {
			return fmt.Errorf("renew lease: %w", err)
		}
		if ok {
			// The lease runs out here an eighth before it does in the
			// database, which counted from a later moment.
			s.gate.Open(t0.Add(s.lease - s.lease/8))
			if have != s.renewed {
				s.renewed = have
				if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, "a "+s.name); err != nil {
					return errtext.Errorf("acknowledge: %w", err)
				}
			}
			if cur == have {
				return nil
			}
			// Ahead: apply it. Behind: the row went back, which the
			// reload refuses (ErrRollback).
		}
		if err := s.reload(ctx); err != nil {
			return err
		}
	}
	// The keyring changes faster than this loop applies it: a running
	// lease keeps running, and the next notification or heartbeat tries
	// again.
	return nil
}

// renew extends this instance's lease and records have as the version it
// applied. A lease that has run out is renewed (or a first one taken)
// only at the keyring's current version, under a share lock on its row,
// so that an instance whose lease Settle saw run out cannot come back at
// an older version. cur is the keyring's current version.
//
// Settle deletes the leases that ran out before it counts the others: a
// renewal that found its lease running and has not committed yet holds
// the row, so the delete waits for it and the count sees its new expiry.
func (s *store) renew(ctx context.Context, conn *pgx.Conn, have uint64) (cur uint64, ok bool, err error) {
	// A running lease: extended without touching the keyring's row, which
	// changes keep locked.
	var v int64
	err = conn.QueryRow(ctx, `UPDATE tomkit_kms_leases SET applied = $3, expires = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE keyring = $1 AND instance = $2 AND expires > clock_timestamp()
		RETURNING (SELECT version FROM tomkit_kms_keyrings WHERE name = $1)`,
		s.name, s.id, int64(have), s.lease.Microseconds()).Scan(&v)
	if err == nil {
		return uint64(v), true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, err
	}
	// A lease that ran out, or none: only at the current version.
	tag, err := conn.Exec(ctx, `INSERT INTO tomkit_kms_leases AS l (keyring, instance, applied, expires)
		SELECT name, $2, version, clock_timestamp() + $4 * interval '1 microsecond'
		FROM tomkit_kms_keyrings WHERE name = $1 AND version = $3 FOR SHARE
		ON CONFLICT (keyring, instance) DO UPDATE SET applied = EXCLUDED.applied, expires = EXCLUDED.expires`,
		s.name, s.id, int64(have), s.lease.Microseconds())
	if err != nil {
		return 0, false, err
	}
	return have, tag.RowsAffected() == 1, nil
}
