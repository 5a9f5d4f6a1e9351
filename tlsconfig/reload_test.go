package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tlsconfig"
)

// clock is a settable clock: tests advance it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// errSink collects OnReloadError calls.
type errSink struct {
	mu   sync.Mutex
	errs []error
}

func (s *errSink) add(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *errSink) all() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// reloadServer starts a server on certFile/keyFile and returns a function
// that reports the common name of the certificate it serves.
func reloadServer(t *testing.T, ca *ca, certFile, keyFile string, clk *clock, rec *audit.Recorder, sink *errSink) func() string {
	t.Helper()
	sc, err := tlsconfig.Server(tlsconfig.Config{
		CertFile:      certFile,
		KeyFile:       keyFile,
		Clock:         audit.ClockFunc(clk.Now),
		Logger:        rec,
		OnReloadError: sink.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	return func() string {
		t.Helper()
		cs, err := dial(addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return cs.PeerCertificates[0].Subject.CommonName
	}
}

func TestHotReload(t *testing.T) {
	ca := newCA(t, "test ca")
	a, b, c := ca.leaf(t, leafOpts{cn: "a"}), ca.leaf(t, leafOpts{cn: "b"}), ca.leaf(t, leafOpts{cn: "c"})
	expired := ca.leaf(t, leafOpts{cn: "expired", notAfter: time.Now().Add(-time.Hour)})
	weak := ca.leaf(t, leafOpts{cn: "weak", rsaBits: 1024})

	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, a)
	clk := newClock()
	var rec audit.Recorder
	var sink errSink
	served := reloadServer(t, ca, certFile, keyFile, clk, &rec, &sink)

	if got := served(); got != "a" {
		t.Fatalf("serving %q, want a", got)
	}
	writePair(t, dir, b)
	if got := served(); got != "a" {
		t.Fatalf("reloaded before the interval passed: serving %q", got)
	}
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "b" {
		t.Fatalf("after rotation serving %q, want b", got)
	}
	if ev := rec.Events(); len(ev) != 1 || ev[0].Action != "tlsconfig.reload" || ev[0].Outcome != audit.OutcomeAllow {
		t.Fatalf("reload not audited: %+v", ev)
	}

	// Each bad rotation keeps b serving and is reported, to the callback
	// and to the audit log.
	bad := []struct {
		name   string
		change func()
		want   error
	}{
		{"corrupt certificate", func() {
			if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, tlsconfig.ErrInvalidCertificate},
		{"half-written certificate", func() { writeAtomic(t, certFile, c.certPEM[:len(c.certPEM)-40]) }, tlsconfig.ErrInvalidCertificate},
		{"new certificate, old key", func() { writeAtomic(t, certFile, c.certPEM) }, tlsconfig.ErrKeyMismatch},
		{"expired pair", func() { writePair(t, dir, expired) }, tlsconfig.ErrCertificateExpired},
		{"rsa 1024 pair", func() { writePair(t, dir, weak) }, tlsconfig.ErrWeakKey},
		{"key removed", func() {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, tlsconfig.ErrInvalidCertificate},
	}
	for _, step := range bad {
		before := len(sink.all())
		step.change()
		clk.Add(tlsconfig.DefaultReloadInterval)
		if got := served(); got != "b" {
			t.Fatalf("%s: serving %q, want the old certificate b", step.name, got)
		}
		errs := sink.all()
		if len(errs) != before+1 || !errors.Is(errs[len(errs)-1], step.want) {
			t.Fatalf("%s: reported %v, want one new %v", step.name, errs[before:], step.want)
		}
		ev := rec.Events()
		if last := ev[len(ev)-1]; last.Outcome != audit.OutcomeError || last.Severity != audit.SeverityWarning {
			t.Fatalf("%s: last audit event %+v", step.name, last)
		}
	}

	// A good pair after the bad ones is picked up.
	writePair(t, dir, c)
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "c" {
		t.Fatalf("after recovery serving %q, want c", got)
	}
	// An unchanged pair is not reloaded again.
	n := len(rec.Events())
	clk.Add(tlsconfig.DefaultReloadInterval)
	served()
	if len(rec.Events()) != n {
		t.Fatalf("unchanged files reloaded: %+v", rec.Events()[n:])
	}
}

// kubeDir mimics a Kubernetes secret volume: tls.crt and tls.key are
// symlinks through "..data", a symlink to a timestamped directory that is
// swapped atomically on update.
type kubeDir struct {
	t   *testing.T
	dir string
	n   int
}

func (k *kubeDir) swap(certPEM, keyPEM []byte) {
	k.t.Helper()
	k.n++
	ts := filepath.Join(k.dir, "..2026_11_22_19_00_0"+string(rune('0'+k.n)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		k.t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(ts, name), data, 0o600); err != nil {
			k.t.Fatal(err)
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	if k.n == 1 {
		for _, name := range []string{"tls.crt", "tls.key"} {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(k.dir, name)); err != nil {
				k.t.Fatal(err)
			}
		}
	}
}

func TestHotReloadSymlinkSwap(t *testing.T) {
	ca := newCA(t, "test ca")
	a, b, c := ca.leaf(t, leafOpts{cn: "a"}), ca.leaf(t, leafOpts{cn: "b"}), ca.leaf(t, leafOpts{cn: "c"})
	k := &kubeDir{t: t, dir: t.TempDir()}
	k.swap(a.certPEM, a.keyPEM)
	clk := newClock()
	var rec audit.Recorder
	var sink errSink
	served := reloadServer(t, ca, filepath.Join(k.dir, "tls.crt"), filepath.Join(k.dir, "tls.key"), clk, &rec, &sink)
	if got := served(); got != "a" {
		t.Fatalf("serving %q, want a", got)
	}
	k.swap(b.certPEM, b.keyPEM)
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "b" {
		t.Fatalf("after swap serving %q, want b", got)
	}
	k.swap(c.certPEM, b.keyPEM) // a botched secret: mismatched pair
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "b" {
		t.Fatalf("after bad swap serving %q, want b", got)
	}
	if errs := sink.all(); len(errs) != 1 || !errors.Is(errs[0], tlsconfig.ErrKeyMismatch) {
		t.Fatalf("reported %v, want one ErrKeyMismatch", errs)
	}
	k.swap(c.certPEM, c.keyPEM)
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "c" {
		t.Fatalf("after fixed swap serving %q, want c", got)
	}
}

// TestHotReloadConcurrent rotates the pair while handshakes run, for the
// race detector.
func TestHotReloadConcurrent(t *testing.T) {
	ca := newCA(t, "test ca")
	pairs := []pair{ca.leaf(t, leafOpts{cn: "a"}), ca.leaf(t, leafOpts{cn: "b"})}
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, pairs[0])
	clk := newClock()
	var rec audit.Recorder
	var sink errSink
	sc, err := tlsconfig.Server(tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, Clock: audit.ClockFunc(clk.Now), Logger: &rec, OnReloadError: sink.add})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if _, err := dial(addr, &tls.Config{RootCAs: ca.pool}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 5 {
		writePair(t, dir, pairs[(i+1)%2])
		clk.Add(tlsconfig.DefaultReloadInterval)
	}
	wg.Wait()
	// A half-renamed pair (certificate written, key not yet) may have been
	// seen and refused: that is the point. Only refusals of that kind are
	// allowed.
	for _, err := range sink.all() {
		if !errors.Is(err, tlsconfig.ErrKeyMismatch) {
			t.Errorf("unexpected reload error: %v", err)
		}
	}
}

func TestClientCertificateFiles(t *testing.T) {
	serverCA, clientCA := newCA(t, "server ca"), newCA(t, "client ca")
	sc, err := tlsconfig.Server(tlsconfig.Config{
		Certificates: []tls.Certificate{serverCA.leaf(t, leafOpts{}).cert},
		ClientCAs:    clientCA.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	certFile, keyFile := writePair(t, t.TempDir(), clientCA.leaf(t, leafOpts{client: true}))
	cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: serverCA.pool, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cc); err != nil {
		t.Fatalf("client certificate from files refused: %v", err)
	}
}

// flakyLogger is an audit log that can be made to fail.
type flakyLogger struct {
	audit.Recorder
	mu   sync.Mutex
	down bool
}

var errLogDown = errors.New("audit log down")

func (l *flakyLogger) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

func (l *flakyLogger) Log(ctx context.Context, e audit.Event) error {
	l.mu.Lock()
	down := l.down
	l.mu.Unlock()
	if down {
		return errLogDown
	}
	return l.Recorder.Log(ctx, e)
}

// TestReloadNotRecordedNotApplied: a rotation the audit log cannot record
// is not applied, and is applied once the log is back.
func TestReloadNotRecordedNotApplied(t *testing.T) {
	ca := newCA(t, "test ca")
	a, b := ca.leaf(t, leafOpts{cn: "a"}), ca.leaf(t, leafOpts{cn: "b"})
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, a)
	clk := newClock()
	var log flakyLogger
	var sink errSink
	sc, err := tlsconfig.Server(tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, Clock: audit.ClockFunc(clk.Now), Logger: &log, OnReloadError: sink.add})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	served := func() string {
		t.Helper()
		cs, err := dial(addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		return cs.PeerCertificates[0].Subject.CommonName
	}

	log.setDown(true)
	writePair(t, dir, b)
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "a" {
		t.Fatalf("unrecorded reload applied: serving %q", got)
	}
	if errs := sink.all(); len(errs) != 1 || !errors.Is(errs[0], errLogDown) {
		t.Fatalf("reported %v, want the audit error", errs)
	}
	log.setDown(false)
	clk.Add(tlsconfig.DefaultReloadInterval)
	if got := served(); got != "b" {
		t.Fatalf("after the log recovered serving %q, want b", got)
	}
	if ev := log.Events(); len(ev) != 1 || ev[0].Outcome != audit.OutcomeAllow {
		t.Fatalf("events %+v", ev)
	}
}

func TestExceptionNotRecordedRefused(t *testing.T) {
	ca := newCA(t, "test ca")
	log := &flakyLogger{down: true}
	_, err := tlsconfig.Server(tlsconfig.Config{
		Certificates:        []tls.Certificate{ca.leaf(t, leafOpts{}).cert},
		InsecureLegacyTLS12: true,
		Logger:              log,
	})
	if !errors.Is(err, errLogDown) {
		t.Fatalf("got %v, want the audit error", err)
	}
}
