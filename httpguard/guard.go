package httpguard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/section203"
)

// Defaults for the zero values of Config.
const (
	defaultMaxBodyBytes = 1 << 20
	// defaultMaxHeaderBytes is tlsconfig.MaxHeaderBytes, the limit of
	// tlsconfig.HTTPServer.
	defaultMaxHeaderBytes = 64 << 10
	defaultRate           = 20
	defaultBurst          = 40
	defaultFailureRate    = 1
	defaultFailureBurst   = 20
	defaultMaxTracked     = 10000
	defaultAlertWindow    = time.Minute
)

// ErrNoAuthenticator is returned by [New] for a Config without an
// Authenticator. A Config without a Logger gets [audit.ErrNoLogger].
var ErrNoAuthenticator = errors.New("httpguard: no authenticator configured")

// ErrConfig reports an invalid Config value, such as a negative limit.
var ErrConfig = errors.New("httpguard: invalid config")

// Authenticator verifies a bearer token (an opaque API token, an OIDC ID or
// access token) and returns its principal. An error, or a Principal with
// an empty subject or tenant, is an authentication failure: 401.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// AuthenticatorFunc lets an ordinary function be an Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (Principal, error) {
	return f(ctx, token)
}

var _ Authenticator = AuthenticatorFunc(nil)

// Principal is an authenticated caller.
type Principal struct {
	// Actor is the subject and its tenant; both are required.
	Actor audit.Actor
	// MFAVerifiedAt is when the identity provider last verified the
	// subject's second factor (an OIDC auth_time with an "mfa" amr). Zero
	// means no MFA, which denies every MFA-marked permission.
	MFAVerifiedAt time.Time
}

// Config configures a Guard. Logger and Authenticator are required; every
// other zero value is a safe default. A Config must not be modified after
// it has been passed to New.
type Config struct {
	// Service prefixes the access-log actions: a request of route Name
	// "note.read" is logged as "<Service>.note.read". Empty means "http".
	Service string
	// Logger receives the access-log events. Required.
	Logger audit.Logger
	// Authenticator verifies bearer tokens. Required.
	Authenticator Authenticator
	// Enforcer checks every route that names an Action and an Object.
	// Nil is allowed only if no route does: Handle refuses such a route.
	Enforcer *rbac.Enforcer
	// Modes binds the § 203 mode of the principal's tenant into the ctx.
	// Nil binds nothing, and section203.ModeFrom then answers On (fail
	// closed) for every tenant.
	Modes *section203.Modes
	// Realm is the realm of the WWW-Authenticate header. Empty means
	// Service.
	Realm string
	// MaxBodyBytes bounds request bodies; a handler reading past it gets a
	// *http.MaxBytesError, mapped to 413. Zero means 1 MiB.
	MaxBodyBytes int64
	// Rate and Burst are the token bucket per principal
	// (golang.org/x/time/rate). Zero means 20 per second and 40.
	Rate  rate.Limit
	Burst int
	// FailureRate and FailureBurst are the token bucket per client
	// address for requests that fail authentication and for Public routes.
	// Zero means 1 per second and 20.
	FailureRate  rate.Limit
	FailureBurst int
	// MaxTracked bounds each limiter table; the least recently seen key
	// is evicted beyond it. Zero means 10000.
	MaxTracked int
	// MaxHeaderBytes bounds the request line and header fields, counted
	// as net/http counts them: a larger request gets an audited 431
	// headers_too_large before authentication. Zero means
	// tlsconfig.MaxHeaderBytes (64 KiB). Set the server's own limit above
	// it, or net/http answers first, unaudited.
	MaxHeaderBytes int
	// KnownTenant, if set, tells an existing tenant from an unknown one.
	// A principal naming, in a {tenant} path value, a tenant other than
	// its own then gets 404 unknown_tenant for an unknown tenant (and 403
	// forbidden for a known one), and an unauthenticated request's event
	// carries the path's tenant in its actor if it is known. Nil means
	// every other tenant is 403 forbidden and anonymous events carry the
	// tenant "-".
	KnownTenant func(tenant string) bool
	// Errors maps handler errors to responses, checked in order before
	// the defaults (see docs/HTTPGUARD.md); each needs an Err, a
	// 4xx or 5xx Status and a Code. Nil means defaults only.
	Errors []Mapping
	// Alert, if set, is called once per AlertWindow and kind of alert
	// that saw failures, with their count, when the window has ended: on
	// the next request, or a second later by a timer (and at once too,
	// with AlertAtOnce). It runs on that
	// request's goroutine, so it should return quickly. Nil means counters
	// only.
	Alert func(ctx context.Context, a Alert)
	// AlertWindow is the aggregation window of Alert. Zero means a
	// minute.
	AlertWindow time.Duration
	// AlertAtOnce also raises an Alert at once, with the request's ctx
	// (its request id and actor), on the failure that brings a kind's
	// count in the window to 1, 2, 4, 8, ...: the first failure pages
	// without waiting for the window, and a flood of n failures raises
	// about log2(n) alerts, never one per request. False raises only the
	// window's Alert when it ends.
	AlertAtOnce bool
	// MeterProvider provides the counters (OTel API). Nil means the
	// global provider.
	MeterProvider metric.MeterProvider
	// Clock gives the time of the rate limits and alert windows. Nil
	// means the system clock.
	Clock audit.Clock
}

// Route describes a route for [Guard.Handle].
type Route struct {
	// Name is the action of the route's access-log events, after
	// Config.Service. Required.
	Name string
	// Action and Object are the rbac request: the principal's tenant is
	// the domain. Object is a template whose {name} parts are filled from
	// the request's path values: "/notes/{id}".
	Action, Object string
	// HandlerAuthorizes marks a route whose handler makes its own rbac
	// call (for example Enforcer.Approve, which checks the approver). The
	// guard still authenticates, limits, binds tenant and mode, and audits.
	HandlerAuthorizes bool
	// Public marks a route that needs no authentication, such as a health
	// check. It is rate-limited per client address and audited with the
	// actor "anonymous".
	Public bool
	// Unaudited marks a Public route whose successful responses (status
	// below 400) write no access-log event, such as a load balancer's
	// health check; its errors are still audited. It is not limited per
	// client address, so its handler must be cheap. Only a Public route
	// may be Unaudited.
	Unaudited bool
}

// HandlerFunc handles a request. Its response is buffered; a returned
// error replaces whatever it wrote with the mapped JSON error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Guard is the guarded mux: register routes with Handle and serve it. It
// is safe for concurrent use once serving starts.
type Guard struct {
	cfg      Config
	mux      *http.ServeMux
	routes   map[string]*route
	users    *limiter
	failures *limiter
	mon      *monitor
	now      func() time.Time
}

type route struct {
	Route
	tmpl      []string // literal, name, literal, name, ...
	hasTenant bool
	tenantSeg int // the index of {tenant} among the path's "/" segments, or -1
	handler   *routeHandler
}

// routeHandler is a registered route's mux handler; lookup tells it from
// the mux's own answers (redirects, 404, 405) by identity.
type routeHandler struct {
	g  *Guard
	ro *route
	h  HandlerFunc
}

func (rh *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rh.g.serveRoute(w, r, rh.ro, rh.h)
}

// New returns a Guard for cfg.
func New(cfg Config) (*Guard, error) {
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if cfg.Authenticator == nil {
		return nil, ErrNoAuthenticator
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxHeaderBytes < 0 || cfg.Rate < 0 || cfg.Burst < 0 || cfg.FailureRate < 0 || cfg.FailureBurst < 0 || cfg.MaxTracked < 0 || cfg.AlertWindow < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	for _, m := range cfg.Errors {
		if m.Err == nil || m.Status < 400 || m.Status > 599 || m.Code == "" {
			return nil, fmt.Errorf("%w: error mapping %+v needs an Err, a 4xx or 5xx Status and a Code", ErrConfig, m)
		}
	}
	if cfg.Service == "" {
		cfg.Service = "http"
	}
	if cfg.Realm == "" {
		cfg.Realm = cfg.Service
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return nil, fmt.Errorf("%w: realm %q", ErrConfig, cfg.Realm)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Rate == 0 {
		cfg.Rate = defaultRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = defaultBurst
	}
	if cfg.FailureRate == 0 {
		cfg.FailureRate = defaultFailureRate
	}
	if cfg.FailureBurst == 0 {
		cfg.FailureBurst = defaultFailureBurst
	}
	if cfg.MaxTracked == 0 {
		cfg.MaxTracked = defaultMaxTracked
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if cfg.AlertWindow == 0 {
		cfg.AlertWindow = defaultAlertWindow
	}
	g := &Guard{cfg: cfg, mux: http.NewServeMux(), routes: map[string]*route{}, now: time.Now}
	if cfg.Clock != nil {
		g.now = cfg.Clock.Now
	}
	g.users = newLimiter(cfg.Rate, cfg.Burst, cfg.MaxTracked)
	g.failures = newLimiter(cfg.FailureRate, cfg.FailureBurst, cfg.MaxTracked)
	var err error
	if g.mon, err = newMonitor(cfg.MeterProvider, cfg.Alert, cfg.AlertWindow, cfg.AlertAtOnce, g.now); err != nil {
		return nil, err
	}
	return g, nil
}

var wildcard = regexp.MustCompile(`\{([^{}.]*)(\.\.\.)?\}`)

// Handle registers h for pattern (a net/http ServeMux pattern) as rt. It
// panics, as ServeMux does, on a conflicting pattern, and on a Route that
// would leave a request unauthorized by mistake: one with no Name, with
// neither Action and Object nor HandlerAuthorizes nor Public, with an
// Object naming a path value that pattern lacks, or needing rbac without
// a Config.Enforcer. Register every route before serving.
func (g *Guard) Handle(pattern string, rt Route, h HandlerFunc) {
	if err := g.check(pattern, &rt); err != nil {
		panic("httpguard: " + pattern + ": " + err.Error())
	}
	names := map[string]bool{}
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		names[m[1]] = true
	}
	ro := &route{Route: rt, hasTenant: names["tenant"], tenantSeg: -1}
	if i := strings.IndexByte(pattern, '/'); ro.hasTenant && i >= 0 {
		// Neither a method nor a host holds a '/': the path starts here.
		for n, seg := range strings.Split(pattern[i:], "/") {
			if seg == "{tenant}" {
				ro.tenantSeg = n
			}
		}
	}
	if rt.Object != "" {
		rest := rt.Object
		for {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				ro.tmpl = append(ro.tmpl, rest)
				break
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				panic("httpguard: " + pattern + ": unterminated {} in object " + rt.Object)
			}
			name := rest[i+1 : i+j]
			if !names[name] {
				panic("httpguard: " + pattern + ": object " + rt.Object + " names {" + name + "}, which the pattern lacks")
			}
			ro.tmpl = append(ro.tmpl, rest[:i], name)
			rest = rest[i+j+1:]
		}
	}
	ro.handler = &routeHandler{g: g, ro: ro, h: h}
	g.mux.Handle(pattern, ro.handler)
	g.routes[pattern] = ro
}

func (g *Guard) check(pattern string, rt *Route) error {
	switch {
	case rt.Name == "":
		return errors.New("route has no Name")
	case (rt.Action == "") != (rt.Object == ""):
		return errors.New("route needs both Action and Object, or neither")
	case rt.Unaudited && !rt.Public:
		return errors.New("only a Public route may be Unaudited")
	case rt.Public && rt.Object != "":
		return errors.New("a Public route cannot be authorized: it has no principal")
	case rt.Object != "" && rt.HandlerAuthorizes:
		return errors.New("route both names an Object and says HandlerAuthorizes")
	case !rt.Public && rt.Object == "" && !rt.HandlerAuthorizes:
		return errors.New("route is neither Public, nor checked (Action and Object), nor HandlerAuthorizes")
	case rt.Object != "" && g.cfg.Enforcer == nil:
		return errors.New("route needs rbac but Config.Enforcer is nil")
	}
	return nil
}

// state is one request's bookkeeping, reachable from its ctx.
type state struct {
	ev     audit.Event
	routed bool // a registered route's handler ran
}

type stateKey struct{}

// AuditEvent returns the access-log event of the request whose ctx is
// given, for its handler to set Resource, Reason, Severity, Outcome or
// Attributes. The guard sets Action, Actor and the HTTP attributes itself,
// a default Resource (the path) and Outcome (from the status) when they are
// empty. Outside a guarded request it returns an event that is discarded.
func AuditEvent(ctx context.Context) *audit.Event {
	if s, ok := ctx.Value(stateKey{}).(*state); ok {
		return &s.ev
	}
	return &audit.Event{}
}

// ServeHTTP runs the chain described in docs/HTTPGUARD.md.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := g.now()
	g.mon.flushDue(now)
	id := newRequestID()
	w.Header().Set("X-Request-Id", id)
	st := &state{}
	ctx := context.WithValue(audit.WithRequestID(r.Context(), id), stateKey{}, st)
	client := clientIP(r)
	buf := &buffer{header: http.Header{}}

	ro := g.lookup(r)
	name := "request"
	if ro != nil {
		name = ro.Name
	}
	actor := audit.Actor{Subject: "anonymous", Tenant: "-"}

	var (
		refuse   error
		p        Principal
		why      string
		tooLarge = headerBytes(r) > g.cfg.MaxHeaderBytes
	)
	if !tooLarge {
		p, why = g.authenticate(ctx, r, ro)
	}
	switch {
	case tooLarge:
		refuse = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: CodeHeadersTooLarge, Message: "request header fields over " + strconv.Itoa(g.cfg.MaxHeaderBytes) + " bytes"}
		if d, ok := g.failures.allow(client, now); !ok {
			refuse = g.limited(ctx, "address", d)
		}
	case why == "" && p.Actor.Subject == "":
		// A Public route, or a redirect of the mux (see authenticate).
		// The address limit bounds durable writes: an Unaudited route
		// makes none when it succeeds.
		if ro != nil && ro.Unaudited {
			break
		}
		if d, ok := g.failures.allow(client, now); !ok {
			refuse = g.limited(ctx, "address", d)
		}
	case why != "":
		g.mon.authFailure(ctx, why)
		refuse = &unauthenticated{why}
		if d, ok := g.failures.allow(client, now); !ok {
			refuse = g.limited(ctx, "address", d)
		}
		if t := g.pathTenant(r, ro); t != "" {
			actor.Tenant = t
		}
	default:
		actor = p.Actor
		ctx = audit.WithActor(ctx, p.Actor)
		if !p.MFAVerifiedAt.IsZero() {
			ctx = rbac.WithMFA(ctx, p.MFAVerifiedAt)
		}
		if g.cfg.Modes != nil {
			ctx = g.cfg.Modes.Bind(ctx)
		}
		if d, ok := g.users.allow(p.Actor.Tenant+"\x00"+p.Actor.Subject, now); !ok {
			refuse = g.limited(ctx, "principal", d)
		}
	}
	r = r.WithContext(ctx)
	if refuse != nil {
		g.writeError(buf, r, refuse)
	} else {
		r.Body = http.MaxBytesReader(buf, r.Body, g.cfg.MaxBodyBytes)
		g.serveMux(buf, r)
		if !st.routed {
			name = "request" // the mux answered: 404, 405, a redirect
		}
	}

	status := buf.status
	if status == 0 {
		status = http.StatusOK
	}
	if ro != nil && ro.Unaudited && st.routed && refuse == nil && status < 400 {
		g.release(w, buf, id, status)
		return
	}
	ev := st.ev
	ev.Action = g.cfg.Service + "." + name
	ev.Actor = actor
	if ev.Resource == "" {
		ev.Resource = r.URL.Path
	}
	if ev.Outcome == "" {
		switch {
		case status >= 500:
			ev.Outcome = audit.OutcomeError
		case status >= 400:
			ev.Outcome = audit.OutcomeDeny
		default:
			ev.Outcome = audit.OutcomeAllow
		}
	}
	if ev.Reason == "" && status >= 300 && status < 400 {
		if loc := buf.header.Get("Location"); loc != "" {
			ev.Reason = "redirect to " + loc
		}
	}
	attrs := make([]audit.Attr, 0, len(ev.Attributes)+4)
	attrs = append(attrs, ev.Attributes...)
	ev.Attributes = append(attrs,
		audit.String("http.method", r.Method),
		audit.String("http.status", strconv.Itoa(status)),
		audit.Personal("client.address", client))
	clip(&ev, g.cfg.Service)
	if err := g.cfg.Logger.Log(ctx, ev); err != nil {
		g.mon.auditFailure(ctx)
		var e apiError
		e.Error.Code = CodeAuditUnavailable
		e.Error.Message = "the access could not be audited and was refused"
		e.RequestID = id
		writeJSON(w, http.StatusServiceUnavailable, &e)
		return
	}
	g.release(w, buf, id, status)
}

// release writes the buffered response.
func (g *Guard) release(w http.ResponseWriter, buf *buffer, id string, status int) {
	h := w.Header()
	for k, v := range buf.header {
		h[k] = v
	}
	h.Set("X-Request-Id", id)
	w.WriteHeader(status)
	_, _ = w.Write(buf.body.Bytes())
}

// serveMux runs the mux into buf. A panic discards what was written and
// becomes a 500; a response the mux made itself (404, 405) gets a JSON
// body.
func (g *Guard) serveMux(buf *buffer, r *http.Request) {
	st := r.Context().Value(stateKey{}).(*state)
	defer func() {
		if v := recover(); v != nil {
			buf.reset()
			ev := &st.ev
			ev.Outcome = audit.OutcomeError
			ev.Reason = "panic in handler"
			ev.Severity = audit.SeverityWarning
			g.writeError(buf, r, errPanic)
		}
	}()
	g.mux.ServeHTTP(buf, r)
	if st.routed {
		return
	}
	switch buf.status {
	case http.StatusNotFound:
		buf.reset()
		g.writeError(buf, r, ErrNotFound)
	case http.StatusMethodNotAllowed:
		allow := buf.header.Values("Allow")
		buf.reset()
		buf.header["Allow"] = allow
		g.writeError(buf, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "method not allowed"})
	}
}

var errPanic = errors.New("httpguard: panic in handler")

func (g *Guard) serveRoute(w http.ResponseWriter, r *http.Request, ro *route, h HandlerFunc) {
	ctx := r.Context()
	st := ctx.Value(stateKey{}).(*state)
	st.routed = true
	if err := g.authorize(r, ro); err != nil {
		g.writeError(w, r, err)
		return
	}
	if err := h(w, r); err != nil {
		if b, ok := w.(*buffer); ok {
			b.reset()
		}
		g.writeError(w, r, err)
	}
}

// authorize binds the tenant and checks rbac.
func (g *Guard) authorize(r *http.Request, ro *route) error {
	if ro.Public {
		return nil
	}
	ctx := r.Context()
	a := audit.ActorFrom(ctx)
	if ro.hasTenant {
		if t := r.PathValue("tenant"); t != a.Tenant {
			if g.cfg.KnownTenant != nil && !g.cfg.KnownTenant(t) {
				return &Error{Status: http.StatusNotFound, Code: CodeUnknownTenant, Message: "no such tenant", Err: fmt.Errorf("%w: unknown tenant %s", ErrNotFound, t)}
			}
			return fmt.Errorf("%w: cross-tenant: a principal of %s asked for %s", ErrForbidden, a.Tenant, t)
		}
	}
	if ro.Object == "" {
		return nil
	}
	var b strings.Builder
	for i, s := range ro.tmpl {
		if i%2 == 1 {
			s = r.PathValue(s)
		}
		b.WriteString(s)
	}
	return g.decide(ctx, b.String(), ro.Action)
}

// Authorize checks whether the request's principal may perform action on
// object, as a Route's Action and Object do, for a handler whose object is
// known only from the body (a route with HandlerAuthorizes). Its error
// maps to 403 mfa_required or forbidden; an allow through a grant is
// recorded on the request's audit event. Without a Config.Enforcer it
// refuses.
func (g *Guard) Authorize(r *http.Request, action, object string) error {
	if g.cfg.Enforcer == nil {
		return fmt.Errorf("%w: no Enforcer to authorize with", ErrConfig)
	}
	return g.decide(r.Context(), object, action)
}

func (g *Guard) decide(ctx context.Context, object, action string) error {
	d, err := g.cfg.Enforcer.Decide(ctx, rbac.Request{Object: object, Action: action})
	if err != nil {
		return errtext.Errorf("authorization: %w", err)
	}
	if !d.Allowed {
		if strings.HasPrefix(d.Reason, "mfa required") {
			return fmt.Errorf("%w: %w: %s", rbac.ErrDenied, rbac.ErrMFARequired, d.Reason)
		}
		return fmt.Errorf("%w: %s", rbac.ErrDenied, d.Reason)
	}
	if d.GrantID != "" {
		ev := AuditEvent(ctx)
		ev.Severity = audit.SeverityWarning
		ev.Attributes = append(ev.Attributes, audit.String("grant", d.GrantID), audit.String("rule", d.Rule))
	}
	return nil
}

// authenticate reads exactly one Authorization header with a bearer token
// and verifies it. why is empty on success, and says what failed otherwise.
// A Public route needs no principal, nor does a request the mux answers
// with a redirect (its path is not canonical): why and p's subject are
// both empty for these.
func (g *Guard) authenticate(ctx context.Context, r *http.Request, ro *route) (p Principal, why string) {
	if ro != nil && ro.Public {
		return p, ""
	}
	p, why = g.verifyHeader(ctx, r)
	if why != "" && g.redirects(r, ro) {
		return Principal{}, ""
	}
	return p, why
}

func (g *Guard) verifyHeader(ctx context.Context, r *http.Request) (p Principal, why string) {
	hs := r.Header.Values("Authorization")
	switch {
	case len(hs) == 0:
		return p, "missing credentials"
	case len(hs) > 1:
		return p, "more than one Authorization header"
	}
	scheme, tok, ok := strings.Cut(hs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 8192 || strings.ContainsAny(tok, " \t,") {
		return p, "malformed Authorization header"
	}
	p, err := g.verify(ctx, tok)
	if err != nil || p.Actor.Subject == "" || p.Actor.Tenant == "" {
		return Principal{}, "invalid credentials"
	}
	return p, ""
}

// lookup returns the route r matches, or nil.
func (g *Guard) lookup(r *http.Request) (ro *route) {
	defer func() {
		if recover() != nil {
			ro = nil
		}
	}()
	_, pattern := g.mux.Handler(r)
	return g.routes[pattern]
}

// redirects reports whether the mux answers r with a redirect rather than
// with a route's handler: a path-cleaning redirect, which releases nothing
// but a canonical Location, and so needs no principal.
func (g *Guard) redirects(r *http.Request, ro *route) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	h, _ := g.mux.Handler(r)
	if ro != nil && h == http.Handler(ro.handler) {
		return false
	}
	if _, isRoute := h.(*routeHandler); isRoute {
		return false
	}
	// The mux's own handlers (redirect, 404, 405) only write a response.
	probe := &buffer{header: http.Header{}}
	h.ServeHTTP(probe, r.WithContext(context.WithoutCancel(r.Context())))
	return probe.status >= 300 && probe.status < 400
}

// pathTenant returns the {tenant} path value of ro, if Config.KnownTenant
// knows it, for an unauthenticated request's event; "" otherwise. The mux
// has not run, so the value is read from the path.
func (g *Guard) pathTenant(r *http.Request, ro *route) string {
	if ro == nil || ro.tenantSeg < 0 || g.cfg.KnownTenant == nil {
		return ""
	}
	segs := strings.Split(r.URL.EscapedPath(), "/")
	if ro.tenantSeg >= len(segs) {
		return ""
	}
	t, err := url.PathUnescape(segs[ro.tenantSeg])
	if err != nil || t == "" || !g.cfg.KnownTenant(t) {
		return ""
	}
	return t
}

// headerBytes is the size of the request line and header fields, counted
// as net/http counts them against http.Server.MaxHeaderBytes.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// maxEventText bounds each text field of an access-log event, so that no
// request can make its event exceed audit.MaxEventSize and so turn itself
// into an audit outage (a 503).
const maxEventText = 512

// clip cuts each text field of ev over maxEventText at a character
// boundary and names it, with its length, in the attribute
// "<service>.truncated".
func clip(ev *audit.Event, service string) {
	var cut []string
	f := func(name string, s *string) {
		if len(*s) <= maxEventText {
			return
		}
		cut = append(cut, name+"="+strconv.Itoa(len(*s)))
		n := maxEventText
		for n > 0 && !utf8.RuneStart((*s)[n]) {
			n--
		}
		*s = (*s)[:n]
	}
	f("actor.subject", &ev.Actor.Subject)
	f("actor.tenant", &ev.Actor.Tenant)
	f("resource", &ev.Resource)
	f("reason", &ev.Reason)
	for i := range ev.Attributes {
		f("attributes."+ev.Attributes[i].Key, &ev.Attributes[i].Value)
		f("attributes."+strconv.Itoa(i)+".key", &ev.Attributes[i].Key)
	}
	if len(cut) > 0 {
		ev.Attributes = append(ev.Attributes, audit.String(service+".truncated", strings.Join(cut, ",")))
	}
}

// verify calls the Authenticator; a panic in it is a failure.
func (g *Guard) verify(ctx context.Context, tok string) (p Principal, err error) {
	defer func() {
		if recover() != nil {
			p, err = Principal{}, errPanic
		}
	}()
	return g.cfg.Authenticator.Authenticate(ctx, tok)
}

// limited counts a rate-limit violation and returns its error. The
// event's reason is the stable code, and its "ratelimit" attribute names
// the limit: "principal" or "address".
func (g *Guard) limited(ctx context.Context, kind string, retry time.Duration) error {
	g.mon.rateLimited(ctx, kind)
	ev := AuditEvent(ctx)
	ev.Severity = audit.SeverityWarning
	ev.Reason = CodeRateLimited
	ev.Attributes = append(ev.Attributes, audit.String("ratelimit", kind))
	return &rateLimited{kind: kind, retry: retry}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
