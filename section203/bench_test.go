package section203_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
)

// BenchmarkDecision measures one guard decision, recorded by a Logger that
// does nothing (the decision's own cost) and by one that normalises and
// encodes every event like a real sink, then drops it (the least any sink
// costs). The baseline is the bare lookup the guard wraps: a map access on
// the tool list.
func BenchmarkDecision(b *testing.B) {
	ctxFor := func(log audit.Logger) (*section203.Guard, context.Context) {
		g, modes := newGuard(b, log)
		return g, bound(modes, "kanzlei")
	}
	b.Run("baseline=map-lookup", func(b *testing.B) {
		tools := map[string]section203.ToolKind{}
		for _, t := range testTools {
			tools[t.Name] = t.Kind
		}
		ok := 0
		loopCPU(b, func() {
			if tools["web_search"] == section203.ToolLocal {
				ok++
			}
		})
		_ = ok
	})
	for _, sink := range []struct {
		name string
		log  func() audit.Logger
	}{
		{"nop", func() audit.Logger { return nopLogger{} }},
		{"encode", func() audit.Logger { return encodeLogger{} }},
	} {
		b.Run("tool/"+sink.name, func(b *testing.B) {
			g, ctx := ctxFor(sink.log())
			b.ReportAllocs()
			loopCPU(b, func() { _, _ = g.Tool(ctx, "web_search") })
		})
		b.Run("model/"+sink.name, func(b *testing.B) {
			g, ctx := ctxFor(sink.log())
			b.ReportAllocs()
			loopCPU(b, func() {
				if _, err := g.Model(ctx, "mistral", "large", "https://api.eu.example.com/v1"); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("access/"+sink.name, func(b *testing.B) {
			g, ctx := ctxFor(sink.log())
			b.ReportAllocs()
			loopCPU(b, func() {
				if _, err := g.Access(ctx, section203.KnowledgeBase, "kanzlei", "doc-1"); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("egress/"+sink.name, func(b *testing.B) {
			g, ctx := ctxFor(sink.log())
			tr := g.Transport(nil)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://eu.example.com/v1/chat", nil)
			b.ReportAllocs()
			loopCPU(b, func() {
				if err := tr.CheckRedirect(req, nil); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// encodeLogger normalises and encodes each event, as every sink must, and
// keeps nothing.
type encodeLogger struct{}

func (encodeLogger) Log(ctx context.Context, e audit.Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	_, err = e.Marshal()
	return err
}

// BenchmarkRoundTrip measures a keep-alive HTTPS request over loopback to
// one server, through the plain transport (the baseline) and through the
// guarded copy of the same transport.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	target := srv.Listener.Addr().String()
	newBase := func() *http.Transport {
		return &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, target)
			},
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 4,
		}
	}
	run := func(b *testing.B, rt http.RoundTripper, ctx context.Context) {
		c := &http.Client{Transport: rt}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://eu.example.com/ok", nil)
		do := func() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		do() // open the connection outside the timed loop
		loopCPU(b, do)
		c.CloseIdleConnections()
	}
	// interleaved alternates one unguarded and one guarded request on two
	// keep-alive connections to the same server, so that load from other
	// processes hits both alike, and reports their ratio.
	b.Run("interleaved", func(b *testing.B) {
		g, err := section203.New(section203.Config{Logger: nopLogger{}, Egress: section203.EgressConfig{Allow: []string{"eu.example.com"}}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := bound(mustModes(b, nopLogger{}, nil), "kanzlei")
		plain, guarded := &http.Client{Transport: newBase()}, &http.Client{Transport: g.Transport(newBase())}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://eu.example.com/ok", nil)
		var cpuPlain, cpuGuarded time.Duration
		do := func(c *http.Client) time.Duration {
			cpu := cpuTime()
			defer func() {
				if c == plain {
					cpuPlain += cpuTime() - cpu
				} else {
					cpuGuarded += cpuTime() - cpu
				}
			}()
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return time.Since(start)
		}
		do(plain)
		do(guarded)
		cpuPlain, cpuGuarded = 0, 0
		// Medians, not means: a request that waited for a CPU another
		// process held says nothing about the guard.
		var tp, tg []time.Duration
		n := 0
		for b.Loop() {
			if n%2 == 0 {
				tp = append(tp, do(plain))
				tg = append(tg, do(guarded))
			} else {
				tg = append(tg, do(guarded))
				tp = append(tp, do(plain))
			}
			n++
		}
		mp, mg := median(tp), median(tg)
		b.ReportMetric(float64(mp.Nanoseconds()), "unguarded-median-ns")
		b.ReportMetric(float64(mg.Nanoseconds()), "guarded-median-ns")
		b.ReportMetric(100*(float64(mg)/float64(mp)-1), "overhead-%")
		b.ReportMetric(100*(float64(cpuGuarded)/float64(cpuPlain)-1), "cpu-overhead-%")
		plain.CloseIdleConnections()
		guarded.CloseIdleConnections()
	})
	b.Run("baseline=unguarded", func(b *testing.B) {
		var rec audit.Recorder
		run(b, newBase(), bound(mustModes(b, &rec, nil), "kanzlei"))
	})
	for _, sink := range []struct {
		name string
		log  audit.Logger
	}{{"nop", nopLogger{}}, {"encode", encodeLogger{}}} {
		b.Run("guarded/"+sink.name, func(b *testing.B) {
			g, err := section203.New(section203.Config{Logger: sink.log, Egress: section203.EgressConfig{Allow: []string{"eu.example.com"}}})
			if err != nil {
				b.Fatal(err)
			}
			run(b, g.Transport(newBase()), bound(mustModes(b, sink.log, nil), "kanzlei"))
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// cpuTime returns the CPU time, user and system, this process has used.
// Unlike wall time it does not grow while other processes hold the CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs f in the benchmark loop and reports the process CPU time
// per iteration beside the wall time.
func loopCPU(b *testing.B, f func()) {
	start, n := cpuTime(), 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
}
