package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tlsconfig"
)

// maxBody bounds request bodies; a larger one is refused with 413.
const maxBody = 1 << 20

// Stable error codes of the HTTP contract (README.md). Codes are only
// ever added.
const (
	codeUnauthenticated = "unauthenticated"         // 401: missing, malformed or unknown token
	codeForbidden       = "forbidden"               // 403: not allowed (RBAC deny, cross-tenant)
	codeMFARequired     = "mfa_required"            // 403: the action needs a principal with MFA
	codeFourEyes        = "four_eyes_required"      // 403: the approver must differ from the requester
	codeSection203      = "section203_refused"      // 403: refused by the § 203 guard
	codeRateLimited     = "rate_limited"            // 429: too many requests for this principal, or unauthenticated ones from this address
	codeNotFound        = "not_found"               // 404: no such document or route
	codeBadRequest      = "bad_request"             // 400: malformed request
	codeTooLarge        = "too_large"               // 413: body over 1 MiB
	codeHeadersTooLarge = "headers_too_large"       // 431: request header fields over 64 KiB
	codeMethod          = "method_not_allowed"      // 405
	codeInternal        = "internal"                // 500: an internal error; nothing was released
	codeAuditFailed     = "audit_unavailable"       // 503: the access could not be audited, so it was refused
	codeUnknownTenant   = "unknown_tenant"          // 404: no such tenant
	codeConflict        = "conflict"                // 409: e.g. an approval that is no longer pending
	codeNotImplemented  = "integration_unavailable" // 501: the tomkit package behind this feature is not wired in
)

// apiError is the JSON body of every error response.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// reqState is what a handler tells the middleware about the request, for
// its single audit event.
type reqState struct {
	p        *principal
	action   string
	tenant   string
	resource string
	outcome  audit.Outcome
	reason   string
	severity audit.Severity
	attrs    []audit.Attr
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	s, _ := ctx.Value(stateKey{}).(*reqState)
	return s
}

// bufferedWriter holds the response until the request's audit event is
// durable: nothing reaches the client before its access is logged.
type bufferedWriter struct {
	header http.Header
	base   http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

// reset drops what was written so far, headers included, back to the
// headers every response carries (base).
func (b *bufferedWriter) reset() {
	for k := range b.header {
		b.header.Del(k)
	}
	for k, v := range b.base {
		b.header[k] = v
	}
	b.status = 0
	b.body.Reset()
}
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes an error response and records the outcome for the audit
// event.
func fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var e apiError
	e.Error.Code = code
	e.Error.Message = msg
	e.RequestID = audit.RequestIDFrom(r.Context())
	if s := stateFrom(r.Context()); s != nil {
		s.outcome = audit.OutcomeDeny
		if status >= 500 {
			s.outcome = audit.OutcomeError
		}
		if s.reason == "" {
			s.reason = code
		}
		if status == http.StatusUnauthorized || status == http.StatusTooManyRequests {
			s.severity = audit.SeverityWarning
		}
	}
	writeJSON(w, status, e)
}

var tracer = otel.Tracer("github.com/tomkit/tomkit/examples/refapp")

// routes is the HTTP contract. Every route but /healthz is authenticated,
// rate limited, authorized and audited.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern, action string, h http.HandlerFunc) {
		mux.Handle(pattern, a.protect(action, h))
	}
	api("POST /v1/tenants/{tenant}/documents", "document.create", a.createDocument)
	api("GET /v1/tenants/{tenant}/documents/{id}", "document.read", a.readDocument)
	api("DELETE /v1/tenants/{tenant}/documents/{id}", "document.delete", a.deleteDocument)
	api("POST /v1/tenants/{tenant}/model-calls", "model.call", a.modelCall)
	api("POST /v1/tenants/{tenant}/web-search", "web.search", a.webSearch)
	api("POST /v1/tenants/{tenant}/access-requests", "access.request", a.requestAccess)
	api("POST /v1/tenants/{tenant}/access-requests/{id}/approve", "access.approve", a.approveAccess)
	api("POST /v1/tenants/{tenant}/erase", "tenant.erase", a.eraseTenant)
	api("POST /v1/break-glass", "breakglass.open", a.openBreakGlass)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Everything else: audited 404 (or 405) with a JSON body.
	mux.Handle("/", a.protect("request", func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, http.StatusNotFound, codeNotFound, "no such route")
	}))
	return a.outer(a.audited("request", mux))
}

// plainRoutes is the plain-HTTP listener: every request is redirected to
// HTTPS (no HSTS here) and audited like any other response.
func (a *app) plainRoutes(tlsAddr net.Addr) http.Handler {
	next := a.audited("https_redirect", redirectHandler(tlsAddr))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(audit.WithRequestID(r.Context(), id)))
	})
}

// outer adds what every response carries: HSTS and the security headers,
// a request id, a trace span.
func (a *app) outer(next http.Handler) http.Handler {
	return secureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		id := newRequestID()
		ctx = audit.WithRequestID(ctx, id)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(ctx))
	}))
}

// isHealth reports a health check, the one request that is neither
// authenticated nor audited. Any other spelling of the path (//healthz,
// /healthz/.) is audited like every request.
func isHealth(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/healthz" && r.URL.RawQuery == ""
}

// maxHeaderBytes is the request-header limit the service enforces itself,
// with an audited 431; it is tlsconfig's limit. The server's own limit
// (serverMaxHeaderBytes, in seam_tls.go) is higher, so that net/http's
// unaudited 431 only answers headers too large to parse at all.
const maxHeaderBytes = tlsconfig.MaxHeaderBytes

// headerBytes is the size of the request line and header fields, counted
// as net/http counts them against MaxHeaderBytes.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// audited writes exactly one audit event for every response next gives,
// whether a route's handler wrote it or the mux did (its 301 path-cleaning
// redirects, its 404 and 405), and for handler panics (a 500). The
// response is buffered and released only once its event is durable; if
// the event cannot be written the response is replaced by a 503: no access
// goes unlogged. The routes fill in the event through the request's
// reqState (see protect).
func (a *app) audited(action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if action == "request" && isHealth(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		st := &reqState{action: action, resource: r.URL.Path, severity: audit.SeverityInfo}
		ctx = context.WithValue(ctx, stateKey{}, st)
		r = r.WithContext(ctx)
		bw := &bufferedWriter{header: w.Header(), base: w.Header().Clone()}

		func() {
			defer func() {
				if v := recover(); v != nil {
					a.errLog.Printf("request %s: panic: %v", audit.RequestIDFrom(ctx), v)
					st.reason = "internal error"
					bw.reset()
					fail(bw, r, http.StatusInternalServerError, codeInternal, "internal error; nothing was released")
				}
			}()
			if headerBytes(r) > maxHeaderBytes {
				fail(bw, r, http.StatusRequestHeaderFieldsTooLarge, codeHeadersTooLarge, "request header fields over 64 KiB")
				return
			}
			next.ServeHTTP(bw, r)
		}()

		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		if st.reason == "" && bw.status >= 300 && bw.status < 400 {
			st.reason = "redirect to " + bw.header.Get("Location")
		}
		span := trace.SpanFromContext(ctx)
		span.SetAttributes(attribute.String("refapp.action", st.action), attribute.Int("http.response.status_code", bw.status))
		ev := requestEvent(r, st, bw.status)
		if err := a.audit.Log(ctx, ev); err != nil {
			span.SetStatus(codes.Error, "audit failed")
			a.errLog.Printf("audit: %v (request %s refused)", err, audit.RequestIDFrom(ctx))
			for k := range w.Header() {
				if k != "Strict-Transport-Security" && k != "X-Request-Id" {
					w.Header().Del(k)
				}
			}
			var e apiError
			e.Error.Code = codeAuditFailed
			e.Error.Message = "the access could not be audited and was refused"
			e.RequestID = audit.RequestIDFrom(ctx)
			writeJSON(w, http.StatusServiceUnavailable, e)
			return
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// protect runs a route's pipeline: authenticate, rate limit, check the
// tenant, run the handler. It names the route's action on the request's
// audit event, which audited writes.
func (a *app) protect(action string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		st.action = action
		st.tenant = r.PathValue("tenant")
		a.pipeline(w, r, st, h)
	})
}

// maxAuditText bounds each text field that the request's audit event
// takes from the request (path, tenant, body fields, reasons quoting
// them), so that no request can make its event exceed
// audit.MaxEventSize and turn into an audit outage. A longer field is cut
// at a character boundary and named in the "refapp.truncated" attribute
// with its original length.
const maxAuditText = 512

// requestEvent is the request's single audit event. Request-derived text
// is recorded as received: invalid UTF-8 is escaped and marked by
// audit.Event.Normalize, overlong text is cut and marked here, and
// neither is ever a reason to refuse the event.
func requestEvent(r *http.Request, st *reqState, status int) audit.Event {
	ev := audit.Event{
		Action:     "refapp." + st.action,
		Resource:   st.resource,
		Outcome:    st.outcome,
		Reason:     st.reason,
		Severity:   st.severity,
		Attributes: append(append([]audit.Attr(nil), st.attrs...), audit.String("http.method", r.Method), audit.String("http.status", strconv.Itoa(status)), audit.Personal("client.address", clientIP(r))),
	}
	if ev.Outcome == "" {
		ev.Outcome = audit.OutcomeAllow
		if status >= 400 {
			ev.Outcome = audit.OutcomeDeny
		}
	}
	if st.p != nil {
		ev.Actor = audit.Actor{Subject: st.p.Subject, Tenant: st.p.Tenant}
	} else {
		// Unauthenticated: the event still needs an actor; the
		// tenant is the one the caller asked for.
		ev.Actor = audit.Actor{Subject: "anonymous", Tenant: orDash(st.tenant)}
	}
	var cut []string
	clip := func(name string, s *string) {
		if len(*s) <= maxAuditText {
			return
		}
		cut = append(cut, name+"="+strconv.Itoa(len(*s)))
		n := maxAuditText
		for n > 0 && !utf8.RuneStart((*s)[n]) {
			n--
		}
		*s = (*s)[:n]
	}
	clip("actor.tenant", &ev.Actor.Tenant)
	clip("resource", &ev.Resource)
	clip("reason", &ev.Reason)
	for i := range ev.Attributes {
		clip("attributes."+ev.Attributes[i].Key, &ev.Attributes[i].Value)
		clip("attributes."+strconv.Itoa(i)+".key", &ev.Attributes[i].Key)
	}
	if len(cut) > 0 {
		ev.Attributes = append(ev.Attributes, audit.String("refapp.truncated", strings.Join(cut, ",")))
	}
	return ev
}

func (a *app) pipeline(w http.ResponseWriter, r *http.Request, st *reqState, h http.HandlerFunc) {
	ctx := r.Context()
	p, ok := a.authenticate(r)
	if !ok {
		// Unauthenticated requests are limited per client address;
		// either answer refuses, and either is audited.
		client := clientIP(r)
		if !a.anon.allow(client) {
			a.mon.rateLimited(ctx, "anonymous", client)
			w.Header().Set("Retry-After", "1")
			fail(w, r, http.StatusTooManyRequests, codeRateLimited, "too many unauthenticated requests from this address")
			return
		}
		a.mon.authFailure(ctx, client)
		w.Header().Set("WWW-Authenticate", `Bearer realm="refapp"`)
		fail(w, r, http.StatusUnauthorized, codeUnauthenticated, "missing or invalid bearer token")
		return
	}
	st.p = &p
	ctx = withMFA(audit.WithActor(ctx, audit.Actor{Subject: p.Subject, Tenant: p.Tenant}), p, a.now())
	r = r.WithContext(ctx)
	if !a.limits.allow(p.Subject) {
		a.mon.rateLimited(ctx, p.Subject, clientIP(r))
		w.Header().Set("Retry-After", "1")
		fail(w, r, http.StatusTooManyRequests, codeRateLimited, "rate limit exceeded")
		return
	}
	if st.tenant != "" {
		if _, ok := a.tenants[st.tenant]; !ok {
			// Checked after authentication so that tenant names do not
			// leak to anonymous callers.
			fail(w, r, http.StatusNotFound, codeUnknownTenant, "no such tenant")
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	h(w, r)
}

// authenticate maps the bearer token to a principal. The comparison is on
// the token's SHA-256, so the map lookup reveals nothing useful about the
// stored tokens.
func (a *app) authenticate(r *http.Request) (principal, bool) {
	// Exactly one Authorization field: with two, a proxy and this
	// service could each act on a different one.
	hs := r.Header.Values("Authorization")
	if len(hs) != 1 {
		return principal{}, false
	}
	scheme, tok, ok := strings.Cut(hs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 512 {
		return principal{}, false
	}
	p, ok := a.tokens[tokenHash(strings.TrimSpace(tok))]
	return p, ok
}

// sameTenant refuses, with 403, a request for a tenant other than the
// principal's own: principals belong to exactly one tenant.
func (a *app) sameTenant(w http.ResponseWriter, r *http.Request, tenant string) bool {
	st := stateFrom(r.Context())
	if tenant != st.p.Tenant {
		st.reason = "cross-tenant: a principal of " + st.p.Tenant + " asked for " + orDash(tenant)
		fail(w, r, http.StatusForbidden, codeForbidden, "access denied")
		return false
	}
	return true
}

// authorize checks the tenant, then asks rbac whether the actor may
// perform action on object, and writes the denial. It reports whether the
// request may go on. An allow through a grant (four-eyes or break-glass)
// is recorded on the request's audit event.
func (a *app) authorize(w http.ResponseWriter, r *http.Request, object, action string) bool {
	st := stateFrom(r.Context())
	if !a.sameTenant(w, r, r.PathValue("tenant")) {
		return false
	}
	d, err := a.authz.decide(r.Context(), object, action)
	switch {
	case err == nil:
		if d.GrantID != "" {
			st.severity = audit.SeverityWarning
			st.attrs = append(st.attrs, audit.String("grant", d.GrantID), audit.String("rule", d.Rule))
		}
		return true
	case errors.Is(err, errMFARequired):
		st.reason = err.Error()
		fail(w, r, http.StatusForbidden, codeMFARequired, "this action requires a principal authenticated with MFA")
	case errors.Is(err, errDenied):
		st.reason = err.Error()
		fail(w, r, http.StatusForbidden, codeForbidden, "access denied")
	default:
		a.internal(w, r, err)
	}
	return false
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
