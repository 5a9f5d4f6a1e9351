package pglog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
)

// openPG opens a PostgresLog on dsn that checkpoints only when asked.
func openPG(t *testing.T, dsn string, k testKeys) *pglog.Log {
	t.Helper()
	l, err := openDSN(context.Background(), t, dsn, pglog.Config{Signer: k.signer, Clock: testclock.New(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t *testing.T, conn *pgx.Conn, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// logN logs testEvent(i) for i in [from, to).
func logN(t *testing.T, l *pglog.Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Log(context.Background(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func wantVerifyError(t *testing.T, what string, err error, index int64, kind audit.Kind) {
	t.Helper()
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Index != index || ve.Kind != kind {
		t.Fatalf("%s: got %v, want tampering at %d: %s", what, err, index, kind)
	}
}

func TestPostgresPrune(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	conn := connect(t, dsn)
	l := openPG(t, dsn, k)
	logN(t, l, 0, 50)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	logN(t, l, 50, 60) // not covered by a checkpoint

	if _, err := l.Prune(ctx, -1); !errors.Is(err, audit.ErrBadIndex) {
		t.Fatalf("negative prune point: %v", err)
	}
	if min, err := l.Prune(ctx, 0); err != nil || min != 0 {
		t.Fatalf("Prune(0) = %d, %v", min, err)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_prunes`); n != 0 {
		t.Fatalf("a no-op prune stored %d notes", n)
	}

	min, err := l.Prune(ctx, 30)
	if err != nil || min != 30 {
		t.Fatalf("Prune(30) = %d, %v", min, err)
	}
	if lo := queryInt(t, conn, `SELECT min(idx) FROM audit_records`); lo != 30 {
		t.Fatalf("first record left is %d, want 30", lo)
	}
	// Idempotent and monotonic: no new note, no new event.
	for _, below := range []int64{30, 10, 0} {
		if m, err := l.Prune(ctx, below); err != nil || m != 30 {
			t.Fatalf("Prune(%d) after Prune(30) = %d, %v", below, m, err)
		}
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_prunes`); n != 1 {
		t.Fatalf("%d prune notes, want 1", n)
	}
	// Beyond the latest checkpoint (50) is clamped to it.
	if m, err := l.Prune(ctx, 1000); err != nil || m != 50 {
		t.Fatalf("Prune(1000) = %d, %v; want the checkpoint size 50", m, err)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_records WHERE idx < 50`); n != 0 {
		t.Fatalf("%d records left below 50", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_records`); n != 12 {
		t.Fatalf("%d records kept, want 10 events and 2 prune events", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := verifyDSN(ctx, t, dsn, k.verifier)
	if err != nil || rep.Pruned != 50 || rep.Size != 62 || rep.Checkpoint.Size != 62 {
		t.Fatalf("after prune: %+v %v", rep, err)
	}
	if _, err := proveDSN(ctx, t, dsn, 49); !errors.Is(err, audit.ErrNotCovered) {
		t.Fatalf("prove pruned record: %v", err)
	}
	if _, err := proveDSN(ctx, t, dsn, 0); !errors.Is(err, audit.ErrNotCovered) {
		t.Fatalf("prove pruned record 0: %v", err)
	}
	for _, i := range []int64{50, 59} {
		p, err := proveDSN(ctx, t, dsn, i)
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := audit.CheckInclusion(k.verifier, p)
		if err != nil || e.Resource != fmt.Sprintf("doc/%d", i) {
			t.Fatalf("proof %d: %+v %v", i, e, err)
		}
	}
	// Both prunes are in the log, provably, saying how far they went.
	for i, below := range map[int64]string{60: "30", 61: "50"} {
		p, err := proveDSN(ctx, t, dsn, i)
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := audit.CheckInclusion(k.verifier, p)
		if err != nil || e.Action != "audit.prune" || len(e.Attributes) != 1 || e.Attributes[0].Value != below {
			t.Fatalf("record %d: %+v %v, want audit.prune below %s", i, e, err, below)
		}
	}

	// Reopen: appending and pruning go on from the prune point.
	l = openPG(t, dsn, k)
	logN(t, l, 100, 105)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := l.Prune(ctx, 61); err != nil || m != 61 {
		t.Fatalf("Prune(61) after reopen = %d, %v", m, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = verifyDSN(ctx, t, dsn, k.verifier)
	if err != nil || rep.Pruned != 61 || rep.Size != 68 || rep.Checkpoint.Size != 68 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	if _, err := l.Prune(ctx, 62); !errors.Is(err, audit.ErrLogClosed) {
		t.Fatalf("prune after close: %v", err)
	}
}

func TestPostgresPruneTrigger(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	conn := connect(t, dsn)
	l := openPG(t, dsn, k)
	defer l.Close()
	logN(t, l, 0, 20)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	refused := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want refusal", q, err)
		}
	}
	// Without a prune note nothing can be deleted.
	refused(`DELETE FROM audit_records WHERE idx = 0`)
	if _, err := l.Prune(ctx, 10); err != nil {
		t.Fatal(err)
	}
	// A kept record still cannot be deleted.
	refused(`DELETE FROM audit_records WHERE idx = 10`)
	refused(`DELETE FROM audit_records`)
	refused(`TRUNCATE audit_records`)
	refused(`UPDATE audit_prunes SET min = 0`)
	refused(`DELETE FROM audit_prunes`)
	refused(`TRUNCATE audit_prunes`)

	// A row inserted below the prune point is not part of the log:
	// verification reports it, and only it can be deleted, not together
	// with a kept row.
	mustExec(t, conn, `INSERT INTO audit_records (idx, leaf, event) SELECT 5, leaf, event FROM audit_records WHERE idx = 10`)
	_, err := verifyDSN(ctx, t, dsn, k.verifier)
	wantVerifyError(t, "row inserted below the prune point", err, 5, audit.KindModified)
	if _, err := proveDSN(ctx, t, dsn, 5); err == nil {
		t.Fatal("proved a row below the prune point")
	}
	refused(`DELETE FROM audit_records WHERE idx IN (5, 10)`)
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_records WHERE idx IN (5, 10)`); n != 2 {
		t.Fatalf("refused delete removed rows: %d left", n)
	}
	mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 5`)
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Pruned != 10 {
		t.Fatalf("after removing the stray row: %+v %v", rep, err)
	}

	// A forged prune row opens the trigger, but verification and Prune
	// see that its note is not signed.
	mustExec(t, conn, `INSERT INTO audit_prunes (min, note) VALUES (15, 'garbage')`)
	mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 12`)
	_, err = verifyDSN(ctx, t, dsn, k.verifier)
	wantVerifyError(t, "forged prune note", err, 10, audit.KindBadSignature)
	if _, err := proveDSN(ctx, t, dsn, 15); err == nil {
		t.Fatal("proved against a log with a forged prune note")
	}
	_, err = l.Prune(ctx, 18)
	wantVerifyError(t, "prune over a forged prune note", err, 0, audit.KindBadSignature)
}

func TestPostgresPruneTamper(t *testing.T) {
	t.Parallel()
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()

	setup := func(t *testing.T) (string, *pgx.Conn) {
		dsn := testpg.Schema(t)
		l := openPG(t, dsn, k)
		logN(t, l, 0, 30)
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Prune(ctx, 10); err != nil {
			t.Fatal(err)
		}
		logN(t, l, 30, 35)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Pruned != 10 || rep.Size != 36 {
			t.Fatalf("intact: %+v %v", rep, err)
		}
		conn := connect(t, dsn)
		mustExec(t, conn, `ALTER TABLE audit_records DISABLE TRIGGER USER`)
		return dsn, conn
	}

	t.Run("deleted kept rows", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 15`)
		_, err := verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "deleted row above the prune point", err, 15, audit.KindMissing)
		mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 10`)
		_, err = verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "deleted first kept row", err, 10, audit.KindMissing)
		mustExec(t, conn, `DELETE FROM audit_records WHERE idx > 10`)
		_, err = verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "every kept row deleted", err, 10, audit.KindTruncated)
	})
	t.Run("replayed prune note", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `INSERT INTO audit_prunes (min, note) SELECT min, note FROM audit_prunes`)
		_, err := verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "replayed prune note", err, 10, audit.KindReordered)
	})
	t.Run("prune row lies about its note", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `INSERT INTO audit_prunes (min, note) SELECT 20, note FROM audit_prunes`)
		_, err := verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "prune row min not its note's", err, 10, audit.KindBadSignature)
	})
	t.Run("altered prune note", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `INSERT INTO audit_prunes (min, note)
			SELECT 20, convert_to(replace(convert_from(note, 'UTF8'), E'\n10\n', E'\n20\n'), 'UTF8') FROM audit_prunes`)
		_, err := verifyDSN(ctx, t, dsn, k.verifier)
		wantVerifyError(t, "altered prune note", err, 10, audit.KindBadSignature)
	})
	t.Run("prune refuses a tampered range", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `UPDATE audit_records SET event = convert_to(replace(convert_from(event, 'UTF8'), 'doc/12', 'doc/13'), 'UTF8') WHERE idx = 12`)
		// Open refuses a log whose triggers are disabled, and
		// leaves them so: they are re-enabled by hand.
		if _, err := openDSN(ctx, t, dsn, pglog.Config{Signer: k.signer, Clock: testclock.New(nil, nil)}); !errors.Is(err, pglog.ErrNotAppendOnly) {
			t.Fatalf("open with disabled triggers: %v, want ErrNotAppendOnly", err)
		}
		mustExec(t, conn, `ALTER TABLE audit_records ENABLE TRIGGER USER`)
		l := openPG(t, dsn, k)
		defer l.Close()
		if _, err := conn.Exec(ctx, `DELETE FROM audit_records WHERE idx = 14`); err == nil {
			t.Fatal("re-enabled triggers do not refuse a delete")
		}
		mustExec(t, conn, `ALTER TABLE audit_records DISABLE TRIGGER USER`)
		_, err := l.Prune(ctx, 20)
		wantVerifyError(t, "prune over a modified record", err, 10, audit.KindModified)
		mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 14`)
		_, err = l.Prune(ctx, 20)
		wantVerifyError(t, "prune over a deleted record", err, 14, audit.KindMissing)
		if n := queryInt(t, conn, `SELECT count(*) FROM audit_prunes`); n != 1 {
			t.Fatalf("%d prune notes after refused prunes", n)
		}
		if n := queryInt(t, conn, `SELECT count(*) FROM audit_records WHERE idx < 20`); n != 9 {
			t.Fatalf("refused prune deleted records: %d left below 20", n)
		}
	})
}

// pgSchemaV0 is the schema the log (then audit.OpenPostgres) created before Prune existed.
const pgSchemaV0 = `
CREATE TABLE audit_records (
	idx        bigint PRIMARY KEY CHECK (idx >= 0),
	leaf       bytea NOT NULL,
	event      bytea NOT NULL,
	written_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE audit_checkpoints (seq bigserial PRIMARY KEY, size bigint NOT NULL, note bytea NOT NULL);
CREATE TABLE audit_head (
	one      boolean PRIMARY KEY DEFAULT true CHECK (one),
	size     bigint NOT NULL,
	frontier bytea NOT NULL
);
INSERT INTO audit_head (one, size, frontier) VALUES (true, 0, '');
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
`

func TestPostgresPruneUpgrade(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	conn := connect(t, dsn)
	mustExec(t, conn, pgSchemaV0)
	if _, err := verifyDSN(ctx, t, dsn, k.verifier); !errors.Is(err, audit.ErrEmptyLog) {
		t.Fatalf("empty old log: %v", err)
	}
	l := openPG(t, dsn, k)
	logN(t, l, 0, 20)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := l.Prune(ctx, 8); err != nil || m != 8 {
		t.Fatalf("prune on an upgraded log: %d %v", m, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Pruned != 8 || rep.Size != 21 {
		t.Fatalf("upgraded log: %+v %v", rep, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM audit_records WHERE idx = 8`); err == nil {
		t.Fatal("upgraded log lets a kept record be deleted")
	}
	// Opening again changes nothing.
	openPG(t, dsn, k).Close()
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_records'::regclass AND NOT tgisinternal`); n != 3 {
		t.Fatalf("%d triggers on audit_records, want 3", n)
	}

	// A log whose database lacks audit_prunes (written before Prune
	// existed, not reopened since) still verifies.
	old := testpg.Schema(t)
	l = openPG(t, old, k)
	logN(t, l, 0, 5)
	l.Close()
	mustExec(t, connect(t, old), `DROP TABLE audit_prunes`)
	if rep, err := verifyDSN(ctx, t, old, k.verifier); err != nil || rep.Size != 5 || rep.Pruned != 0 {
		t.Fatalf("log without audit_prunes: %+v %v", rep, err)
	}
}

func TestPostgresPruneConcurrent(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	logs := []*pglog.Log{openPG(t, dsn, k), openPG(t, dsn, k)}
	var wg sync.WaitGroup
	for w, l := range logs {
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					if err := l.Log(ctx, testEvent(1000*w+100*g+i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	done := make(chan struct{})
	var last int64
	var pruner sync.WaitGroup
	pruner.Add(1)
	go func() {
		defer pruner.Done()
		for {
			cp, err := logs[1].Checkpoint(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			m, err := logs[0].Prune(ctx, max(0, cp.Size-3))
			if err != nil {
				t.Error(err)
				return
			}
			if m < last {
				t.Errorf("prune point went back from %d to %d", last, m)
			}
			last = m
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	close(done)
	pruner.Wait()
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := verifyDSN(ctx, t, dsn, k.verifier)
	if err != nil || rep.Pruned != last || last == 0 {
		t.Fatalf("report %+v, last prune %d: %v", rep, last, err)
	}
	conn := connect(t, dsn)
	prunes := queryInt(t, conn, `SELECT count(*) FROM audit_prunes`)
	events := queryInt(t, conn, `SELECT count(*) FROM audit_records WHERE convert_from(event, 'UTF8')::json->>'action' = 'audit.prune'`)
	if rep.Size != 240+prunes || events == 0 {
		t.Fatalf("size %d with %d prunes, %d prune events kept", rep.Size, prunes, events)
	}
}
