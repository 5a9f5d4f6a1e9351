package pglog

// Group commit of Log. These tests live in package pglog to see
// how many events wait for the writer (len(l.reqs)), which makes the
// batches they build deterministic.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
	"golang.org/x/mod/sumdb/note"
)

func groupKeys(t *testing.T) (*audit.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey("pg.example/group")
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func groupOpen(t *testing.T, dsn string, s *audit.Signer) *Log {
	t.Helper()
	l, err := Open(context.Background(), groupPool(t, dsn), Config{Signer: s, Clock: testclock.New(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// groupPool returns a pool on dsn, closed when t ends.
func groupPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func groupConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func groupEvent(name string) audit.Event {
	return audit.Event{Action: "pg.group", Resource: name, Outcome: audit.OutcomeAllow}
}

// resources returns the resource of every record, by index.
func resources(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT idx, convert_from(event, 'UTF8')::json->>'resource' FROM audit_records WHERE convert_from(event, 'UTF8')::json->>'action' = 'pg.group'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var idx int64
		var res string
		if err := rows.Scan(&idx, &res); err != nil {
			t.Fatal(err)
		}
		if _, dup := m[res]; dup {
			t.Fatalf("event %s stored twice", res)
		}
		m[res] = idx
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func verifyGroup(t *testing.T, dsn string, v note.Verifier, size int64) {
	t.Helper()
	rep, err := Verify(context.Background(), groupPool(t, dsn), v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != size || rep.Checkpoint.Size != size {
		t.Fatalf("report %+v, want %d records, all checkpointed", rep, size)
	}
}

// plug blocks l's writer: it holds the head lock in a transaction of its
// own, logs one event ("plug-<name>") and waits until the writer's
// transaction waits for the lock. Events logged next wait in l.reqs until
// unplug, and then form one batch. unplug returns the plug's Log error.
func plug(t *testing.T, l *Log, dsn, name string) (unplug func() error) {
	t.Helper()
	ctx := context.Background()
	conn := groupConn(t, dsn)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) }) // before l.Close, if the test fails
	if _, err := tx.Exec(ctx, `SELECT 1 FROM audit_head WHERE one FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Log(ctx, groupEvent("plug-"+name)) }()
	other := groupConn(t, dsn)
	waitFor(t, "the writer to wait for the head lock", func() bool {
		var n int
		if err := other.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	return func() error {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return <-done
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// logQueued logs the events named names concurrently, waits until they
// all wait for the writer, and returns their results in order.
func logQueued(t *testing.T, l *Log, names ...string) (wait func() []error) {
	t.Helper()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	before := len(l.reqs)
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Log(context.Background(), groupEvent(n))
		}()
	}
	waitFor(t, "the events to be queued", func() bool { return len(l.reqs) == before+len(names) })
	return func() []error {
		wg.Wait()
		return errs
	}
}

func TestPostgresGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	l := groupOpen(t, dsn, s)
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Log(context.Background(), groupEvent(fmt.Sprintf("g%d-%03d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyGroup(t, dsn, v, goroutines*each)
	conn := groupConn(t, dsn)
	got := resources(t, conn)
	if len(got) != goroutines*each {
		t.Fatalf("%d distinct events stored, want %d", len(got), goroutines*each)
	}
	// Each goroutine's events are in the order it logged them.
	for g := 0; g < goroutines; g++ {
		for i := 1; i < each; i++ {
			a, b := got[fmt.Sprintf("g%d-%03d", g, i-1)], got[fmt.Sprintf("g%d-%03d", g, i)]
			if a >= b {
				t.Fatalf("goroutine %d: event %d at %d, event %d at %d", g, i-1, a, i, b)
			}
		}
	}
	var txs int64
	if err := conn.QueryRow(context.Background(), `SELECT count(DISTINCT xmin::text) FROM audit_records`).Scan(&txs); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events in %d transactions", goroutines*each, txs)
	if txs >= goroutines*each {
		t.Fatalf("%d events in %d transactions: no group commit", goroutines*each, txs)
	}
}

func TestPostgresGroupCommitTwoLogs(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	logs := []*Log{groupOpen(t, dsn, s), groupOpen(t, dsn, s)}
	const goroutines, each = 4, 100
	var wg sync.WaitGroup
	for n, l := range logs {
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := l.Log(context.Background(), groupEvent(fmt.Sprintf("l%d-g%d-%03d", n, g, i))); err != nil {
						t.Error(err)
						return
					}
					if i%25 == 0 {
						if _, err := l.Checkpoint(context.Background()); err != nil {
							t.Error(err)
						}
					}
				}
			}()
		}
	}
	// Prune runs between the appends, in the same order by the head lock.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cp, err := logs[0].Checkpoint(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			if cp.Size >= 100 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if min, err := logs[0].Prune(context.Background(), 100); err != nil || min != 100 {
			t.Errorf("Prune(100) = %d, %v", min, err)
		}
	}()
	wg.Wait()
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	verifyGroup(t, dsn, v, 2*goroutines*each+1) // + the audit.prune event
	if rep, _ := Verify(context.Background(), groupPool(t, dsn), v); rep.Pruned != 100 {
		t.Fatalf("pruned %d, want 100", rep.Pruned)
	}
	if n := len(resources(t, groupConn(t, dsn))); n != 2*goroutines*each-100 {
		t.Fatalf("%d events kept, want %d", n, 2*goroutines*each-100)
	}
}

func TestPostgresGroupCommitFailure(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	l := groupOpen(t, dsn, s)
	ctx := context.Background()
	conn := groupConn(t, dsn)
	// The INSERT fails for the event "poison", wherever it is in a batch.
	for _, q := range []string{
		`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'poisoned event %', NEW.idx;
		END $$`,
		`CREATE TRIGGER poison BEFORE INSERT ON audit_records FOR EACH ROW
			WHEN (convert_from(NEW.event, 'UTF8')::json->>'resource' = 'poison')
			EXECUTE FUNCTION poison()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	unplug := plug(t, l, dsn, "1")
	bad := []string{"bad-0", "bad-1", "bad-2", "poison", "bad-4", "bad-5"}
	wait := logQueued(t, l, bad...)
	if err := unplug(); err != nil {
		t.Fatalf("plug: %v", err)
	}
	for i, err := range wait() {
		if err == nil || !strings.Contains(err.Error(), "poisoned event") {
			t.Errorf("Log(%s) = %v, want the batch's error", bad[i], err)
		}
	}
	got := resources(t, conn)
	for _, n := range bad {
		if idx, ok := got[n]; ok {
			t.Errorf("event %s of the failed batch stored at %d", n, idx)
		}
	}

	// The log carries on from where it was: one batch, one transaction.
	unplug = plug(t, l, dsn, "2")
	good := []string{"good-0", "good-1", "good-2", "good-3"}
	wait = logQueued(t, l, good...)
	if err := unplug(); err != nil {
		t.Fatalf("plug: %v", err)
	}
	for i, err := range wait() {
		if err != nil {
			t.Errorf("Log(%s) = %v", good[i], err)
		}
	}
	var txs int64
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM audit_records WHERE convert_from(event, 'UTF8')::json->>'resource' LIKE 'good-%'`).Scan(&txs); err != nil {
		t.Fatal(err)
	}
	if txs != 1 {
		t.Fatalf("a queued batch of %d events took %d transactions", len(good), txs)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	verifyGroup(t, dsn, v, int64(2+len(good)))
	got = resources(t, conn)
	if len(got) != 2+len(good) {
		t.Fatalf("stored %v", got)
	}
	// Within a batch, records keep the order the calls were accepted in,
	// which logQueued does not fix; they are contiguous after the plug.
	for _, n := range good {
		if got[n] <= got["plug-2"] || got[n] > got["plug-2"]+int64(len(good)) {
			t.Fatalf("event %s at %d, plug at %d", n, got[n], got["plug-2"])
		}
	}
}

func TestPostgresGroupCommitCancel(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	l := groupOpen(t, dsn, s)
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Log(ctx, groupEvent("first")); err != nil {
		t.Fatal(err)
	}
	unplug := plug(t, l, dsn, "1")
	done := make(chan error, 1)
	go func() { done <- l.Log(ctx, groupEvent("cancelled")) }()
	waitFor(t, "the event to be queued", func() bool { return len(l.reqs) == 1 })
	cancel()
	// Not taken yet: ctx.Err() itself, and the event is never written.
	if err := <-done; err != context.Canceled {
		t.Fatalf("Log with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := unplug(); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(context.Background(), groupEvent("last")); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(ctx, groupEvent("cancelled-before")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Log with a cancelled ctx = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := resources(t, groupConn(t, dsn))
	if _, ok := got["cancelled"]; ok || len(got) != 3 {
		t.Fatalf("stored %v, want first, plug-1 and last", got)
	}
	if got["first"] != 0 || got["plug-1"] != 1 || got["last"] != 2 {
		t.Fatalf("stored %v", got)
	}
	verifyGroup(t, dsn, v, 3)
}

func TestPostgresGroupCommitClose(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	l := groupOpen(t, dsn, s)
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				n := fmt.Sprintf("g%d-%d", g, i)
				err := l.Log(context.Background(), groupEvent(n))
				if errors.Is(err, audit.ErrLogClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[n] = true
				mu.Unlock()
			}
		}()
	}
	waitFor(t, "some events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 100
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := l.Log(context.Background(), groupEvent("late")); !errors.Is(err, audit.ErrLogClosed) {
		t.Fatalf("Log after Close = %v", err)
	}
	got := resources(t, groupConn(t, dsn))
	// Every acknowledged event is stored, and so is every event Log
	// accepted before Close: Close drained them, and their callers saw
	// nil. An event refused with ErrLogClosed is not stored.
	if len(got) != len(acked) {
		t.Fatalf("%d events stored, %d acknowledged", len(got), len(acked))
	}
	for n := range acked {
		if _, ok := got[n]; !ok {
			t.Fatalf("acknowledged event %s not stored", n)
		}
	}
	verifyGroup(t, dsn, v, int64(len(acked)))
}

// TestPostgresGroupCommitTimeout makes one transaction hang in the
// database: its batch fails once the batch timeout passes, nothing of it
// is stored, and the log carries on.
func TestPostgresGroupCommitTimeout(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	s, v := groupKeys(t)
	l := groupOpen(t, dsn, s)
	l.batchTimeout = 200 * time.Millisecond // before any Log: the writer reads it after a channel receive
	ctx := context.Background()
	conn := groupConn(t, dsn)
	for _, q := range []string{
		`CREATE FUNCTION hang() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_sleep(5);
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER hang BEFORE INSERT ON audit_records FOR EACH ROW
			WHEN (convert_from(NEW.event, 'UTF8')::json->>'resource' = 'hang')
			EXECUTE FUNCTION hang()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := l.Log(ctx, groupEvent("hang"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Log of a hanging transaction = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("the batch timeout did not end the transaction: Log took %v", d)
	}
	// The hung backend holds the head's row lock until PostgreSQL has
	// acted on the cancel, which on a loaded machine can outlast this
	// test's short batch timeout: a timed-out batch stores nothing and
	// may be retried, as a caller would.
	err = l.Log(ctx, groupEvent("after"))
	for i := 0; i < 20 && errors.Is(err, context.DeadlineExceeded); i++ {
		err = l.Log(ctx, groupEvent("after"))
	}
	if err != nil {
		t.Fatalf("Log after a timed-out batch: %v", err)
	}
	got := resources(t, conn)
	if _, ok := got["hang"]; ok {
		t.Fatal("the timed-out event was stored")
	}
	if _, ok := got["after"]; !ok {
		t.Fatal("the event after the timeout was not stored")
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	verifyGroup(t, dsn, v, 1)
}
