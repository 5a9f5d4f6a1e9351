package rbac

import (
	"fmt"
	"net/http"

	"github.com/tomkit/tomkit/audit"
)

// MapFunc maps an HTTP request to the decision to make: the actor (its
// subject and tenant), the object and the action, and the MFA time. It
// returns an error when the request cannot be mapped; the middleware then
// refuses it.
type MapFunc func(r *http.Request) (Request, error)

// Middleware returns a handler that lets a request through to next only
// when m maps it and the Enforcer allows it. It fails closed: a mapping
// error, a panic in m, a deny or an audit failure all answer 403 Forbidden
// with no detail, and the decision log holds the reason. When the request's
// context already carries an actor (from authentication middleware) and m
// maps to a different one, the request is denied as a mismatch. next sees
// the actor and the MFA time in its context.
func (e *Enforcer) Middleware(m MapFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := safeMap(m, r)
		ctx := r.Context()
		if err != nil {
			_ = e.log(ctx, audit.Event{Action: "rbac.decide", Actor: audit.ActorFrom(ctx), Resource: r.URL.Path,
				Outcome: audit.OutcomeDeny, Severity: audit.SeverityWarning, Reason: "request mapping failed: " + err.Error()})
			forbid(w)
			return
		}
		d, err := e.Decide(ctx, req)
		if err != nil || !d.Allowed {
			forbid(w)
			return
		}
		a := req.Actor
		if a == (audit.Actor{}) {
			a = audit.ActorFrom(ctx)
		}
		ctx = audit.WithActor(ctx, a)
		if !req.MFAVerifiedAt.IsZero() {
			ctx = WithMFA(ctx, req.MFAVerifiedAt)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func safeMap(m MapFunc, r *http.Request) (req Request, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	if m == nil {
		return Request{}, fmt.Errorf("no MapFunc")
	}
	return m(r)
}

func forbid(w http.ResponseWriter) {
	http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
}
