package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// The seams. Each tomkit package is wired in by one small file that
// implements one of these; see README.md for which file wires what.

// docStore keeps documents. Implementations encrypt at rest with one KEK
// per tenant and enforce the retention window.
type docStore interface {
	Put(ctx context.Context, tenant, id string, body []byte) error
	// Get returns errNotFound for a missing, expired or erased document.
	Get(ctx context.Context, tenant, id string) ([]byte, error)
	Delete(ctx context.Context, tenant, id string) error
	// EraseTenant destroys the tenant's key (crypto-shredding) and its
	// documents. Copies elsewhere (backups) become unreadable.
	EraseTenant(ctx context.Context, tenant string) error
	Close() error
}

// aiGuard enforces the § 203 rules on outbound AI traffic.
type aiGuard interface {
	ModelCall(ctx context.Context, tenant, model string) error
	WebSearch(ctx context.Context, tenant string) error
	// KnowledgeBase decides whether the actor in ctx may touch resource
	// of owner's knowledge base (its documents).
	KnowledgeBase(ctx context.Context, owner, resource string) error
}

// auditSink is the audit log: an audit.Logger that can be closed.
type auditSink interface {
	audit.Logger
	Close() error
}

var (
	errNotFound   = errors.New("refapp: document not found")
	errSection203 = errors.New("refapp: refused in § 203 mode")
)

type app struct {
	opts    options
	data    dataDir
	tenants map[string]tenantInfo
	tokens  map[string]principal // by token hash
	store   docStore
	authz   *rbacAuthz
	guard   aiGuard
	audit   auditSink
	tls     *tls.Config
	mon     *monitor
	errLog  *log.Logger
	now     func() time.Time

	closers []io.Closer
}

func newApp(ctx context.Context, o options, d dataDir, stderr io.Writer) (*app, error) {
	a := &app{opts: o, data: d, errLog: log.New(stderr, "refapp: ", log.LstdFlags|log.LUTC), now: o.now}
	if a.now == nil {
		a.now = time.Now
	}
	var err error
	if a.tenants, err = d.tenants(); err != nil {
		return nil, err
	}
	ps, err := d.principals()
	if err != nil {
		return nil, err
	}
	a.tokens = make(map[string]principal, len(ps))
	for _, p := range ps {
		a.tokens[p.TokenSHA256] = p
	}
	fail := func(what string, err error) (*app, error) {
		a.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// Each component is kept only once it opened: an opener that fails
	// may return a typed nil (a nil *audit.FileLog in an auditSink),
	// which close must never see.
	au, err := openAudit(ctx, a)
	if err != nil {
		return fail("audit log", err)
	}
	a.audit = au
	a.mon, err = newMonitor(a.audit, stderr, a.now)
	if err != nil {
		return fail("monitoring", err)
	}
	st, err := openStore(ctx, a)
	if err != nil {
		return fail("document store", err)
	}
	a.store = st
	if a.authz, err = openAuthorizer(ctx, a); err != nil {
		return fail("authorizer", err)
	}
	g, err := openGuard(ctx, a)
	if err != nil {
		return fail("section 203 guard", err)
	}
	a.guard = g
	if a.tls, err = serverTLS(ctx, a); err != nil {
		return fail("tls", err)
	}
	return a, nil
}

func (a *app) close() {
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.authz != nil {
		_ = a.authz.Close()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	if a.audit != nil {
		_ = a.audit.Close()
	}
}

// serve listens on the HTTPS and redirect addresses, prints the banner and
// serves until ctx is done.
func (a *app) serve(ctx context.Context, created bool, stdout io.Writer) error {
	ln, err := net.Listen("tcp", a.opts.addr)
	if err != nil {
		return err
	}
	base := "https://" + hostPort(ln.Addr())
	h, err := a.routes()
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := httpsServer(h, a.tls)
	srv.ErrorLog = a.errLog
	servers := []*http.Server{srv}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- srv.ServeTLS(ln, "", "") }()

	var redirectURL string
	if a.opts.httpAddr != "" {
		hln, err := net.Listen("tcp", a.opts.httpAddr)
		if err != nil {
			_ = srv.Close()
			return err
		}
		redirectURL = "http://" + hostPort(hln.Addr())
		ph, err := a.plainRoutes(ln.Addr())
		if err != nil {
			_ = hln.Close()
			_ = srv.Close()
			return err
		}
		rs := &http.Server{Handler: ph, ReadHeaderTimeout: 5 * time.Second, ErrorLog: a.errLog}
		servers = append(servers, rs)
		wg.Add(1)
		go func() { defer wg.Done(); errc <- rs.Serve(hln) }()
	}
	a.banner(stdout, base, redirectURL, created)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func hostPort(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if host == "127.0.0.1" || host == "::1" || host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func (a *app) banner(w io.Writer, base, redirect string, created bool) {
	toks, _ := a.data.demoTokens()
	ca := a.data.path(fileCA)
	fmt.Fprintf(w, "refapp: listening on %s\n", base)
	if redirect != "" {
		fmt.Fprintf(w, "refapp: redirecting %s -> %s\n", redirect, base)
	}
	if created {
		fmt.Fprintf(w, "refapp: created data directory %s\n", a.data.root)
	} else {
		fmt.Fprintf(w, "refapp: using data directory %s\n", a.data.root)
	}
	if a.opts.postgres != "" {
		fmt.Fprintln(w, "refapp: audit log, policy, grants and documents in PostgreSQL; keyring, keys, certificates and demo principals in the data directory")
	}
	fmt.Fprintf(w, "refapp: integrations: %s\n", strings.Join(a.integrations(), ", "))
	fmt.Fprintln(w, "\nDemo principals and tokens (development only):")
	names := make([]string, 0, len(toks))
	for n := range toks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-7s %s\n", n, toks[n])
	}
	c := fmt.Sprintf("curl --cacert %s", ca)
	fmt.Fprintf(w, `
Try it (copy and paste):

  # health
  %[1]s %[2]s/healthz
  # store a document as alice (acme), read it back
  ID=$(%[1]s -s -H "Authorization: Bearer %[3]s" --data-binary 'hello' %[2]s/v1/tenants/acme/documents | sed 's/.*"id":"\([^"]*\)".*/\1/')
  %[1]s -H "Authorization: Bearer %[3]s" %[2]s/v1/tenants/acme/documents/$ID
  # cross-tenant read: lena (law firm) is refused with 403
  %[1]s -H "Authorization: Bearer %[4]s" %[2]s/v1/tenants/acme/documents/$ID
  # no token: 401
  %[1]s %[2]s/v1/tenants/acme/documents/$ID
  # § 203: the law firm may not use web search, nor a non-EU model
  %[1]s -H "Authorization: Bearer %[4]s" -d '{"query":"client name"}' %[2]s/v1/tenants/kanzlei-mueller/web-search
  %[1]s -H "Authorization: Bearer %[4]s" -d '{"model":"gpt-4o","prompt":"summarise"}' %[2]s/v1/tenants/kanzlei-mueller/model-calls
  %[1]s -H "Authorization: Bearer %[4]s" -d '{"model":"mistral-large-eu","prompt":"summarise"}' %[2]s/v1/tenants/kanzlei-mueller/model-calls
  # break-glass: the on-call operator (no standing access) elevates to "reader" in acme; an alert fires
  %[1]s -H "Authorization: Bearer %[5]s" %[2]s/v1/tenants/acme/documents/$ID     # 403 before
  %[1]s -H "Authorization: Bearer %[5]s" -d '{"tenant":"acme","reason":"INC-1234 outage"}' %[2]s/v1/break-glass
  %[1]s -H "Authorization: Bearer %[5]s" %[2]s/v1/tenants/acme/documents/$ID     # 200 now, audited
  # four-eyes tenant erasure: carol asks for the eraser role, dave approves, carol erases
  REQ=$(%[1]s -s -H "Authorization: Bearer %[6]s" -d '{"role":"eraser","reason":"contract ended"}' %[2]s/v1/tenants/acme/access-requests | sed 's/.*"id":"\([^"]*\)".*/\1/')
  %[1]s -H "Authorization: Bearer %[7]s" -X POST %[2]s/v1/tenants/acme/access-requests/$REQ/approve
  %[1]s -H "Authorization: Bearer %[6]s" -X POST %[2]s/v1/tenants/acme/erase
  %[1]s -H "Authorization: Bearer %[3]s" %[2]s/v1/tenants/acme/documents/$ID     # 404: erased
  # HSTS and TLS 1.3 only
  %[1]s -sI %[2]s/healthz | grep -i strict-transport
  %[1]s --tls-max 1.2 %[2]s/healthz   # fails: TLS 1.2 is refused
  # the audit log
  go run ./cmd/tomkit audit verify %[8]s   # (from the tomkit repository)

`, c, base, toks["alice"], toks["lena"], toks["oncall"], toks["carol"], toks["dave"], a.auditVerifyArgs())
	fmt.Fprintln(w, "refapp: ready")
}
