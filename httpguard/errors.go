package httpguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/section203"
)

// Stable error codes of the JSON error body. Codes are only ever added.
const (
	CodeBadRequest       = "bad_request"        // 400
	CodeUnauthenticated  = "unauthenticated"    // 401, with WWW-Authenticate
	CodeForbidden        = "forbidden"          // 403: rbac deny, another tenant
	CodeMFARequired      = "mfa_required"       // 403: step up to MFA and retry
	CodeFourEyes         = "four_eyes_required" // 403: the approver must differ from the requester
	CodeSection203       = "section203_refused" // 403: refused by the § 203 guard
	CodeNotFound         = "not_found"          // 404
	CodeUnknownTenant    = "unknown_tenant"     // 404: no such tenant (see Config.KnownTenant)
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeTooLarge         = "too_large"          // 413
	CodeHeadersTooLarge  = "headers_too_large"  // 431: see Config.MaxHeaderBytes
	CodeRateLimited      = "rate_limited"       // 429, with Retry-After
	CodeInternal         = "internal"           // 500: nothing was released
	CodeAuditUnavailable = "audit_unavailable"  // 503: the access could not be audited
)

// Sentinels a handler may return (or wrap) for the common answers.
var (
	ErrBadRequest = errors.New("httpguard: bad request")
	ErrForbidden  = errors.New("httpguard: forbidden")
	ErrNotFound   = errors.New("httpguard: not found")
)

// Error is an error with its response: a handler returns one for an
// answer that no sentinel names. Err, if set, is wrapped (and becomes the
// audit reason); Message is what the client reads.
type Error struct {
	Status        int
	Code, Message string
	Err           error
}

// Error returns Err's text, or the code and message.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "httpguard: " + e.Code + ": " + e.Message
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Mapping maps errors matching Err (errors.Is) to a response.
type Mapping struct {
	Err           error
	Status        int
	Code, Message string
}

// defaults is checked after Config.Errors. A denial that needs MFA wraps
// both rbac.ErrMFARequired and rbac.ErrDenied, so it comes first.
var defaults = []Mapping{
	{ErrBadRequest, http.StatusBadRequest, CodeBadRequest, "bad request"},
	{ErrForbidden, http.StatusForbidden, CodeForbidden, "access denied"},
	{ErrNotFound, http.StatusNotFound, CodeNotFound, "not found"},
	{rbac.ErrMFARequired, http.StatusForbidden, CodeMFARequired, "this action requires a principal authenticated with MFA"},
	{rbac.ErrSelfApproval, http.StatusForbidden, CodeFourEyes, "the approver must not be the requester"},
	{rbac.ErrDenied, http.StatusForbidden, CodeForbidden, "access denied"},
	{rbac.ErrObject, http.StatusForbidden, CodeForbidden, "access denied"},
	{rbac.ErrNotApprover, http.StatusForbidden, CodeForbidden, "access denied"},
	{rbac.ErrNotEligible, http.StatusForbidden, CodeForbidden, "access denied"},
	{rbac.ErrNotPrivileged, http.StatusForbidden, CodeForbidden, "access denied"},
	{rbac.ErrNoSuchRequest, http.StatusNotFound, CodeNotFound, "not found"},
	{rbac.ErrRequestExpired, http.StatusNotFound, CodeNotFound, "not found"},
	{rbac.ErrJustification, http.StatusBadRequest, CodeBadRequest, "a reason is required"},
	{rbac.ErrTTL, http.StatusBadRequest, CodeBadRequest, "duration out of range"},
	{section203.ErrRefused, http.StatusForbidden, CodeSection203, "refused by the § 203 guard"},
	{retention.ErrNotFound, http.StatusNotFound, CodeNotFound, "not found"},
}

// apiError is the JSON body of every error response.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// unauthenticated and rateLimited are the guard's own refusals.
type unauthenticated struct{ why string }

func (e *unauthenticated) Error() string { return "unauthenticated: " + e.why }

type rateLimited struct {
	kind  string
	retry time.Duration
}

func (e *rateLimited) Error() string { return "rate limited per " + e.kind }

func (g *Guard) mapError(err error) (status int, code, msg string) {
	var (
		ue *unauthenticated
		rl *rateLimited
		ge *Error
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ue):
		return http.StatusUnauthorized, CodeUnauthenticated, "missing or invalid bearer token"
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded"
	case errors.As(err, &ge) && ge.Status >= 400 && ge.Status <= 599 && ge.Code != "":
		return ge.Status, ge.Code, ge.Message
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, CodeTooLarge, "request body over " + strconv.FormatInt(mb.Limit, 10) + " bytes"
	case errors.Is(err, errPanic):
		return http.StatusInternalServerError, CodeInternal, "internal error; nothing was released"
	}
	for _, tbl := range [][]Mapping{g.cfg.Errors, defaults} {
		for _, m := range tbl {
			if m.Err != nil && errors.Is(err, m.Err) {
				return m.Status, m.Code, m.Message
			}
		}
	}
	return http.StatusInternalServerError, CodeInternal, "internal error; nothing was released"
}

// writeError writes err's JSON response and records it on the request's
// audit event.
func (g *Guard) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := g.mapError(err)
	ev := AuditEvent(r.Context())
	if ev.Reason == "" {
		ev.Reason = err.Error()
	}
	if ev.Severity == "" && (status == http.StatusUnauthorized || status == http.StatusTooManyRequests) {
		ev.Severity = audit.SeverityWarning
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+g.cfg.Realm+`"`)
	case http.StatusTooManyRequests:
		secs := 1
		var rl *rateLimited
		if errors.As(err, &rl) && rl.retry > time.Second {
			secs = int(math.Ceil(rl.retry.Seconds()))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	var e apiError
	e.Error.Code = code
	e.Error.Message = msg
	e.RequestID = audit.RequestIDFrom(r.Context())
	writeJSON(w, status, &e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// buffer holds a response until its audit event is durable.
type buffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *buffer) Header() http.Header { return b.header }

func (b *buffer) WriteHeader(code int) {
	if code < 100 || code > 999 {
		// As net/http does; the guard turns the panic into a 500.
		panic("httpguard: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		return // informational responses are not forwarded
	}
	if b.status == 0 {
		b.status = code
	}
}

func (b *buffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// reset discards what was written, headers included.
func (b *buffer) reset() {
	b.header = http.Header{}
	b.status = 0
	b.body.Reset()
}

// JSON writes v as a JSON response with status. It is the success
// counterpart of a returned error.
func JSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}
