package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// PostgresConfig configures [OpenPostgres]. Only Signer is required.
type PostgresConfig struct {
	// Signer signs checkpoints. Every writer of one log must use the
	// same key. Required.
	Signer *Signer
	// Pseudonymizer turns personal attributes into keyed pseudonyms. Nil
	// means they are redacted.
	Pseudonymizer *Pseudonymizer
	// CheckpointInterval is how often a checkpoint is signed, even when
	// idle. Zero means one minute.
	CheckpointInterval time.Duration
	// Tick, if set, replaces the CheckpointInterval ticker.
	Tick <-chan time.Time
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// PostgresLog is a tamper-evident audit log in PostgreSQL. Several
// processes may write one log at once: every append takes a row lock on a
// single-row head table inside its transaction, so the records form one
// totally ordered RFC 6962 tree, and checkpoints are signed as for the
// [FileLog]. The tables live in the connection's search_path:
//
//	audit_records      (idx, leaf, event, written_at): append-only
//	audit_checkpoints  (seq, size, note): append-only
//	audit_head         (size, frontier): the tree's growing edge
//
// Triggers refuse UPDATE, DELETE and TRUNCATE on the append-only tables.
// A superuser can disable triggers; [VerifyPostgres] still detects any
// change covered by a checkpoint.
type PostgresLog struct {
	pool   *pgxpool.Pool
	cfg    PostgresConfig
	now    func() time.Time
	stop   chan struct{}
	exited chan struct{}

	mu     sync.RWMutex
	closed bool
}

var _ Logger = (*PostgresLog)(nil)

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
INSERT INTO audit_head (one, size, frontier) VALUES (true, 0, '') ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME;
END $$;
CREATE OR REPLACE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
`

// OpenPostgres connects to dsn, creates the tables if needed, and returns
// the log. Close it to write a final checkpoint.
func OpenPostgres(ctx context.Context, dsn string, cfg PostgresConfig) (*PostgresLog, error) {
	if cfg.Signer == nil {
		return nil, ErrNoSigner
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("audit: postgres: %w", err)
	}
	l := &PostgresLog{pool: pool, cfg: cfg, now: cfg.Now, stop: make(chan struct{}), exited: make(chan struct{})}
	if l.now == nil {
		l.now = time.Now
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Serialize schema creation between processes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7365298412)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, pgSchema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("audit: postgres: create tables: %w", err)
	}
	tick := cfg.Tick
	var ticker *time.Ticker
	if tick == nil {
		ticker = time.NewTicker(cfg.CheckpointInterval)
		tick = ticker.C
	}
	go func() {
		defer close(l.exited)
		if ticker != nil {
			defer ticker.Stop()
		}
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

func (l *PostgresLog) enter() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Log records e in one transaction and returns once it committed.
func (l *PostgresLog) Log(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	b, err := protect(e, l.cfg.Pseudonymizer).Marshal()
	if err != nil {
		return err
	}
	if err := l.enter(); err != nil {
		return err
	}
	defer l.mu.RUnlock()
	leaf := tlog.RecordHash(b)
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		idx := t.Size()
		if err := t.AppendHash(leaf); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_records (idx, leaf, event) VALUES ($1, $2, $3)`, idx, leaf[:], b); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE audit_head SET size = $1, frontier = $2 WHERE one`, t.Size(), joinHashes(t.Frontier()))
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: postgres: log: %w", err)
	}
	return nil
}

// lockHead locks the head row and returns the tree's frontier.
func lockHead(ctx context.Context, tx pgx.Tx) (*merkle.Tree, error) {
	var size int64
	var fr []byte
	if err := tx.QueryRow(ctx, `SELECT size, frontier FROM audit_head WHERE one FOR UPDATE`).Scan(&size, &fr); err != nil {
		return nil, err
	}
	if len(fr)%tlog.HashSize != 0 {
		return nil, errors.New("audit: postgres: malformed head")
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
func (l *PostgresLog) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if err := l.enter(); err != nil {
		return Checkpoint{}, err
	}
	defer l.mu.RUnlock()
	return l.checkpoint(ctx)
}

func (l *PostgresLog) checkpoint(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		root, err := t.Root()
		if err != nil {
			return err
		}
		msg, err := logfmt.SignCheckpoint(l.cfg.Signer.s, t.Size(), root, l.now())
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2)`, t.Size(), msg); err != nil {
			return err
		}
		c, err := logfmt.OpenCheckpoint(msg, l.cfg.Signer.Verifier())
		cp = publicCheckpoint(&c)
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: postgres: checkpoint: %w", err)
	}
	return cp, nil
}

// Close writes a final checkpoint and closes the connection pool.
func (l *PostgresLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.exited
	_, err := l.checkpoint(context.Background())
	l.pool.Close()
	return err
}

// VerifyPostgres verifies the log in the database at dsn (tables in its
// search_path) like [Verify] verifies a file log.
func VerifyPostgres(ctx context.Context, dsn string, v note.Verifier) (Report, error) {
	if v == nil {
		return Report{}, fmt.Errorf("%w: no verifier", ErrBadKey)
	}
	res, err := verifyPostgres(ctx, dsn, v, false, nil)
	if err != nil {
		return Report{}, err
	}
	return res.report(), nil
}

// ProvePostgres returns an inclusion proof for record index of the log at
// dsn, against its latest checkpoint.
func ProvePostgres(ctx context.Context, dsn string, index int64) (*InclusionProof, error) {
	var rec []byte
	res, err := verifyPostgres(ctx, dsn, nil, true, func(idx int64, ev []byte) {
		if idx == index {
			rec = append([]byte(nil), ev...)
		}
	})
	if err != nil {
		return nil, err
	}
	cp := res.Latest
	if cp == nil || index < 0 || index >= cp.Size || rec == nil {
		return nil, fmt.Errorf("%w: record %d", ErrNotCovered, index)
	}
	p, err := tlog.ProveRecord(cp.Size, index, res.State.Tree())
	if err != nil {
		return nil, fmt.Errorf("audit: prove: %w", err)
	}
	return &InclusionProof{Index: index, Record: string(rec), Checkpoint: string(cp.Note), Proof: p}, nil
}

func verifyPostgres(ctx context.Context, dsn string, v note.Verifier, keep bool, each func(int64, []byte)) (verified, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer conn.Close(context.Background())
	// One snapshot for checkpoints and records.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback(context.Background())

	rows, err := tx.Query(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return verified{}, ErrEmptyLog
		}
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	var cpData []byte
	var seq uint64
	for rows.Next() {
		var n []byte
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return verified{}, fmt.Errorf("audit: verify: %w", err)
		}
		cpData = frame.Append(cpData, seq, n)
		seq++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	res := &logfmt.Result{CheckpointsLen: len(cpData)}
	cps, cpFault, _, err := logfmt.ReadCheckpoints(cpData, v)
	if err != nil {
		return convert(nil, nil, err)
	}
	res.Checkpoints = cps
	for i := range cps {
		if res.Latest == nil || cps[i].Size >= res.Latest.Size {
			res.Latest = &cps[i]
		}
	}
	st := logfmt.NewState(merkle.New(keep), cps, cpFault, MaxEventSize)
	res.State = st

	rows, err = tx.Query(ctx, `SELECT idx, leaf, event FROM audit_records ORDER BY idx`)
	if err != nil {
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var buf []byte
	var leafFault *logfmt.Fault
	n := 0
	for rows.Next() && !st.Done() {
		var idx int64
		var leaf, ev []byte
		if err := rows.Scan(&idx, &leaf, &ev); err != nil {
			return verified{}, fmt.Errorf("audit: verify: %w", err)
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
		return verified{}, fmt.Errorf("audit: verify: %w", err)
	}
	st.Feed(buf, false)
	if n == 0 && len(cps) == 0 && cpFault == nil {
		return convert(nil, nil, logfmt.ErrEmpty)
	}
	fault := st.Finish()
	// A stored leaf hash that no longer matches its event pinpoints the
	// row; a root mismatch only bounds the range.
	if leafFault != nil && (fault == nil || leafFault.Index < fault.Index || fault.Kind == logfmt.KindModified) {
		fault = leafFault
	}
	return convert(res, fault, nil)
}
