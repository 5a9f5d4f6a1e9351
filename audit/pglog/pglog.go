package pglog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/link"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tomkit/tomkit/internal/errtext"
)

// Config configures [Open]. Only Signer is required.
type Config struct {
	// Signer signs checkpoints. Every writer of one log must use the
	// log's key: Open refuses another with [audit.ErrWrongSigner] (see
	// [Log.Rotate]). Required; nil gives [audit.ErrNoSigner].
	Signer *audit.Signer
	// Pseudonymizer turns personal attributes into keyed pseudonyms. Nil
	// means they are redacted.
	Pseudonymizer *audit.Pseudonymizer
	// CheckpointInterval is how often a checkpoint is signed, even when
	// idle. Zero means one minute.
	CheckpointInterval time.Duration
	// Clock gives checkpoint and event times and the CheckpointInterval
	// ticker. Nil means the system clock.
	Clock audit.Clock
}

// Log is a tamper-evident audit log in PostgreSQL. Several
// processes may write one log at once: every append takes a row lock on a
// single-row head table inside its transaction, so the records form one
// totally ordered RFC 6962 tree, and checkpoints are signed as for the
// [audit.FileLog]. The tables live in the pool's search_path:
//
//	audit_records      (idx, leaf, event, written_at): append-only
//	audit_checkpoints  (seq, size, note): append-only
//	audit_prunes       (seq, min, note): append-only, signed prune notes
//	audit_keys         (seq, size, verifier, note): append-only, the log's keys
//	audit_head         (size, frontier, verifier): the tree's growing edge
//
// A log has one key at a time: the first Open records its signer's
// verifier key, and every append, checkpoint and prune checks, under the
// head lock, that its signer's key is still the log's. A signer with
// another key is refused with [audit.ErrWrongSigner]; only [Log.Rotate],
// signed by the current key, changes it.
//
// Triggers refuse UPDATE, DELETE and TRUNCATE on the append-only tables,
// with one exception: a DELETE from audit_records is let through when
// every row it deletes lies below the greatest min in audit_prunes, that
// is below a prune point that [Log.Prune] recorded first. A
// superuser can disable triggers; [Verify] still detects any
// change covered by a checkpoint or a prune note, and a prune row whose
// note is not signed by the log's key.
//
// Concurrent [Log.Log] calls on one Log share a
// transaction (group commit): a writer goroutine takes every event
// queued, up to 256 events or 1 MiB, and appends them in one
// transaction that takes the head lock once, inserts the records in the
// order the calls were accepted, updates the head once and commits once.
// A lone event is never delayed: the writer commits whatever is queued
// and repeats, with no timer.
type Log struct {
	pool   *pgxpool.Pool
	cfg    Config
	now    func() time.Time
	stop   chan struct{}
	exited chan struct{}
	reqs   chan *pgRequest // closed by Close; drained by the writer
	wrote  chan struct{}   // closed when the writer has drained reqs
	// batchTimeout bounds one group-commit transaction, so that a hung
	// database fails the batch instead of holding the writer, and Close,
	// forever.
	batchTimeout time.Duration

	mu     sync.RWMutex
	closed bool

	// keyMu is held for writing by Rotate, and for reading by everything
	// that signs or appends, so that they see signer and vkey change
	// together with the head's key.
	keyMu  sync.RWMutex
	signer *audit.Signer
	vkey   string // signer's verifier key, as audit_keys and audit_head hold it
}

// Limits of one group-commit transaction. A batch ends at whichever
// comes first; it may exceed pgMaxBatchBytes by one event. A transaction
// that has not committed after pgBatchTimeout is rolled back and fails
// its batch.
const (
	pgBatchTimeout  = 30 * time.Second
	pgMaxBatch      = 256
	pgMaxBatchBytes = 1 << 20
)

// States of a pgRequest: a request leaves pgQueued exactly once, either
// taken into a batch by the writer or cancelled by its caller.
const (
	pgQueued int32 = iota
	pgTaken
	pgCancelled
)

// pgRequest is one Log call waiting for the writer.
type pgRequest struct {
	payload []byte
	state   atomic.Int32
	done    chan error // buffered; receives the batch's result
}

var _ audit.Logger = (*Log)(nil)

const pgSchema = `
CREATE TABLE IF NOT EXISTS audit_records (
	idx        bigint PRIMARY KEY CHECK (idx >= 0),
	leaf       bytea NOT NULL,
	event      bytea NOT NULL,
	written_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
	seq  bigserial PRIMARY KEY,
	size bigint NOT NULL,
	note bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
	one      boolean PRIMARY KEY DEFAULT true CHECK (one),
	size     bigint NOT NULL,
	frontier bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_prunes (
	seq  bigserial PRIMARY KEY,
	min  bigint NOT NULL CHECK (min >= 0),
	note bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_keys (
	seq      bigserial PRIMARY KEY,
	size     bigint NOT NULL CHECK (size >= 0),
	verifier text NOT NULL,
	note     bytea
);
ALTER TABLE audit_head ADD COLUMN IF NOT EXISTS verifier text;
INSERT INTO audit_head (one, size, frontier) VALUES (true, 0, '') ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME;
END $$;
-- A DELETE on audit_records passes only if every row it deleted lies
-- below the greatest prune point. audit_prunes is looked up in the
-- table's own schema and the function's search_path is pinned, so that
-- no table or function of the caller's search_path can stand in.
CREATE OR REPLACE FUNCTION audit_delete_pruned() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m bigint;
	bad bigint;
BEGIN
	EXECUTE format('SELECT max(min) FROM %I.audit_prunes', TG_TABLE_SCHEMA) INTO m;
	SELECT min(idx) INTO bad FROM audit_deleted WHERE m IS NULL OR idx >= m;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'audit: DELETE on % refused: record % is not below a prune point; the audit log is append-only', TG_TABLE_NAME, bad;
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER audit_records_append_only BEFORE UPDATE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_records_delete_pruned AFTER DELETE ON audit_records
	REFERENCING OLD TABLE AS audit_deleted
	FOR EACH STATEMENT EXECUTE FUNCTION audit_delete_pruned();
CREATE OR REPLACE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_prunes_append_only BEFORE UPDATE OR DELETE ON audit_prunes
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_prunes_no_truncate BEFORE TRUNCATE ON audit_prunes
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_keys_append_only BEFORE UPDATE OR DELETE ON audit_keys
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_keys_no_truncate BEFORE TRUNCATE ON audit_keys
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
`

// signCheckpoint signs a checkpoint of t with s and stores it.
func signCheckpoint(ctx context.Context, tx pgx.Tx, s *audit.Signer, t *merkle.Tree, now time.Time) (audit.Checkpoint, error) {
	root, err := t.Root()
	if err != nil {
		return audit.Checkpoint{}, err
	}
	msg, err := logfmt.SignCheckpoint(noteSigner(s), t.Size(), root, now)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2)`, t.Size(), msg); err != nil {
		return audit.Checkpoint{}, err
	}
	c, err := logfmt.OpenCheckpoint(msg, s.Verifier())
	return checkpointOf(&c), err
}

// ErrNoPool reports an [Open], [Verify] or [Prove] call without a
// connection pool.
var ErrNoPool = errors.New("pglog: no connection pool")

// Functions of package audit that this package shares; see
// audit/internal/link.
var (
	noteSigner   = link.NoteSigner.(func(*audit.Signer) note.Signer)
	encodeRecord = link.EncodeRecord.(func(context.Context, audit.Event, func() time.Time, *audit.Pseudonymizer) ([]byte, error))
	pruneEvent   = link.PruneEvent.(func(int64) audit.Event)
	checkpointOf = link.Checkpoint.(func(*logfmt.Checkpoint) audit.Checkpoint)
	report       = link.Report.(func(*logfmt.Result, *logfmt.Fault, error) (audit.Report, error))
	inclusion    = link.Inclusion.(func(*logfmt.Result, int64, func() ([]byte, error)) (*audit.InclusionProof, error))
	extends      = link.Extends.(func(*logfmt.Result, []byte, note.Verifier) error)
)

// Open creates the log's tables in pool's search_path if needed and
// returns the log. Close it to write a final checkpoint; the pool stays
// the caller's.
//
// A new log records cfg.Signer's verifier key and starts with a signed
// checkpoint. An existing log whose key is not cfg.Signer's is refused
// with [audit.ErrWrongSigner], and one whose append-only triggers are
// missing or disabled with [ErrNotAppendOnly]: Open creates the triggers
// of tables it creates, never re-creates or re-enables others. A refused
// Open writes nothing, and an Open that fails for any reason leaves
// nothing running.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Log, error) {
	if pool == nil {
		return nil, ErrNoPool
	}
	if cfg.Signer == nil {
		return nil, audit.ErrNoSigner
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	clock := cfg.Clock
	if clock == nil {
		clock = audit.ClockFunc(time.Now)
	}
	l := &Log{
		pool: pool, cfg: cfg, now: clock.Now,
		stop: make(chan struct{}), exited: make(chan struct{}),
		reqs: make(chan *pgRequest, pgMaxBatch), wrote: make(chan struct{}),
		batchTimeout: pgBatchTimeout,
		signer:       cfg.Signer, vkey: verifierKey(cfg.Signer),
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Serialize schema creation between processes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7365298412)`); err != nil {
			return err
		}
		if err := checkTriggers(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, pgSchema); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
		if err := l.claim(ctx, tx); err != nil {
			return err
		}
		return l.firstCheckpoint(ctx, tx)
	})
	if errors.Is(err, ErrNotAppendOnly) || errors.Is(err, audit.ErrWrongSigner) {
		return nil, err
	}
	if err != nil {
		return nil, errtext.Errorf("pglog: open: %w", err)
	}
	tick, stopTick := clock.NewTicker(cfg.CheckpointInterval)
	go l.writer()
	go func() {
		defer close(l.exited)
		defer stopTick()
		for {
			select {
			case <-l.stop:
				return
			case <-tick:
				// A failed periodic checkpoint is retried on the
				// next tick; verification reports the gap.
				_, _ = l.Checkpoint(context.Background())
			}
		}
	}()
	return l, nil
}

// enter takes the read lock of an open log, or returns audit.ErrLogClosed
// for a closed log, a nil *Log or one that Open did not return.
func (l *Log) enter() error {
	if l == nil || l.reqs == nil {
		return audit.ErrLogClosed
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return audit.ErrLogClosed
	}
	return nil
}

// Log records e and returns once the transaction that holds it
// committed. It normalizes e (see [audit.Event.Normalize]) and pseudonymizes or
// redacts its personal attributes first.
//
// Concurrent calls share one transaction (see [Log]), so they
// share its outcome: if it fails, every Log call of the batch returns
// the error and none of the batch is written. An error means the event
// may not have been recorded and the caller must fail the audited action;
// unlike an [audit.FileLog], a Log is not broken by a failed
// transaction, and later calls may succeed. A transaction still
// uncommitted after 30 seconds is rolled back and fails its batch, so a
// hung database cannot hold the log, or Close, forever.
//
// If ctx ends while the event still waits for the writer, Log returns
// ctx.Err() and the event is not written. Once the writer took it into a
// batch, it is written (or not) with the batch; a Log whose ctx ends then
// returns an error that wraps ctx.Err() and says the event may still be
// written. After Close, Log returns [audit.ErrLogClosed].
func (l *Log) Log(ctx context.Context, e audit.Event) error {
	if l == nil || l.reqs == nil {
		return audit.ErrLogClosed
	}
	b, err := encodeRecord(ctx, e, l.now, l.cfg.Pseudonymizer)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &pgRequest{payload: b, done: make(chan error, 1)}
	if err := l.enter(); err != nil {
		return err
	}
	select {
	case l.reqs <- r:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(pgQueued, pgCancelled) {
			return ctx.Err()
		}
		select {
		case err := <-r.done:
			return err
		default:
		}
		return errtext.Errorf("pglog: log: %w (the event may still be written)", ctx.Err())
	}
}

// writer appends the queued events in batches until Close closes reqs
// and every event queued before is written.
func (l *Log) writer() {
	defer close(l.wrote)
	batch := make([]*pgRequest, 0, pgMaxBatch)
	for r := range l.reqs {
		batch = batch[:0]
		n := 0
		take := func(r *pgRequest) {
			// Skip a request whose caller gave up waiting.
			if r.state.CompareAndSwap(pgQueued, pgTaken) {
				batch = append(batch, r)
				n += len(r.payload)
			}
		}
		take(r)
	drain:
		for len(batch) < pgMaxBatch && n < pgMaxBatchBytes {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				take(r)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			continue
		}
		err := l.appendBatch(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// appendBatch appends the batch's events in one transaction. The tree's
// frontier is read under the head lock each time, so a failed
// transaction leaves no state behind, in this process or another.
func (l *Log) appendBatch(batch []*pgRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.batchTimeout)
	defer cancel()
	bs := make([][]byte, len(batch))
	for i, r := range batch {
		bs[i] = r.payload
	}
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx, l.vkey)
		if err != nil {
			return err
		}
		return appendRecords(ctx, tx, t, bs)
	})
	if err != nil {
		return errtext.Errorf("pglog: log: %w", err)
	}
	return nil
}

// appendRecords appends the encoded events bs, in order, to t inside tx,
// which holds the head lock, and stores the records and the new head.
func appendRecords(ctx context.Context, tx pgx.Tx, t *merkle.Tree, bs [][]byte) error {
	idxs := make([]int64, len(bs))
	leaves := make([][]byte, len(bs))
	for i, b := range bs {
		leaf := tlog.RecordHash(b)
		idxs[i] = t.Size()
		if err := t.AppendHash(leaf); err != nil {
			return err
		}
		leaves[i] = leaf[:]
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_records (idx, leaf, event)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])`, idxs, leaves, bs); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE audit_head SET size = $1, frontier = $2 WHERE one`, t.Size(), joinHashes(t.Frontier()))
	return err
}

// lockHead locks the head row and returns the tree's frontier. It refuses
// with audit.ErrWrongSigner when the log's key is not vkey: another
// process rotated it.
func lockHead(ctx context.Context, tx pgx.Tx, vkey string) (*merkle.Tree, error) {
	var size int64
	var fr []byte
	var key *string
	if err := tx.QueryRow(ctx, `SELECT size, frontier, verifier FROM audit_head WHERE one FOR UPDATE`).Scan(&size, &fr, &key); err != nil {
		return nil, err
	}
	if key == nil || *key != vkey {
		return nil, wrongSigner(key)
	}
	if len(fr)%tlog.HashSize != 0 {
		return nil, errors.New("pglog: malformed head")
	}
	var hs []tlog.Hash
	for i := 0; i < len(fr); i += tlog.HashSize {
		var h tlog.Hash
		copy(h[:], fr[i:])
		hs = append(hs, h)
	}
	return merkle.Start(size, hs, false)
}

func joinHashes(hs []tlog.Hash) []byte {
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

// Checkpoint signs and stores a checkpoint of the current tree.
func (l *Log) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	if err := l.enter(); err != nil {
		return audit.Checkpoint{}, err
	}
	defer l.mu.RUnlock()
	return l.checkpoint(ctx)
}

func (l *Log) checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	var cp audit.Checkpoint
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx, l.vkey)
		if err != nil {
			return err
		}
		cp, err = signCheckpoint(ctx, tx, l.signer, t, l.now())
		return err
	})
	if err != nil {
		return audit.Checkpoint{}, errtext.Errorf("pglog: checkpoint: %w", err)
	}
	return cp, nil
}

// Prune deletes the records below index below, so that the log itself
// obeys a retention period, like [audit.FileLog.Prune] (which can only delete
// whole segments; Prune cuts at below exactly). It returns the index of
// the first record kept.
//
// Prune never deletes records that no signed checkpoint covers: below is
// lowered to the size of the latest checkpoint (call
// [Log.Checkpoint] first to prune up to the current end). A below
// at or under the current prune point changes nothing and returns that
// point; a negative below returns [audit.ErrBadIndex].
//
// Before deleting anything Prune checks the records it deletes against a
// signed checkpoint, and refuses with an [*audit.VerifyError] if they or the
// latest prune note were tampered with. It then stores a signed prune note
// (the same note an audit.FileLog stores, with the tree hashes needed to keep
// verifying the rest) in audit_prunes, deletes the records below it, and
// records an "audit.prune" event, all in one transaction: a crash leaves
// either everything or nothing. The transaction holds the head lock, so
// appends by every writer wait for it, for as long as reading the records
// from the previous prune point to that checkpoint takes.
func (l *Log) Prune(ctx context.Context, below int64) (int64, error) {
	if below < 0 {
		return 0, fmt.Errorf("%w: prune below %d", audit.ErrBadIndex, below)
	}
	if err := l.enter(); err != nil {
		return 0, err
	}
	defer l.mu.RUnlock()
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	var kept int64
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx, l.vkey)
		if err != nil {
			return err
		}
		cur, err := l.prunePoint(ctx, tx)
		if err != nil {
			return err
		}
		kept = cur.Min
		if below <= cur.Min {
			return nil
		}
		min, cp, err := l.pruneTarget(ctx, tx, cur.Min, below)
		if err != nil || min <= cur.Min {
			return err
		}
		frontier, err := checkRange(ctx, tx, cur, min, cp)
		if err != nil {
			return err
		}
		msg, err := logfmt.SignPrune(noteSigner(l.signer), min, frontier)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_prunes (min, note) VALUES ($1, $2)`, min, msg); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit_records WHERE idx < $1`, min); err != nil {
			return err
		}
		b, err := encodeRecord(ctx, pruneEvent(min), l.now, l.cfg.Pseudonymizer)
		if err != nil {
			return err
		}
		if err := appendRecords(ctx, tx, t, [][]byte{b}); err != nil {
			return err
		}
		kept = min
		return nil
	})
	if err != nil {
		return 0, errtext.Errorf("pglog: prune: %w", err)
	}
	return kept, nil
}

// prunePoint returns the latest prune note, verified with one of the log's keys,
// or a zero Prune when there is none.
func (l *Log) prunePoint(ctx context.Context, tx pgx.Tx) (logfmt.Prune, error) {
	var min int64
	var msg []byte
	err := tx.QueryRow(ctx, `SELECT min, note FROM audit_prunes ORDER BY seq DESC LIMIT 1`).Scan(&min, &msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return logfmt.Prune{}, nil
	}
	if err != nil {
		return logfmt.Prune{}, err
	}
	keys, fault, _, err := readKeys(ctx, tx)
	if err != nil {
		return logfmt.Prune{}, err
	}
	if fault != nil {
		return logfmt.Prune{}, &audit.VerifyError{Index: fault.Index, Kind: audit.Kind(fault.Kind), Err: fault.Err}
	}
	p, err := openPrune(msg, verifiers(keys, l.signer.Verifier()))
	if err == nil && p.Min != min {
		err = fmt.Errorf("row says %d, the signed note %d", min, p.Min)
	}
	if err != nil {
		return logfmt.Prune{}, &audit.VerifyError{Index: 0, Kind: audit.KindBadSignature, Err: fmt.Errorf("latest prune note: %w", err)}
	}
	return p, nil
}

// pruneTarget returns the new prune point for below, clamped to the
// latest checkpoint, and the smallest checkpoint at or above it. Only
// checkpoints signed by the log's key count.
func (l *Log) pruneTarget(ctx context.Context, tx pgx.Tx, cur, below int64) (int64, logfmt.Checkpoint, error) {
	rows, err := tx.Query(ctx, `SELECT note FROM audit_checkpoints WHERE size >= $1 ORDER BY seq`, cur)
	if err != nil {
		return 0, logfmt.Checkpoint{}, err
	}
	var cps []logfmt.Checkpoint
	n := 0
	v := l.signer.Verifier()
	for rows.Next() {
		var msg []byte
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return 0, logfmt.Checkpoint{}, err
		}
		n++
		if c, err := logfmt.OpenCheckpoint(msg, v); err == nil {
			cps = append(cps, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, logfmt.Checkpoint{}, err
	}
	if n > 0 && len(cps) == 0 {
		return 0, logfmt.Checkpoint{}, audit.ErrWrongKey
	}
	target := cur
	for _, c := range cps {
		target = max(target, min(below, c.Size))
	}
	var at logfmt.Checkpoint
	for _, c := range cps {
		if c.Size >= target && (at.Note == nil || c.Size < at.Size) {
			at = c
		}
	}
	return target, at, nil
}

// checkRange replays the records from the prune point cur up to the
// checkpoint cp, which must match, and returns the tree's frontier at min.
func checkRange(ctx context.Context, tx pgx.Tx, cur logfmt.Prune, min int64, cp logfmt.Checkpoint) ([]tlog.Hash, error) {
	t, err := merkle.Start(cur.Min, cur.Frontier, false)
	if err != nil {
		return nil, &audit.VerifyError{Index: 0, Kind: audit.KindBadSignature, Err: fmt.Errorf("latest prune note: %w", err)}
	}
	rows, err := tx.Query(ctx, `SELECT idx, event FROM audit_records WHERE idx >= $1 AND idx < $2 ORDER BY idx`, cur.Min, cp.Size)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var frontier []tlog.Hash
	for rows.Next() {
		var idx int64
		var ev []byte
		if err := rows.Scan(&idx, &ev); err != nil {
			return nil, err
		}
		if idx != t.Size() {
			return nil, &audit.VerifyError{Index: t.Size(), Kind: audit.KindMissing}
		}
		if err := t.AppendHash(tlog.RecordHash(ev)); err != nil {
			return nil, err
		}
		if t.Size() == min {
			frontier = t.Frontier()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if t.Size() != cp.Size {
		return nil, &audit.VerifyError{Index: t.Size(), Kind: audit.KindTruncated, Err: fmt.Errorf("log has %d records, checkpoint signs %d", t.Size(), cp.Size)}
	}
	if root, err := t.Root(); err != nil || root != cp.Root {
		return nil, &audit.VerifyError{Index: cur.Min, Kind: audit.KindModified, Err: fmt.Errorf("tree of size %d does not match its signed checkpoint", cp.Size)}
	}
	return frontier, nil
}

// Close waits for the events already accepted by Log to be written,
// and writes a final checkpoint. It leaves the pool open. Log calls
// after Close return [audit.ErrLogClosed]. Close on a nil *Log, or on one
// that Open did not return, returns audit.ErrLogClosed too.
func (l *Log) Close() error {
	if l == nil || l.reqs == nil {
		return audit.ErrLogClosed
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return audit.ErrLogClosed
	}
	l.closed = true
	// No Log is sending: they send holding the read lock.
	close(l.reqs)
	l.mu.Unlock()
	<-l.wrote
	close(l.stop)
	<-l.exited
	_, err := l.checkpoint(context.Background())
	return err
}

// Verify verifies the log in pool's search_path like [audit.Verify]
// verifies a file log. After a [Log.Prune] it verifies the records from
// the latest prune point on, starting from the tree hashes in its signed
// note, and reports the pruned count in [audit.Report.Pruned]. Every row
// of audit_prunes must hold a note signed by the log's key whose prune
// point advances; a row that does not is reported as tampering, as is a
// record below the prune point (Prune deletes them in the transaction
// that stores the note). It returns an [*audit.VerifyError] for
// tampering, [audit.ErrEmptyLog], [audit.ErrWrongKey], or a database
// error.
func Verify(ctx context.Context, pool *pgxpool.Pool, v note.Verifier) (audit.Report, error) {
	if v == nil {
		return audit.Report{}, fmt.Errorf("%w: no verifier", audit.ErrBadKey)
	}
	if pool == nil {
		return audit.Report{}, ErrNoPool
	}
	return report(readLog(ctx, pool, v, false, nil))
}

// VerifySince is [Verify], and also proves that the log extends since, a
// checkpoint note of this log that an auditor saved earlier, signed by v
// (see [audit.VerifySince]): a log rolled back or rewritten and signed
// again fails with [audit.ErrNotConsistent].
func VerifySince(ctx context.Context, pool *pgxpool.Pool, v note.Verifier, since []byte) (audit.Report, error) {
	if v == nil {
		return audit.Report{}, fmt.Errorf("%w: no verifier", audit.ErrBadKey)
	}
	if pool == nil {
		return audit.Report{}, ErrNoPool
	}
	res, fault, err := readLog(ctx, pool, v, true, nil)
	rep, err := report(res, fault, err)
	if err != nil {
		return rep, err
	}
	return rep, extends(res, since, v)
}

// Prove returns an inclusion proof for record index of the log in pool's
// search_path, against its latest checkpoint. A record not yet covered by
// a checkpoint, or pruned, gives [audit.ErrNotCovered]. Check the proof
// with [audit.CheckInclusion].
func Prove(ctx context.Context, pool *pgxpool.Pool, index int64) (*audit.InclusionProof, error) {
	if pool == nil {
		return nil, ErrNoPool
	}
	var rec []byte
	res, fault, err := readLog(ctx, pool, nil, true, func(idx int64, ev []byte) {
		if idx == index {
			rec = append([]byte(nil), ev...)
		}
	})
	if _, err := report(res, fault, err); err != nil {
		return nil, err
	}
	return inclusion(res, index, func() ([]byte, error) {
		if rec == nil {
			return nil, fmt.Errorf("%w: record %d", audit.ErrNotCovered, index)
		}
		return rec, nil
	})
}

// readLog reads and verifies the log in one read-only snapshot. Errors of
// its own are returned unwrapped; report wraps them.
func readLog(ctx context.Context, pool *pgxpool.Pool, v note.Verifier, keep bool, each func(int64, []byte)) (*logfmt.Result, *logfmt.Fault, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(context.Background())

	rows, err := tx.Query(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return nil, nil, logfmt.ErrEmpty
		}
		return nil, nil, err
	}
	var cpData []byte
	var seq uint64
	for rows.Next() {
		var n []byte
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		cpData = frame.Append(cpData, seq, n)
		seq++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	res := &logfmt.Result{CheckpointsLen: len(cpData)}
	// Without v (for proofs) checkpoints are parsed, not verified: the
	// checker of a proof verifies them.
	open := func(msg []byte) (logfmt.Checkpoint, error) { return logfmt.OpenCheckpoint(msg, nil) }
	var keys []epoch
	var keyFault *logfmt.Fault
	anchored := 0
	if v != nil {
		var recorded bool
		keys, keyFault, recorded, err = readKeys(ctx, tx)
		if err != nil {
			return nil, nil, err
		}
		if len(keys) == 0 {
			// A log written before its keys were recorded has one.
			keys = []epoch{{v: v}}
		}
		pos := -1
		for i := range keys {
			if sameKey(keys[i].v, v) {
				pos, keys[i].v = i, v
			}
		}
		if pos < 0 {
			return nil, nil, logfmt.ErrWrongKey
		}
		open = func(msg []byte) (logfmt.Checkpoint, error) {
			c, i, err := openCheckpoint(msg, keys)
			if err == nil && i >= pos {
				anchored++
			}
			return c, err
		}
		// Open signs a checkpoint before it commits a new log, so a
		// log whose keys are recorded has at least one.
		if recorded && seq == 0 {
			keyFault = earlier(keyFault, &logfmt.Fault{Index: 0, Kind: logfmt.KindMissing, Err: errors.New("no checkpoint: the log's checkpoints were deleted")})
		}
	}
	cps, cpFault, _, err := logfmt.ReadCheckpointsWith(cpData, open)
	if err != nil {
		return nil, nil, err
	}
	// Checkpoints signed only by keys before v prove nothing to the
	// holder of v: it trusts them through a later checkpoint of its own.
	if len(cps) > 0 && anchored == 0 && v != nil {
		return nil, nil, logfmt.ErrWrongKey
	}
	cpFault = earlier(cpFault, keyFault)
	res.Checkpoints = cps
	for i := range cps {
		if res.Latest == nil || cps[i].Size >= res.Latest.Size {
			res.Latest = &cps[i]
		}
	}
	tree := merkle.New(keep)
	var vs []note.Verifier
	if v != nil {
		vs = verifiers(keys, v)
	}
	notes, pruneFault, err := readPrunes(ctx, tx, vs)
	if err != nil {
		return nil, nil, err
	}
	var min int64
	if n := len(notes); n > 0 {
		p := notes[n-1]
		t, terr := merkle.Start(p.Min, p.Frontier, keep)
		if terr != nil {
			pruneFault = &logfmt.Fault{Index: 0, Kind: logfmt.KindBadSignature, Err: fmt.Errorf("prune note: %w", terr)}
		} else {
			res.Prune, tree, min = &p, t, p.Min
		}
	}
	if pruneFault != nil && (cpFault == nil || pruneFault.Index < cpFault.Index) {
		cpFault = pruneFault
	}
	// Prune deletes in the transaction that stores the note, so a record
	// below the prune point was inserted afterwards.
	var stray *int64
	if err := tx.QueryRow(ctx, `SELECT min(idx) FROM audit_records WHERE idx < $1`, min).Scan(&stray); err != nil {
		return nil, nil, err
	}
	if stray != nil && (cpFault == nil || *stray < cpFault.Index) {
		cpFault = &logfmt.Fault{Index: *stray, Kind: logfmt.KindModified, Err: fmt.Errorf("record below the prune point %d", min)}
	}
	st := logfmt.NewState(tree, cps, cpFault, audit.MaxEventSize)
	res.State = st

	rows, err = tx.Query(ctx, `SELECT idx, leaf, event FROM audit_records WHERE idx >= $1 ORDER BY idx`, min)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var buf []byte
	var leafFault *logfmt.Fault
	n := 0
	for rows.Next() && !st.Done() {
		var idx int64
		var leaf, ev []byte
		if err := rows.Scan(&idx, &leaf, &ev); err != nil {
			return nil, nil, err
		}
		n++
		if h := tlog.RecordHash(ev); leafFault == nil && string(h[:]) != string(leaf) {
			leafFault = &logfmt.Fault{Index: idx, Kind: logfmt.KindModified, Err: errors.New("event does not match its stored leaf hash")}
		}
		if each != nil {
			each(idx, ev)
		}
		buf = frame.Append(buf, uint64(idx), ev)
		if len(buf) > 1<<20 {
			st.Feed(buf, false)
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	st.Feed(buf, false)
	if n == 0 && len(cps) == 0 && cpFault == nil && res.Prune == nil {
		return nil, nil, logfmt.ErrEmpty
	}
	fault := st.Finish()
	// A stored leaf hash that no longer matches its event pinpoints the
	// row; a root mismatch only bounds the range.
	if leafFault != nil && (fault == nil || leafFault.Index < fault.Index || fault.Kind == logfmt.KindModified) {
		fault = leafFault
	}
	return res, fault, nil
}

// readPrunes returns the prune notes in audit_prunes that verify under
// one of vs (any well-formed note when vs is nil), in order, and the first fault
// among them: a note that does not verify, a row whose min is not its
// note's, or a prune point that does not advance.
func readPrunes(ctx context.Context, tx pgx.Tx, vs []note.Verifier) ([]logfmt.Prune, *logfmt.Fault, error) {
	// A log last opened before Prune existed has no audit_prunes; a
	// failed query would abort the read-only transaction.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('audit_prunes') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return nil, nil, err
	}
	rows, err := tx.Query(ctx, `SELECT seq, min, note FROM audit_prunes ORDER BY seq`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ps []logfmt.Prune
	var fault *logfmt.Fault
	var last int64
	for rows.Next() {
		var seq, min int64
		var msg []byte
		if err := rows.Scan(&seq, &min, &msg); err != nil {
			return nil, nil, err
		}
		p, err := openPrune(msg, vs)
		switch {
		case err != nil:
			err = fmt.Errorf("prune note %d: %w", seq, err)
		case p.Min != min:
			err = fmt.Errorf("prune note %d: row says %d, the signed note %d", seq, min, p.Min)
		case p.Min <= last:
			if fault == nil {
				fault = &logfmt.Fault{Index: p.Min, Kind: logfmt.KindReordered, Err: fmt.Errorf("prune note %d: prune point %d after %d", seq, p.Min, last)}
			}
			continue
		}
		if err != nil {
			if fault == nil {
				fault = &logfmt.Fault{Index: last, Kind: logfmt.KindBadSignature, Err: err}
			}
			continue
		}
		ps = append(ps, p)
		last = p.Min
	}
	return ps, fault, rows.Err()
}
