package rbac

import (
	"context"
	"strings"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

type mfaKey struct{}

// WithMFA returns a ctx that records when the principal's MFA was last
// verified. [Enforcer.Check] and [Enforcer.Decide] (for a Request whose
// MFAVerifiedAt is zero) read it. A ctx without it means "no MFA", which
// denies every privileged permission.
func WithMFA(ctx context.Context, verifiedAt time.Time) context.Context {
	return context.WithValue(ctx, mfaKey{}, verifiedAt)
}

// MFAFrom returns the MFA verification time recorded by [WithMFA], or
// the zero time.
func MFAFrom(ctx context.Context) time.Time {
	t, _ := ctx.Value(mfaKey{}).(time.Time)
	return t
}

// Request is one access decision to make.
type Request struct {
	// Actor is who asks, in which tenant. Zero means the actor in ctx
	// (audit.ActorFrom). When both are set they must be equal, or the
	// request is denied as a tenant (or subject) mismatch.
	Actor audit.Actor
	// Object and Action are what is asked for.
	Object, Action string
	// MFAVerifiedAt is when the actor last passed MFA. Zero means the
	// time in ctx (WithMFA), and if there is none, no MFA.
	MFAVerifiedAt time.Time
}

// Decision is the answer to a Request.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Reason says why, in a few words: "allowed by rule", "explicit
	// deny", "no matching allow (implicit deny)", "mfa required: ...",
	// "unknown action", "empty tenant", ...
	Reason string
	// Rule is the policy line that decided, as Casbin's EnforceEx would
	// explain it ("p, admin, acme, /billing/*, write, allow, mfa"). Empty
	// for an implicit deny.
	Rule string
	// Privileged reports an allow that needed MFA or came from a grant.
	Privileged bool
	// GrantID names the four-eyes or break-glass grant that supplied the
	// deciding role, if any.
	GrantID string
}

// Reasons for denials decided before the policy is consulted.
const (
	reasonEmptySubject = "empty subject"
	reasonEmptyTenant  = "empty tenant"
	reasonMismatch     = "tenant or subject mismatch between request and context"
	reasonBadName      = "invalid subject, tenant or action"
	reasonBadObject    = "object is not canonical (traversal, empty segment, wildcard or encoding)"
	reasonUnavailable  = "policy unavailable"
	reasonMFAFuture    = "mfa verification time is in the future"
)

// Decide decides req. Every deny and every privileged allow is written to
// the audit Logger with the deciding rule and the reason; if that fails,
// Decide returns a deny and the error (an access that cannot be logged is
// not granted). A non-privileged allow is not logged.
func (e *Enforcer) Decide(ctx context.Context, req Request) (Decision, error) {
	ctxActor := audit.ActorFrom(ctx)
	a := req.Actor
	if a == (audit.Actor{}) {
		a = ctxActor
	}
	mfaAt := req.MFAVerifiedAt
	if mfaAt.IsZero() {
		mfaAt = MFAFrom(ctx)
	}
	now := e.now()
	d := e.decide(a, ctxActor, req.Object, req.Action, mfaAt, now)
	if d.Allowed && !d.Privileged {
		return d, nil
	}
	ev := audit.Event{
		Time:     now,
		Actor:    a,
		Action:   "rbac.decide",
		Resource: req.Object,
		Outcome:  audit.OutcomeDeny,
		Reason:   d.Reason,
		Severity: audit.SeverityNotice,
		Attributes: []audit.Attr{
			audit.String("action", req.Action),
			audit.String("rule", d.Rule),
		},
	}
	if d.GrantID != "" {
		ev.Attributes = append(ev.Attributes, audit.String("grant", d.GrantID))
	}
	if d.Allowed {
		ev.Outcome, ev.Severity = audit.OutcomeAllow, audit.SeverityInfo
	}
	if err := e.log(ctx, ev); err != nil {
		return Decision{Reason: "audit failed", Rule: d.Rule}, err
	}
	return d, nil
}

func (e *Enforcer) decide(a, ctxActor audit.Actor, obj, act string, mfaAt, now time.Time) Decision {
	switch {
	case a.Subject == "":
		return Decision{Reason: reasonEmptySubject}
	case a.Tenant == "":
		return Decision{Reason: reasonEmptyTenant}
	case ctxActor != (audit.Actor{}) && ctxActor != a:
		return Decision{Reason: reasonMismatch}
	}
	if policy.CheckName(a.Subject) != nil || policy.CheckName(a.Tenant) != nil || policy.CheckName(act) != nil {
		return Decision{Reason: reasonBadName}
	}
	if policy.CheckObject(obj, false) != nil {
		return Decision{Reason: reasonBadObject}
	}
	ix := e.ix.Load()
	if ix == nil {
		return Decision{Reason: reasonUnavailable}
	}
	fresh := false
	if !mfaAt.IsZero() {
		if mfaAt.After(now.Add(time.Minute)) {
			return Decision{Reason: reasonMFAFuture}
		}
		fresh = now.Sub(mfaAt) <= e.cfg.MFAMaxAge
	}
	r := ix.Decide(a.Subject, a.Tenant, obj, act, fresh, now)
	d := Decision{Allowed: r.Allow, Reason: r.Reason, Privileged: r.Privileged}
	if r.Rule != nil {
		d.Rule = r.Rule.Text
	}
	if r.Grant != nil {
		d.GrantID = r.Grant.ID
		d.Privileged = r.Allow
	}
	return d
}

// Check decides whether the actor in ctx (audit.ActorFrom) may perform
// action on object, with the MFA time from ctx (WithMFA). It returns nil
// for an allow. A deny is an error that wraps [ErrDenied] and says why;
// it also wraps [ErrMFARequired] when a privileged permission would allow
// with fresh MFA (answer with a step-up), [ErrObject] when the object is
// not canonical (see docs/RBAC.md), [ErrUnavailable] when no
// valid policy is loaded, and the audit error when the decision could not
// be logged, so handlers can branch with errors.Is.
func (e *Enforcer) Check(ctx context.Context, object, action string) error {
	d, err := e.Decide(ctx, Request{Object: object, Action: action})
	if err != nil {
		return &denied{reason: strings.TrimPrefix(err.Error(), "rbac: "), cause: err}
	}
	if !d.Allowed {
		de := &denied{reason: d.Reason}
		switch d.Reason {
		case reasonBadObject:
			de.cause = ErrObject
		case policy.ReasonMFA:
			de.cause = ErrMFARequired
		case reasonUnavailable:
			de.cause = ErrUnavailable
		}
		return de
	}
	return nil
}

// denied is the error of a deny: it wraps ErrDenied and, when there is
// one, the more specific cause.
type denied struct {
	reason string
	cause  error
}

func (d *denied) Error() string { return ErrDenied.Error() + ": " + d.reason }

func (d *denied) Unwrap() []error {
	if d.cause == nil {
		return []error{ErrDenied}
	}
	return []error{ErrDenied, d.cause}
}
