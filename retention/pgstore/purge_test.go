package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/pgstore"
)

// t0 is the fixed "now" of the purge tests.
var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// load inserts n rows k0000000.. whose every liveEvery-th row is live and
// the others expired at t0, with content "v<i>".
func load(t testing.TB, pool *pgxpool.Pool, n, liveEvery int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `DROP INDEX retention_tenant_objects_retain_until, retention_tenant_objects_class_created;
		ALTER TABLE retention_tenant_objects DROP CONSTRAINT retention_tenant_objects_pkey`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(context.Background(), `
		INSERT INTO retention_tenant_objects (key, class, created, retain_until, tenant, subject, data)
		SELECT 'k' || lpad(i::text, 7, '0'), 'log',
			CASE WHEN i % $2 = 0 THEN $3::timestamptz - interval '1 day' ELSE $3::timestamptz - interval '2 days' END,
			CASE WHEN i % $2 = 0 THEN $3::timestamptz + interval '10 days' ELSE $3::timestamptz - interval '1 hour' END,
			'acme', 'alice', convert_to('v' || i, 'UTF8')
		FROM generate_series(0, $1 - 1) AS i`, n, liveEvery, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Build the indexes after the load, as pg_restore does: several times
	// faster than maintaining them row by row.
	if _, err := pool.Exec(context.Background(), `ALTER TABLE retention_tenant_objects ADD PRIMARY KEY (tenant, key)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `ANALYZE retention_tenant_objects`); err != nil {
		t.Fatal(err)
	}
}

func key(i int) string { return fmt.Sprintf("k%07d", i) }

func count(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM retention_tenant_objects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// liveDigest is an order-independent digest of every live row.
func liveDigest(t testing.TB, pool *pgxpool.Pool) (int, string) {
	t.Helper()
	var n int
	var d string
	err := pool.QueryRow(context.Background(), `SELECT count(*), coalesce(md5(string_agg(key || ':' || encode(data, 'escape'), ',' ORDER BY key)), '')
		FROM retention_tenant_objects WHERE retain_until > $1`, t0).Scan(&n, &d)
	if err != nil {
		t.Fatal(err)
	}
	return n, d
}

// acme is the tenant of the loaded rows; asAcme is a ctx acting for it,
// opCtx one of the operator path.
const acme = "acme"

var (
	asAcme = audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: acme})
	opCtx  = retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "ops"}), "pgstore test")
)

func acmePart(t testing.TB, b *pgstore.Store) retention.Partition {
	t.Helper()
	p, err := b.Partition(acme)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t testing.TB, b retention.Backend, log audit.Logger) *retention.Store {
	t.Helper()
	s, err := retention.New(b, retention.Config{Logger: log, Clock: audit.ClockFunc(func() time.Time { return t0 })})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingLogger counts events without keeping them.
type countingLogger struct{ n atomic.Int64 }

func (c *countingLogger) Log(context.Context, audit.Event) error { c.n.Add(1); return nil }

func TestPurgeMillionRowsWithReaders(t *testing.T) {
	n, liveEvery := 1_000_000, 100
	if testing.Short() {
		n = 50_000
	}
	b, pool := open(t)
	tl := time.Now()
	load(t, pool, n, liveEvery)
	t.Logf("loaded %d rows in %v", n, time.Since(tl))
	liveN, liveD := liveDigest(t, pool)
	s := newStore(t, b, &countingLogger{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	var reads atomic.Int64
	errc := make(chan error, 8)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for ctx.Err() == nil {
				i := rng.IntN(n)
				rc, _, err := s.Get(asAcme, key(i))
				reads.Add(1)
				if i%liveEvery == 0 {
					if err != nil {
						errc <- fmt.Errorf("live %s: %v", key(i), err)
						return
					}
					got, _ := io.ReadAll(rc)
					rc.Close()
					if string(got) != fmt.Sprintf("v%d", i) {
						errc <- fmt.Errorf("live %s = %q", key(i), got)
						return
					}
					continue
				}
				if err == nil {
					// Only a row the writer revived may be returned.
					got, _ := io.ReadAll(rc)
					rc.Close()
					if string(got) != "revived" {
						errc <- fmt.Errorf("expired %s returned: %q", key(i), got)
						return
					}
					continue
				}
				if !errors.Is(err, retention.ErrExpired) && !errors.Is(err, retention.ErrNotFound) {
					errc <- fmt.Errorf("expired %s: %v", key(i), err)
					return
				}
			}
		}()
	}
	// A writer revives expired keys while the purge runs; none of them may
	// be lost.
	revived := map[string]bool{}
	var revMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 7))
		m := retention.Meta{Class: retention.ClassLog, Created: t0, RetainUntil: t0.Add(24 * time.Hour), Tenant: acme}
		for ctx.Err() == nil && len(revived) < 2000 {
			i := rng.IntN(n)
			if i%liveEvery == 0 {
				continue
			}
			if err := acmePart(t, b).Put(context.Background(), key(i), strings.NewReader("revived"), m); err != nil {
				errc <- err
				return
			}
			revMu.Lock()
			revived[key(i)] = true
			revMu.Unlock()
		}
	}()

	start := time.Now()
	rep, err := s.Purge(opCtx, retention.PurgeOptions{BatchSize: 5000})
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("purged %d rows in %v (%.0f rows/s) with %d concurrent reads, %d revived", rep.Deleted, elapsed,
		float64(rep.Deleted)/elapsed.Seconds(), reads.Load(), len(revived))
	if rep.Deleted+len(revived) < n-n/liveEvery || rep.Deleted > n-n/liveEvery {
		t.Fatalf("deleted %d of %d expired (%d revived)", rep.Deleted, n-n/liveEvery, len(revived))
	}
	if reads.Load() == 0 {
		t.Fatal("readers never ran")
	}
	for k := range revived {
		rc, _, err := acmePart(t, b).Get(context.Background(), k)
		if err != nil {
			t.Fatalf("revived %s lost: %v", k, err)
		}
		rc.Close()
	}
	if gotN := count(t, pool); gotN != liveN+len(revived) {
		t.Fatalf("%d rows left, want %d live + %d revived", gotN, liveN, len(revived))
	}
	// The original live rows are untouched (revived ones are new rows with
	// retain_until after t0 as well, so compare without them).
	_, err = pool.Exec(context.Background(), `DELETE FROM retention_tenant_objects WHERE data = 'revived'`)
	if err != nil {
		t.Fatal(err)
	}
	if n2, d2 := liveDigest(t, pool); n2 != liveN || d2 != liveD {
		t.Fatalf("live rows changed: %d %s, want %d %s", n2, d2, liveN, liveD)
	}
}

const childEnv = "TOMKIT_RETENTION_PURGE_CHILD_DSN"

// TestPurgeChild is the purge process that TestPurgeKilledAndResumed kills.
func TestPurgeChild(t *testing.T) {
	dsn := os.Getenv(childEnv)
	if dsn == "" {
		t.Skip("child process of TestPurgeKilledAndResumed")
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pgstore.Open(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, b, batchPrinter{})
	_, err = s.Purge(opCtx, retention.PurgeOptions{BatchSize: 500})
	t.Fatalf("child purge finished before it was killed: %v", err)
}

type batchPrinter struct{}

func (batchPrinter) Log(_ context.Context, e audit.Event) error {
	if e.Action == "retention.purge.batch" {
		fmt.Println("BATCH")
	}
	return nil
}

func TestPurgeKilledAndResumed(t *testing.T) {
	const n, liveEvery = 200_000, 50
	b, pool := open(t)
	load(t, pool, n, liveEvery)
	liveN, liveD := liveDigest(t, pool)
	dsn := pool.Config().ConnString()

	cmd := exec.Command(os.Args[0], "-test.run=^TestPurgeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	batches := 0
	for sc.Scan() {
		if sc.Text() == "BATCH" {
			batches++
			if batches == 40 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	werr := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v (after %d batches)", werr, batches)
	}
	left := count(t, pool)
	if batches != 40 || left <= liveN || left >= n {
		t.Fatalf("kill not halfway: %d batches seen, %d of %d rows left", batches, left, n)
	}
	t.Logf("killed after %d batches, %d rows left", batches, left)
	if gotN, gotD := liveDigest(t, pool); gotN != liveN || gotD != liveD {
		t.Fatalf("live rows lost by the killed purge: %d, want %d", gotN, liveN)
	}

	var rec audit.Recorder
	rep, err := newStore(t, b, &rec).Purge(opCtx, retention.PurgeOptions{BatchSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != left-liveN {
		t.Fatalf("rerun deleted %d, want %d", rep.Deleted, left-liveN)
	}
	if gotN, gotD := liveDigest(t, pool); gotN != liveN || gotD != liveD || count(t, pool) != liveN {
		t.Fatalf("after rerun: %d live (want %d), %d rows", gotN, liveN, count(t, pool))
	}
}

// TestPurgeDigestStable checks that a dry run and the real run name the
// same set, and that the digest is the SHA-256 of the sorted keys.
func TestPurgeDigestStable(t *testing.T) {
	b, pool := open(t)
	load(t, pool, 1000, 10)
	s := newStore(t, b, &countingLogger{})
	dry, err := s.Purge(opCtx, retention.PurgeOptions{DryRun: true, BatchSize: 70})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Purge(opCtx, retention.PurgeOptions{BatchSize: 33})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Deleted != 900 || rep.Deleted != 900 || dry.Digest != rep.Digest {
		t.Fatalf("dry %+v\nreal %+v", dry, rep)
	}
	var keys []string
	for i := 0; i < 1000; i++ {
		if i%10 != 0 {
			keys = append(keys, acme+"/"+key(i))
		}
	}
	sort.Strings(keys)
	if want := sha256Lines(keys); rep.Digest != want {
		t.Fatalf("digest %s, want %s", rep.Digest, want)
	}
}

// TestPurgeKeepsHeldAndCorrupt checks that the one-statement purge leaves
// alone, reports and audits every expired row it must not delete: one
// under legal hold, and one per way a record can be corrupt (each also
// refused by Stat, so the SQL check and [retention.Meta.Validate] agree).
func TestPurgeKeepsHeldAndCorrupt(t *testing.T) {
	corrupt := []struct{ name, set string }{
		{"mode", `mode = 'bogus'`},
		{"class", `class = 'Log'`},
		{"class-long", `class = repeat('a', 33)`},
		{"lock-without-mode", `lock_until = created`},
		{"mode-without-lock", `mode = 'governance'`},
		{"lock-after-retain", `mode = 'compliance', lock_until = retain_until + interval '1 second'`},
		{"lock-before-created", `mode = 'compliance', lock_until = created - interval '1 second'`},
		{"retain-before-created", `created = retain_until + interval '1 second'`},
		{"created-zero", `created = '0001-01-01 00:00:00+00'`},
		{"subject-long", `subject = repeat('x', 257)`},
	}
	b, pool := open(t)
	n := len(corrupt) + 10
	load(t, pool, n, 1000) // k0000000 live, the others expired
	ctx := context.Background()
	want := map[string]bool{}
	for i, c := range corrupt {
		k := key(i + 1)
		if _, err := pool.Exec(ctx, `UPDATE retention_tenant_objects SET `+c.set+` WHERE key = $1`, k); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := acmePart(t, b).Stat(ctx, k); !errors.Is(err, retention.ErrCorruptMeta) {
			t.Fatalf("%s: Stat = %v, want ErrCorruptMeta", c.name, err)
		}
		want[acme+"/"+k] = true
	}
	// The tenant is the partition: a malformed one cannot be stored at
	// all, so it can neither be purged nor read in another partition.
	for _, bad := range []string{`repeat('x', 257)`, `'Acme'`, `'../acme'`, `''`} {
		if _, err := pool.Exec(ctx, `UPDATE retention_tenant_objects SET tenant = `+bad+` WHERE key = $1`, key(n-2)); err == nil {
			t.Fatalf("tenant = %s accepted by the table", bad)
		}
	}
	held := key(n - 1)
	if _, err := pool.Exec(ctx, `UPDATE retention_tenant_objects SET legal_hold = true WHERE key = $1`, held); err != nil {
		t.Fatal(err)
	}
	var rec audit.Recorder
	rep, err := newStore(t, b, &rec).Purge(opCtx, retention.PurgeOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Held) != 1 || rep.Held[0] != acme+"/"+held {
		t.Errorf("Held = %v, want [%s]", rep.Held, held)
	}
	if len(rep.Corrupt) != len(corrupt) {
		t.Errorf("Corrupt = %v, want %d keys", rep.Corrupt, len(corrupt))
	}
	for _, k := range rep.Corrupt {
		if !want[k] {
			t.Errorf("%s reported corrupt", k)
		}
	}
	if rep.Deleted != n-1-len(corrupt)-1 || rep.Expired != n-1 || rep.Skipped != 0 {
		t.Errorf("report %+v", rep)
	}
	if got := count(t, pool); got != 1+len(corrupt)+1 {
		t.Errorf("%d rows left, want %d", got, 1+len(corrupt)+1)
	}
	events := map[string]int{}
	for _, e := range rec.Events() {
		events[e.Action]++
	}
	if events["retention.purge.corrupt"] != len(corrupt) || events["retention.purge.held"] != 1 ||
		events["retention.purge"] != 1 || events["retention.purge.batch"] != rep.Batches {
		t.Errorf("events %v, batches %d", events, rep.Batches)
	}
}
