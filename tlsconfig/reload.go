package tlsconfig

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// fileCert serves a certificate pair read from files and re-reads it, at
// most once per interval, during a handshake when either file's identity
// (device and inode, size, modification time) has changed. A bad new pair
// is reported and the old one kept.
type fileCert struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	logger            audit.Logger
	onErr             func(error)

	cur  atomic.Pointer[tls.Certificate]
	next atomic.Int64 // UnixNano of the next due check

	mu   sync.Mutex // held by the one handshake that checks the files
	seen [2]os.FileInfo
}

func newFileCert(c *Config) (*fileCert, error) {
	f := &fileCert{
		certFile: c.CertFile,
		keyFile:  c.KeyFile,
		interval: c.ReloadInterval,
		now:      time.Now,
		logger:   c.Logger,
		onErr:    c.OnReloadError,
	}
	if f.interval == 0 {
		f.interval = DefaultReloadInterval
	}
	if c.Clock != nil {
		f.now = c.Clock.Now
	}
	ids, err := f.stat()
	if err != nil {
		return nil, err
	}
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(cert)
	f.seen = ids
	f.next.Store(f.now().Add(f.interval).UnixNano())
	return f, nil
}

func (f *fileCert) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.maybeReload(hello.Context())
	return f.cur.Load(), nil
}

func (f *fileCert) getClientCertificate(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	f.maybeReload(req.Context())
	return f.cur.Load(), nil
}

// maybeReload checks the files when the interval has passed. Only one
// handshake checks at a time; the others serve the current pair.
func (f *fileCert) maybeReload(ctx context.Context) {
	now := f.now()
	if now.UnixNano() < f.next.Load() || !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	if now.UnixNano() < f.next.Load() {
		return
	}
	f.next.Store(now.Add(f.interval).UnixNano())

	ids, err := f.stat()
	if err == nil && sameFile(ids[0], f.seen[0]) && sameFile(ids[1], f.seen[1]) {
		return
	}
	if err != nil {
		f.failed(ctx, err)
		return
	}
	// Remember the identities even when the pair is bad, so that one bad
	// rotation is reported once, not at every interval; the next change to
	// either file is tried again.
	prev := f.seen
	f.seen = ids
	cert, err := f.load()
	if err != nil {
		f.failed(ctx, err)
		return
	}
	// The swap is recorded before it happens. When it cannot be recorded,
	// the old pair keeps serving and the reload is tried again at the next
	// interval.
	if err := f.log(ctx, audit.Event{
		Time:     now,
		Action:   "tlsconfig.reload",
		Resource: f.certFile,
		Outcome:  audit.OutcomeAllow,
		Severity: audit.SeverityNotice,
		Attributes: []audit.Attr{
			audit.String("subject", cert.Leaf.Subject.String()),
			audit.String("serial", cert.Leaf.SerialNumber.String()),
			audit.String("not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339)),
		},
	}); err != nil {
		f.seen = prev
		if f.onErr != nil {
			f.onErr(fmt.Errorf("%w (reloading %s; still serving the previous certificate)", err, f.certFile))
		}
		return
	}
	f.cur.Store(cert)
}

// failed reports a reload that kept the old pair.
func (f *fileCert) failed(ctx context.Context, err error) {
	err = fmt.Errorf("%w (reloading %s; still serving the previous certificate)", err, f.certFile)
	if f.onErr != nil {
		f.onErr(err)
	}
	lerr := f.log(ctx, audit.Event{
		Time:     f.now(),
		Action:   "tlsconfig.reload",
		Resource: f.certFile,
		Outcome:  audit.OutcomeError,
		Severity: audit.SeverityWarning,
		Reason:   err.Error(),
	})
	if lerr != nil && f.onErr != nil {
		f.onErr(lerr)
	}
}

// log records e when a Logger is configured.
func (f *fileCert) log(ctx context.Context, e audit.Event) error {
	if f.logger == nil {
		return nil
	}
	if err := f.logger.Log(ctx, e); err != nil {
		return errtext.Errorf("tlsconfig: audit: %w", err)
	}
	return nil
}

// stat returns the identities of the files as they resolve now, following
// symbolic links, so that a Kubernetes-style "..data" symlink swap shows as
// a change.
func (f *fileCert) stat() ([2]os.FileInfo, error) {
	var ids [2]os.FileInfo
	for i, name := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return ids, fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
		}
		ids[i] = fi
	}
	return ids, nil
}

func (f *fileCert) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
	}
	cert, err := ParseKeyPair(certPEM, keyPEM, f.now())
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
