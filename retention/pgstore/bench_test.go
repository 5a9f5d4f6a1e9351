package pgstore_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention"
)

func p99(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)*99/100]
}

// BenchmarkPurge loads 200,000 expired rows (and 4,000 live ones), measures
// the p99 latency of reads of live rows while idle (before and after the
// purge), then purges while one reader keeps reading, and reports the
// purge rate and both p99 figures, with the default batch size and two
// explicit ones. Targets: rows/s >= 50,000 and
// p99_ratio <= 2.
func BenchmarkPurge(b *testing.B) {
	for _, bs := range []int{0, 1000, 5000} {
		name := fmt.Sprintf("batch=%d", bs)
		if bs == 0 {
			name = "batch=default"
		}
		b.Run(name, func(b *testing.B) { benchPurge(b, bs) })
	}
}

func benchPurge(b *testing.B, batchSize int) {
	const n, liveEvery = 200_000, 50
	be, pool := open(b)
	s := newStore(b, be, &countingLogger{})
	ctx := context.Background()
	read := func(rng *rand.Rand) time.Duration {
		i := rng.IntN(n/liveEvery) * liveEvery
		start := time.Now()
		rc, _, err := s.Get(asAcme, key(i))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
		return time.Since(start)
	}
	var rows, secs float64
	var idle, busy []time.Duration
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		if _, err := pool.Exec(ctx, `TRUNCATE retention_tenant_objects`); err != nil {
			b.Fatal(err)
		}
		load(b, pool, n, liveEvery)
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE retention_tenant_objects`); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, uint64(it)))
		for range 500 { // warm up
			read(rng)
		}
		for range 3000 {
			idle = append(idle, read(rng))
		}
		b.StartTimer()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(2, uint64(it)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				busy = append(busy, read(rng))
			}
		}()
		start := time.Now()
		rep, err := s.Purge(opCtx, retention.PurgeOptions{BatchSize: batchSize})
		el := time.Since(start)
		close(stop)
		wg.Wait()
		if err != nil || rep.Deleted != n-n/liveEvery {
			b.Fatalf("purge %+v %v", rep, err)
		}
		rows += float64(rep.Deleted)
		secs += el.Seconds()
		// Idle again after the purge, so that drift in the machine's load
		// hits both figures alike.
		b.StopTimer()
		for range 3000 {
			idle = append(idle, read(rng))
		}
		b.StartTimer()
	}
	pi, pb := p99(idle), p99(busy)
	b.ReportMetric(rows/secs, "rows/s")
	b.ReportMetric(float64(pi.Microseconds()), "p99_idle_us")
	b.ReportMetric(float64(pb.Microseconds()), "p99_purge_us")
	b.ReportMetric(float64(pb)/float64(pi), "p99_ratio")
	b.ReportMetric(float64(len(busy)), "reads_during")
}
