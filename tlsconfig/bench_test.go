package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tomkit/tomkit/tlsconfig"
)

// BenchmarkHandshake measures one full TLS 1.3 handshake (no resumption:
// the client has no session cache), client and server side together, over
// an in-memory pipe so that only TLS work is timed. It compares
// tlsconfig.Server against Go's default tls.Config with the same ECDSA
// P-256 certificate, for each key-exchange group; the client offers only
// that group, so both servers negotiate it. The server=paired sub-benchmark
// alternates the two servers in one loop and reports the median time ratio
// default/tomkit (target at most 1/0.95, i.e. tomkit at least 95% as fast),
// which holds up better than separate runs on a loaded machine;
// group=paired/server=tomkit does the same for X25519MLKEM768 against
// X25519.
//
//	go test -run '^$' -bench BenchmarkHandshake -count 10 ./tlsconfig | benchstat -col /server -
//
// Besides wall time it reports cpu-ns/op, the process CPU time per
// handshake, which is the steadier figure on a shared machine.
func BenchmarkHandshake(b *testing.B) {
	ca := newCA(b, "bench ca")
	cert := ca.leaf(b, leafOpts{}).cert
	tomkit, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		b.Fatal(err)
	}
	servers := []struct {
		name string
		conf *tls.Config
	}{
		{"tomkit", tomkit},
		{"default", &tls.Config{Certificates: []tls.Certificate{cert}}},
	}
	// The post-quantum hybrid's cost over X25519, both against tlsconfig.
	b.Run("group=paired/server=tomkit", func(b *testing.B) {
		x := &tls.Config{RootCAs: ca.pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}}
		pq := &tls.Config{RootCAs: ca.pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}}
		benchPaired(b,
			"X25519", func() { handshake(b, tomkit, x) },
			"X25519MLKEM768", func() { handshake(b, tomkit, pq) })
	})
	for _, group := range []tls.CurveID{tls.X25519, tls.X25519MLKEM768} {
		cc := &tls.Config{RootCAs: ca.pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{group}}
		b.Run("group="+group.String()+"/server=paired", func(b *testing.B) {
			benchPaired(b,
				"tomkit", func() { handshake(b, tomkit, cc) },
				"default", func() { handshake(b, servers[1].conf, cc) })
		})
		for _, s := range servers {
			b.Run("group="+group.String()+"/server="+s.name, func(b *testing.B) {
				cc := &tls.Config{RootCAs: ca.pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{group}}
				if cs := handshake(b, s.conf, cc); cs.CurveID != group || cs.DidResume || cs.Version != tls.VersionTLS13 {
					b.Fatalf("negotiated %s %s resumed=%v, want TLS 1.3 %s", tls.VersionName(cs.Version), cs.CurveID, cs.DidResume, group)
				}
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for b.Loop() {
					handshake(b, s.conf, cc)
				}
				// Process CPU time per handshake: on a loaded machine it
				// varies much less than wall time, which includes waiting
				// for a core.
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// benchPaired alternates two handshakes, a and b, in one loop, so that load
// from other processes hits both alike. It reports the median time of each
// (as nameA-ns/op and nameB-ns/op) and the median of the per-pair time
// ratios b/a (as nameB/nameA-time: 1.0 means equal cost; above 1, b is
// slower). Medians, because a loaded machine adds rare stalls of many
// milliseconds that would dominate a mean.
func benchPaired(b *testing.B, nameA string, fa func(), nameB string, fb func()) {
	var ta, tb, ratio []float64
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, against warm-cache bias.
		first, second := fa, fb
		if i%2 == 1 {
			first, second = fb, fa
		}
		t0 := time.Now()
		first()
		t1 := time.Now()
		second()
		t2 := time.Now()
		da, db := t1.Sub(t0), t2.Sub(t1)
		if i%2 == 1 {
			da, db = db, da
		}
		ta = append(ta, float64(da))
		tb = append(tb, float64(db))
		ratio = append(ratio, float64(db)/float64(da))
	}
	b.ReportMetric(median(ta), nameA+"-ns/op")
	b.ReportMetric(median(tb), nameB+"-ns/op")
	b.ReportMetric(median(ratio), nameB+"/"+nameA+"-time")
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	slices.Sort(x)
	return x[len(x)/2]
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// handshake runs one handshake between a server with sc and a client with
// cc, reads until the server closes (so that a server sending session
// tickets pays for them), and returns the client's connection state.
func handshake(b *testing.B, sc, cc *tls.Config) tls.ConnectionState {
	c1, c2 := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(c1, sc)
		err := s.Handshake()
		s.Close()
		errc <- err
	}()
	c := tls.Client(c2, cc)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, c)
	c.Close()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return c.ConnectionState()
}
