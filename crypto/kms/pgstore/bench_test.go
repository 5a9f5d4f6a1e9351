package pgstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// BenchmarkKeyring compares key use through a keyring in PostgreSQL with
// the file keyring, in one run: the KEK alone, and 1 KiB messages through
// envelope with its DEK cache. Key use never touches the database but to
// reserve a block of wrap counts.
func BenchmarkKeyring(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b)
	file, err := kms.Create(ctx, filepath.Join(b.TempDir(), "keyring.json"), c.cfg)
	if err != nil {
		b.Fatal(err)
	}
	rings := []struct {
		name string
		r    *kms.Keyring
	}{{"file", file}, {"postgres", c.open()}}
	msg := make([]byte, 1<<10)
	dek := make([]byte, 32)
	type setup struct {
		name string
		kek  *kms.LocalKEK
		id   kms.KeyID
		w    []byte
		ct   []byte
		e    *envelope.Envelope
	}
	var sets []setup
	for _, k := range rings {
		if err := k.r.Create(ctx, scope); err != nil {
			b.Fatal(err)
		}
		st := setup{name: k.name, kek: k.r.KEK(scope), e: cachedEnvelope(b, k.r, scope)}
		if st.id, st.w, err = st.kek.Wrap(ctx, nil, dek, []byte("ad")); err != nil {
			b.Fatal(err)
		}
		if st.ct, err = st.e.Seal(ctx, nil, msg, ec); err != nil {
			b.Fatal(err)
		}
		sets = append(sets, st)
	}
	// Each operation on both keyrings in turn, so that both see the same
	// load on a shared machine; cpu-ns/op is the steadier figure.
	for _, st := range sets {
		b.Run("wrap/"+st.name, func(b *testing.B) {
			defer cpuMetric(b)()
			buf := make([]byte, 0, 64)
			for b.Loop() {
				if _, _, err := st.kek.Wrap(ctx, buf[:0], dek, []byte("ad")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, st := range sets {
		b.Run("unwrap/"+st.name, func(b *testing.B) {
			defer cpuMetric(b)()
			buf := make([]byte, 0, 64)
			for b.Loop() {
				if _, err := st.kek.Unwrap(ctx, buf[:0], st.id, st.w, []byte("ad")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, st := range sets {
		b.Run("seal-cached-1KiB/"+st.name, func(b *testing.B) {
			defer cpuMetric(b)()
			b.SetBytes(int64(len(msg)))
			buf := make([]byte, 0, 2<<10)
			for b.Loop() {
				if _, err := st.e.Seal(ctx, buf[:0], msg, ec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, st := range sets {
		b.Run("open-cached-1KiB/"+st.name, func(b *testing.B) {
			defer cpuMetric(b)()
			b.SetBytes(int64(len(msg)))
			buf := make([]byte, 0, 2<<10)
			for b.Loop() {
				if _, err := st.e.Open(ctx, buf[:0], st.ct, ec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// cpuMetric reports the process CPU time per operation as "cpu-ns/op"
// (see crypto/envelope's benchmarks): steadier than wall time on a shared
// machine.
func cpuMetric(b *testing.B) func() {
	start := cpuNow()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkShredPropagation shreds a scope on one of three instances
// while the other two check the key in a loop, and reports how long Shred
// took and when the last other instance first refused the key, relative
// to Shred's return (negative: before it returned; a positive figure is
// the polling goroutine's scheduling delay, as it fails if any instance
// accepted the key after Shred returned).
func BenchmarkShredPropagation(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b)
	a, others := c.open(), []*kms.Keyring{c.open(), c.open()}
	var shred, after []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		s := audit.Actor{Tenant: fmt.Sprint("t", i)}
		i++
		if err := a.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
		var refused, lastOK [2]atomic.Int64
		var stop atomic.Bool
		done := make(chan struct{}, len(others))
		for j, r := range others {
			kek := r.KEK(s)
			id, _, err := kek.Wrap(ctx, nil, make([]byte, 32), nil)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				defer func() { done <- struct{}{} }()
				for !stop.Load() {
					t := time.Now().UnixNano()
					if kek.Usable(id, time.Now()) != nil {
						refused[j].Store(t)
						return
					}
					lastOK[j].Store(t)
					runtime.Gosched() // two cores: let the listeners run
				}
			}()
		}
		b.StartTimer()
		t0 := time.Now()
		if err := a.Shred(ctx, s); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		b.StopTimer()
		for range others {
			<-done
		}
		stop.Store(true)
		last := max(refused[0].Load(), refused[1].Load())
		if refused[0].Load() == 0 || refused[1].Load() == 0 {
			b.Fatal("an instance never refused the shredded key")
		}
		if ok := max(lastOK[0].Load(), lastOK[1].Load()); ok >= t1.UnixNano() {
			b.Fatalf("an instance used the key %v after Shred returned", time.Duration(ok-t1.UnixNano()))
		}
		shred = append(shred, t1.Sub(t0))
		after = append(after, time.Duration(last-t1.UnixNano()))
		b.StartTimer()
	}
	slices.Sort(shred)
	slices.Sort(after)
	b.ReportMetric(float64(shred[len(shred)/2].Microseconds())/1e3, "shred-ms-p50")
	b.ReportMetric(float64(shred[len(shred)-1].Microseconds())/1e3, "shred-ms-max")
	b.ReportMetric(float64(after[len(after)/2].Microseconds())/1e3, "last-refusal-after-return-ms-p50")
	b.ReportMetric(float64(after[len(after)-1].Microseconds())/1e3, "last-refusal-after-return-ms-max")
}
