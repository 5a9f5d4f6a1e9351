package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"net"
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
// that group, so both servers negotiate it.
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
	for _, group := range []tls.CurveID{tls.X25519, tls.X25519MLKEM768} {
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
