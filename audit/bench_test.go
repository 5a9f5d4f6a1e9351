package audit_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/note"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if verifyBench.dir != "" {
		os.RemoveAll(verifyBench.dir)
	}
	os.Exit(code)
}

// benchEvent is a typical event: about 300 bytes encoded.
func benchEvent(i int64) audit.Event {
	return audit.Event{
		Time:      time.Date(2026, 11, 22, 10, 0, 0, int(i), time.UTC),
		Actor:     audit.Actor{Subject: "svc-billing@acme.example", Tenant: "acme"},
		Action:    "rbac.decide",
		Resource:  fmt.Sprintf("/tenants/acme/invoices/%d", i),
		Outcome:   audit.OutcomeAllow,
		Severity:  audit.SeverityInfo,
		RequestID: "req-8f14e45fceea167a5a36dedd4bea2543",
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:    "00f067aa0ba902b7",
		Attributes: []audit.Attr{
			audit.String("role", "invoice-reader"),
			audit.String("policy", "p, invoice-reader, /tenants/acme/invoices/*, read"),
		},
	}
}

const benchLoggers = 64

// BenchmarkLogDurable: 64 concurrent loggers, each Log durable (fsync)
// before it returns. Compare with BenchmarkLogDurableBaseline.
func BenchmarkLogDurable(b *testing.B) {
	k := newKeys(b, "bench.example/log")
	l := openLog(b, b.TempDir(), k, audit.FileConfig{})
	defer l.Close()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < benchLoggers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := l.Log(ctx, benchEvent(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkLogDurableBaseline: plain JSON lines appended to one file with
// one fsync per 64 events, no tree, no framing, no signatures.
func BenchmarkLogDurableBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "plain.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		e, _ := benchEvent(int64(i)).Normalize(context.Background())
		line, _ := json.Marshal(e)
		if _, err := f.Write(append(line, '\n')); err != nil {
			b.Fatal(err)
		}
		if i%benchLoggers == benchLoggers-1 {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	f.Sync()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

const verifyBenchEvents = 1_000_000

var verifyBench struct {
	once  sync.Once
	dir   string
	keys  testKeys
	bytes int64
	data  [][]byte
	err   error
}

// setupVerifyBench writes a 1,000,000-event log directly in the on-disk
// format (much faster than logging it), once per process, and only when
// a Verify benchmark runs.
func setupVerifyBench(b *testing.B) {
	vb := &verifyBench
	vb.once.Do(func() {
		vb.keys = newKeys(b, "bench.example/log")
		vb.dir, vb.err = os.MkdirTemp("", "audit-verify-bench")
		if vb.err != nil {
			return
		}
		tree := merkle.New(false)
		var f *os.File
		var w *bufio.Writer
		var buf []byte
		for i := int64(0); i < verifyBenchEvents; i++ {
			if i%100_000 == 0 {
				if f != nil {
					w.Flush()
					f.Close()
				}
				f, vb.err = os.Create(filepath.Join(vb.dir, logfmt.SegmentName(i)))
				if vb.err != nil {
					return
				}
				w = bufio.NewWriterSize(f, 1<<20)
			}
			p, err := benchEvent(i).Marshal()
			if err != nil {
				vb.err = err
				return
			}
			buf = frame.Append(buf[:0], uint64(i), p)
			w.Write(buf)
			vb.bytes += int64(len(buf))
			tree.Append(p)
		}
		w.Flush()
		f.Close()
		root, _ := tree.Root()
		var cps []byte
		for seq, size := range []int64{0, verifyBenchEvents} {
			r := root
			if size == 0 {
				r, _ = merkle.New(false).Root()
			}
			ns, err := note.NewSigner(vb.keys.skey)
			if err != nil {
				vb.err = err
				return
			}
			msg, err := logfmt.SignCheckpoint(ns, size, r, time.Now())
			if err != nil {
				vb.err = err
				return
			}
			cps = frame.Append(cps, uint64(seq), msg)
		}
		vb.err = os.WriteFile(filepath.Join(vb.dir, logfmt.CheckpointsName), cps, 0o600)
		segs, _ := logfmt.ListSegments(os.DirFS(vb.dir))
		for _, s := range segs {
			d, _ := os.ReadFile(filepath.Join(vb.dir, s.Name))
			vb.data = append(vb.data, d)
		}
	})
	if verifyBench.err != nil {
		b.Fatal(verifyBench.err)
	}
}

// BenchmarkVerify verifies a 1,000,000-event log held in memory, like the
// bytes BenchmarkVerifyBaselineSHA256 hashes. BenchmarkVerifyFiles reads
// the same log from files in the page cache.
func BenchmarkVerify(b *testing.B) {
	setupVerifyBench(b)
	mem := fstest.MapFS{}
	ents, _ := os.ReadDir(verifyBench.dir)
	for _, e := range ents {
		d, _ := os.ReadFile(filepath.Join(verifyBench.dir, e.Name()))
		mem[e.Name()] = &fstest.MapFile{Data: d}
	}
	benchVerify(b, func() (audit.Report, error) {
		return audit.VerifyFS(context.Background(), mem, verifyBench.keys.verifier)
	})
}

func BenchmarkVerifyFiles(b *testing.B) {
	setupVerifyBench(b)
	benchVerify(b, func() (audit.Report, error) {
		return audit.Verify(context.Background(), verifyBench.dir, verifyBench.keys.verifier)
	})
}

func benchVerify(b *testing.B, verify func() (audit.Report, error)) {
	b.SetBytes(verifyBench.bytes)
	b.ResetTimer()
	var shaTime time.Duration
	for i := 0; i < b.N; i++ {
		rep, err := verify()
		if err != nil || rep.Size != verifyBenchEvents {
			b.Fatalf("%+v %v", rep, err)
		}
		// On a noisy machine, also time the baseline right after each
		// pass and report the throughput ratio from the same moments.
		b.StopTimer()
		t0 := time.Now()
		shaOnce()
		shaTime += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(verifyBenchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(shaTime.Seconds()/b.Elapsed().Seconds(), "x-sha256")
}

func shaOnce() {
	h := sha256.New()
	for _, d := range verifyBench.data {
		h.Write(d)
	}
	h.Sum(nil)
}

// BenchmarkVerifyBaselineSHA256 hashes the same segment bytes with one
// SHA-256.
func BenchmarkVerifyBaselineSHA256(b *testing.B) {
	setupVerifyBench(b)
	b.SetBytes(verifyBench.bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		shaOnce()
	}
	b.ReportMetric(float64(verifyBenchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
