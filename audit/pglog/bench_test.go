package pglog_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
)

// pgBenchWriters is the number of concurrent writers of
// BenchmarkLogPostgres, whatever GOMAXPROCS is.
const pgBenchWriters = 16

// BenchmarkLogPostgres compares pglog.Log.Log (impl=tomkit) with the
// floor of a durable, ordered append in PostgreSQL without tomkit
// (impl=baseline): one transaction per event that locks a single-row
// counter FOR UPDATE, inserts (idx, bytes), updates the counter and
// commits. Both run about 16 concurrent writers and report events/s.
// It needs TOMKIT_TEST_POSTGRES_DSN and is skipped without it.
func BenchmarkLogPostgres(b *testing.B) {
	b.Run("impl=tomkit", func(b *testing.B) {
		dsn := testpg.Schema(b)
		k := newKeys(b, "bench.example/log")
		l, err := openDSN(context.Background(), b, dsn, pglog.Config{Signer: k.signer, Clock: testclock.New(nil, nil)})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var next atomic.Int64
		runPGBench(b, func(ctx context.Context) error {
			return l.Log(ctx, benchEvent(next.Add(1)))
		})
	})
	b.Run("impl=baseline", func(b *testing.B) {
		dsn := testpg.Schema(b)
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, `
			CREATE TABLE bench_head (one boolean PRIMARY KEY CHECK (one), size bigint NOT NULL);
			CREATE TABLE bench_records (idx bigint PRIMARY KEY, event bytea NOT NULL);
			INSERT INTO bench_head VALUES (true, 0)`); err != nil {
			b.Fatal(err)
		}
		ev := []byte(fmt.Sprintf("%300s", "x")) // the size of benchEvent encoded
		runPGBench(b, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var n int64
				if err := tx.QueryRow(ctx, `SELECT size FROM bench_head WHERE one FOR UPDATE`).Scan(&n); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO bench_records (idx, event) VALUES ($1, $2)`, n, ev); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE bench_head SET size = $1 WHERE one`, n+1)
				return err
			})
		})
	})
}

// runPGBench calls logOne b.N times from about pgBenchWriters goroutines
// and reports events/s.
func runPGBench(b *testing.B, logOne func(context.Context) error) {
	// RunParallel starts parallelism x GOMAXPROCS goroutines.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((pgBenchWriters + procs - 1) / procs)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := logOne(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
