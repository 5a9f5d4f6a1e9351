package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/pgstore"
)

type nopLogger struct{}

func (nopLogger) Log(context.Context, audit.Event) error { return nil }

// BenchmarkOverhead compares the Store wrapper against the raw backend it
// wraps, for writes and reads of 4 KiB objects, on the filesystem and the
// in-memory blob backends. Target: wrapper/raw <= 1.1.
func BenchmarkOverhead(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 4<<10)
	backends := map[string]func(b *testing.B) retention.Backend{
		"fs": func(b *testing.B) retention.Backend {
			s, err := fsstore.Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"mem": func(b *testing.B) retention.Backend {
			bk := memblob.OpenBucket(nil)
			b.Cleanup(func() { bk.Close() })
			return openBlob(b, bk)
		},
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	meta := retention.Meta{Class: retention.ClassLog, Created: now, RetainUntil: now.Add(day), Tenant: "acme", Subject: "alice"}
	for _, name := range []string{"fs", "mem"} {
		for _, layer := range []string{"raw", "store"} {
			setup := func(b *testing.B) (put func(k string) error, get func(k string) error) {
				be := backends[name](b)
				if layer == "raw" {
					be, err := be.Partition("acme")
					if err != nil {
						b.Fatal(err)
					}
					return func(k string) error { return be.Put(userCtx, k, bytes.NewReader(payload), meta) },
						func(k string) error {
							rc, _, err := be.Get(userCtx, k)
							if err != nil {
								return err
							}
							_, err = io.Copy(io.Discard, rc)
							rc.Close()
							return err
						}
				}
				s, err := retention.New(be, retention.Config{Logger: nopLogger{}, Clock: audit.ClockFunc(func() time.Time { return now })})
				if err != nil {
					b.Fatal(err)
				}
				return func(k string) error {
						_, err := s.Put(userCtx, k, bytes.NewReader(payload), retention.PutOptions{Class: retention.ClassLog})
						return err
					}, func(k string) error {
						rc, _, err := s.Get(userCtx, k)
						if err != nil {
							return err
						}
						_, err = io.Copy(io.Discard, rc)
						rc.Close()
						return err
					}
			}
			b.Run(fmt.Sprintf("write/%s/%s", name, layer), func(b *testing.B) {
				put, _ := setup(b)
				b.SetBytes(int64(len(payload)))
				for i := 0; b.Loop(); i++ {
					if err := put(fmt.Sprintf("k%d", i%256)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("read/%s/%s", name, layer), func(b *testing.B) {
				put, get := setup(b)
				for i := 0; i < 256; i++ {
					if err := put(fmt.Sprintf("k%d", i)); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(len(payload)))
				for i := 0; b.Loop(); i++ {
					if err := get(fmt.Sprintf("k%d", i%256)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOverheadPaired runs the backend alone (the tenant's partition,
// taken once) and the tenant-scoped Store (tenant from the ctx actor,
// checked, and its partition taken on every call) in lockstep
// (filesystem, in-memory blob, and PostgreSQL when
// TOMKIT_TEST_POSTGRES_DSN is set), alternating which goes first, and
// reports the ratio of their median times: on a noisy machine this is
// steadier than comparing two separate benchmarks. The tenants/16 cases
// spread the keys over sixteen tenants, each call acting for the next.
// Target: ratio <= 1.1.
func BenchmarkOverheadPaired(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 4<<10)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, op := range []string{"write", "read"} {
		for _, name := range []string{"fs", "mem", "pg"} {
			for _, nt := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/tenants=%d", op, name, nt), func(b *testing.B) { pairedOverhead(b, op, name, nt, payload, now) })
			}
		}
	}
}

func pairedOverhead(b *testing.B, op, name string, nt int, payload []byte, now time.Time) {
	{
		{
			{
				open := func() retention.Backend {
					if name == "pg" {
						pool, err := pgxpool.New(context.Background(), testpg.Schema(b))
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(pool.Close)
						s, err := pgstore.Open(context.Background(), pool)
						if err != nil {
							b.Fatal(err)
						}
						return s
					}
					if name == "fs" {
						s, err := fsstore.Open(context.Background(), b.TempDir())
						if err != nil {
							b.Fatal(err)
						}
						return s
					}
					bk := memblob.OpenBucket(nil)
					b.Cleanup(func() { bk.Close() })
					return openBlob(b, bk)
				}
				rawBackend := open()
				s, err := retention.New(open(), retention.Config{Logger: nopLogger{}, Clock: audit.ClockFunc(func() time.Time { return now })})
				if err != nil {
					b.Fatal(err)
				}
				// Key i belongs to tenant i % nt: raws[i%nt] is its
				// partition, ctxs[i%nt] a ctx acting for it.
				raws := make([]retention.Partition, nt)
				ctxs := make([]context.Context, nt)
				metas := make([]retention.Meta, nt)
				for t := range nt {
					tenant := fmt.Sprintf("tenant-%02d", t)
					if raws[t], err = rawBackend.Partition(tenant); err != nil {
						b.Fatal(err)
					}
					ctxs[t] = audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: tenant})
					metas[t] = retention.Meta{Class: retention.ClassLog, Created: now, RetainUntil: now.Add(day), Tenant: tenant, Subject: "alice"}
				}
				keys := make([]string, 256)
				for i := range keys {
					keys[i] = fmt.Sprintf("k%d", i)
					if op == "read" {
						if err := raws[i%nt].Put(ctxs[i%nt], keys[i], bytes.NewReader(payload), metas[i%nt]); err != nil {
							b.Fatal(err)
						}
						if _, err := s.Put(ctxs[i%nt], keys[i], bytes.NewReader(payload), retention.PutOptions{Class: retention.ClassLog}); err != nil {
							b.Fatal(err)
						}
					}
				}
				rawOp := func(i int) {
					k, raw := keys[i], raws[i%nt]
					if op == "write" {
						if err := raw.Put(ctxs[i%nt], k, bytes.NewReader(payload), metas[i%nt]); err != nil {
							b.Fatal(err)
						}
						return
					}
					rc, _, err := raw.Get(ctxs[i%nt], k)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				storeOp := func(i int) {
					k, ctx := keys[i], ctxs[i%nt]
					if op == "write" {
						if _, err := s.Put(ctx, k, bytes.NewReader(payload), retention.PutOptions{Class: retention.ClassLog}); err != nil {
							b.Fatal(err)
						}
						return
					}
					rc, _, err := s.Get(ctx, k)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				var dRaw, dStore []time.Duration
				for i := 0; b.Loop(); i++ {
					k := i % len(keys)
					if i%2 == 0 {
						t0 := time.Now()
						rawOp(k)
						t1 := time.Now()
						storeOp(k)
						dRaw = append(dRaw, t1.Sub(t0))
						dStore = append(dStore, time.Since(t1))
					} else {
						t0 := time.Now()
						storeOp(k)
						t1 := time.Now()
						rawOp(k)
						dStore = append(dStore, t1.Sub(t0))
						dRaw = append(dRaw, time.Since(t1))
					}
				}
				// Medians: on a shared machine the means are dominated by
				// scheduling outliers that hit either side at random.
				mr, ms := median(dRaw), median(dStore)
				b.ReportMetric(float64(ms)/float64(mr), "ratio")
				b.ReportMetric(float64(mr), "raw_ns/op")
				b.ReportMetric(float64(ms), "store_ns/op")
			}
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// nullBackend does nothing, so that BenchmarkWrapperCost measures the
// wrapper's own work.
type nullBackend struct{ p nullPartition }

func (n nullBackend) Partition(string) (retention.Partition, error) { return n.p, nil }

func (n nullBackend) Unpartitioned() retention.Partition { return n.p }

func (n nullBackend) Tenants(context.Context, string, int) ([]string, error) { return nil, nil }

type nullPartition struct {
	retention.Partition
	m retention.Meta
}

func (n nullPartition) List(context.Context, string, int) ([]retention.Entry, error) { return nil, nil }

func (n nullPartition) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (n nullPartition) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	return io.NopCloser(strings.NewReader("")), n.m, nil
}

// BenchmarkWrapperCost is the absolute time the wrapper adds to a Put and a
// Get, measured over a backend that does nothing.
func BenchmarkWrapperCost(b *testing.B) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	nb := nullBackend{nullPartition{m: retention.Meta{Class: retention.ClassLog, Created: now, RetainUntil: now.Add(day), Tenant: "acme"}}}
	s, err := retention.New(nb, retention.Config{Logger: nopLogger{}, Clock: audit.ClockFunc(func() time.Time { return now })})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Put(userCtx, "key", strings.NewReader(""), retention.PutOptions{Class: retention.ClassLog}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rc, _, err := s.Get(userCtx, "key")
			if err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
}
