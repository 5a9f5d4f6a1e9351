package rbac

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

// Errors of the four-eyes and break-glass flows. Each refusal is also
// written to the audit log.
var (
	ErrSelfApproval   = errors.New("rbac: self-approval refused")
	ErrNotApprover    = errors.New("rbac: approver does not hold the approver role in the tenant")
	ErrRequestExpired = errors.New("rbac: access request expired")
	ErrNoSuchRequest  = errors.New("rbac: no such access request or grant")
	ErrNotPrivileged  = errors.New("rbac: role is not privileged in the tenant")
	ErrJustification  = errors.New("rbac: a reason or justification is required")
	ErrMFARequired    = errors.New("rbac: fresh mfa required")
	ErrNotEligible    = errors.New("rbac: principal may not break the glass in the tenant")
	ErrNoAlert        = errors.New("rbac: break-glass needs an alert hook")
	ErrAlert          = errors.New("rbac: break-glass alert failed")
	ErrTTL            = errors.New("rbac: ttl out of range")
)

// AccessRequest is a pending request for a privileged role in a tenant.
type AccessRequest struct {
	ID      string
	Actor   audit.Actor // the requester
	Role    string
	Reason  string
	Expires time.Time // the request, not the grant, expires then
}

// Grant is a time-bound role, created by [Enforcer.Approve] or
// [Enforcer.BreakGlass]. Decisions check Expires against the clock every
// time, so an expired grant denies even after a reload.
type Grant struct {
	ID         string
	Actor      audit.Actor // who holds the role
	Role       string
	Expires    time.Time
	BreakGlass bool
	// Note is the approver's subject for an approved grant and the
	// justification for a break-glass grant.
	Note string
}

const (
	notePrefixApproved   = "approved:"
	notePrefixBreakGlass = "breakglass:"
	maxReason            = 1024
)

func grantFromFields(f []string) (policy.Grant, error) {
	if len(f) != 6 {
		return policy.Grant{}, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("grant has %d fields, want 6", len(f))}
	}
	exp, err := time.Parse(time.RFC3339Nano, f[4])
	if err != nil {
		return policy.Grant{}, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("grant %s: expiry: %v", f[0], err)}
	}
	for _, s := range f[:4] {
		if err := policy.CheckName(s); err != nil {
			return policy.Grant{}, &PolicyError{Err: ErrName, Msg: fmt.Sprintf("grant %s: %q: %v", f[0], s, err)}
		}
	}
	return policy.Grant{ID: f[0], Sub: f[1], Dom: f[2], Role: f[3], Expires: exp, Note: f[5]}, nil
}

func grantFields(g policy.Grant) []string {
	return []string{g.ID, g.Sub, g.Dom, g.Role, g.Expires.UTC().Format(time.RFC3339Nano), g.Note}
}

func publicGrant(g policy.Grant) Grant {
	out := Grant{ID: g.ID, Actor: audit.Actor{Subject: g.Sub, Tenant: g.Dom}, Role: g.Role, Expires: g.Expires}
	switch {
	case strings.HasPrefix(g.Note, notePrefixBreakGlass):
		out.BreakGlass, out.Note = true, strings.TrimPrefix(g.Note, notePrefixBreakGlass)
	default:
		out.Note = strings.TrimPrefix(g.Note, notePrefixApproved)
	}
	return out
}

func requestFromFields(f []string) (AccessRequest, error) {
	if len(f) != 6 {
		return AccessRequest{}, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("access request has %d fields, want 6", len(f))}
	}
	exp, err := time.Parse(time.RFC3339Nano, f[4])
	if err != nil {
		return AccessRequest{}, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("access request %s: expiry: %v", f[0], err)}
	}
	for _, s := range f[:4] {
		if err := policy.CheckName(s); err != nil {
			return AccessRequest{}, &PolicyError{Err: ErrName, Msg: fmt.Sprintf("access request %s: %q: %v", f[0], s, err)}
		}
	}
	return AccessRequest{ID: f[0], Actor: audit.Actor{Subject: f[1], Tenant: f[2]}, Role: f[3], Expires: exp, Reason: f[5]}, nil
}

func requestFields(q AccessRequest) []string {
	return []string{q.ID, q.Actor.Subject, q.Actor.Tenant, q.Role, q.Expires.UTC().Format(time.RFC3339Nano), q.Reason}
}

func checkReason(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxReason || !utf8.ValidString(s) {
		return ErrJustification
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return ErrJustification
		}
	}
	return nil
}

func (e *Enforcer) actor(ctx context.Context) (audit.Actor, error) {
	a := audit.ActorFrom(ctx)
	if policy.CheckName(a.Subject) != nil || policy.CheckName(a.Tenant) != nil {
		return a, fmt.Errorf("%w: no valid actor in context", ErrDenied)
	}
	return a, nil
}

func (e *Enforcer) mfaFresh(ctx context.Context, now time.Time) bool {
	at := MFAFrom(ctx)
	return !at.IsZero() && !at.After(now.Add(time.Minute)) && now.Sub(at) <= e.cfg.MFAMaxAge
}

// refuse writes a deny event for a four-eyes or break-glass step and
// returns err.
func (e *Enforcer) refuse(ctx context.Context, ev audit.Event, err error) error {
	ev.Outcome, ev.Reason = audit.OutcomeDeny, err.Error()
	if ev.Severity == "" {
		ev.Severity = audit.SeverityWarning
	}
	if lerr := e.log(ctx, ev); lerr != nil {
		return errors.Join(err, lerr)
	}
	return err
}

// RequestAccess asks, for the actor in ctx, for the privileged role in
// the actor's tenant. Another principal holding the approver role in that
// tenant must approve it ([Enforcer.Approve]) before RequestTTL passes.
// The reason is required and is kept with the request.
func (e *Enforcer) RequestAccess(ctx context.Context, role, reason string) (AccessRequest, error) {
	now := e.now()
	a := audit.ActorFrom(ctx)
	ev := audit.Event{Time: now, Actor: a, Action: "rbac.access.request", Resource: role,
		Attributes: []audit.Attr{audit.String("reason", reason)}}
	if _, err := e.actor(ctx); err != nil {
		return AccessRequest{}, e.refuse(ctx, ev, err)
	}
	if err := checkReason(reason); err != nil {
		return AccessRequest{}, e.refuse(ctx, ev, err)
	}
	if err := policy.CheckName(role); err != nil {
		return AccessRequest{}, e.refuse(ctx, ev, fmt.Errorf("%w: role %q", ErrNotPrivileged, role))
	}
	ix := e.ix.Load()
	if ix == nil {
		return AccessRequest{}, e.refuse(ctx, ev, ErrUnavailable)
	}
	if !ix.Privileged(role, a.Tenant) {
		return AccessRequest{}, e.refuse(ctx, ev, fmt.Errorf("%w: %q in %q", ErrNotPrivileged, role, a.Tenant))
	}
	q := AccessRequest{ID: newID("req"), Actor: a, Role: role, Reason: strings.TrimSpace(reason), Expires: now.Add(e.cfg.RequestTTL)}
	ev.Attributes = append(ev.Attributes, audit.String("request", q.ID), audit.String("expires", q.Expires.UTC().Format(time.RFC3339)))
	ev.Severity = audit.SeverityNotice
	err := e.change(ctx, ev, nil, delta{add: []Row{{Ptype: "p3", Fields: requestFields(q)}}})
	if err != nil {
		return AccessRequest{}, err
	}
	return q, nil
}

// Pending lists the access requests of tenant that have not expired.
func (e *Enforcer) Pending(tenant string) ([]AccessRequest, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	reqs, err := e.readRequests()
	if err != nil {
		return nil, err
	}
	now := e.now()
	var out []AccessRequest
	for _, q := range reqs {
		if q.Actor.Tenant == tenant && now.Before(q.Expires) {
			out = append(out, q)
		}
	}
	return out, nil
}

func (e *Enforcer) findRequest(id string) (AccessRequest, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	reqs, err := e.readRequests()
	if err != nil {
		return AccessRequest{}, false, err
	}
	for _, q := range reqs {
		if q.ID == id {
			return q, true, nil
		}
	}
	return AccessRequest{}, false, nil
}

// Approve approves the access request id on behalf of the actor in ctx,
// whose MFA (WithMFA) must be fresh. The approver must be a different
// principal (compared without regard to case) in the same tenant, holding
// the approver role there through the policy. The grant lasts ttl; zero
// means Config.GrantTTL, and more than Config.MaxGrantTTL is refused.
// The request is consumed with the grant in one store transaction: of
// concurrent approvals, on any instance, one succeeds and the others fail
// with [ErrNoSuchRequest].
func (e *Enforcer) Approve(ctx context.Context, id string, ttl time.Duration) (Grant, error) {
	now := e.now()
	a := audit.ActorFrom(ctx)
	ev := audit.Event{Time: now, Actor: a, Action: "rbac.access.approve", Resource: id}
	if _, err := e.actor(ctx); err != nil {
		return Grant{}, e.refuse(ctx, ev, err)
	}
	if ttl == 0 {
		ttl = e.cfg.GrantTTL
	}
	if ttl < 0 || ttl > e.cfg.MaxGrantTTL {
		return Grant{}, e.refuse(ctx, ev, fmt.Errorf("%w: %v not in (0, %v]", ErrTTL, ttl, e.cfg.MaxGrantTTL))
	}
	if !e.mfaFresh(ctx, now) {
		return Grant{}, e.refuse(ctx, ev, ErrMFARequired)
	}
	q, ok, err := e.findRequest(id)
	if err != nil {
		return Grant{}, e.refuse(ctx, ev, err)
	}
	if !ok {
		return Grant{}, e.refuse(ctx, ev, ErrNoSuchRequest)
	}
	ev.Attributes = []audit.Attr{audit.String("requester", q.Actor.Subject), audit.String("role", q.Role)}
	if !now.Before(q.Expires) {
		// Drop the expired request, audited, then refuse.
		if err := e.change(ctx, requestExpired(q, now), nil, delta{del: []Row{{Ptype: "p3", Fields: requestFields(q)}}, what: "access request"}); err != nil {
			return Grant{}, errors.Join(ErrRequestExpired, err)
		}
		return Grant{}, e.refuse(ctx, ev, ErrRequestExpired)
	}
	if a.Tenant != q.Actor.Tenant {
		return Grant{}, e.refuse(ctx, ev, fmt.Errorf("%w: approver's tenant differs from the request's", ErrDenied))
	}
	if strings.EqualFold(a.Subject, q.Actor.Subject) {
		return Grant{}, e.refuse(ctx, ev, ErrSelfApproval)
	}
	ix := e.ix.Load()
	if ix == nil {
		return Grant{}, e.refuse(ctx, ev, ErrUnavailable)
	}
	if !ix.HasRole(a.Subject, e.cfg.ApproverRole, a.Tenant) {
		return Grant{}, e.refuse(ctx, ev, ErrNotApprover)
	}
	g := policy.Grant{ID: newID("grant"), Sub: q.Actor.Subject, Dom: q.Actor.Tenant, Role: q.Role,
		Expires: now.Add(ttl), Note: notePrefixApproved + a.Subject}
	ev.Attributes = append(ev.Attributes, audit.String("grant", g.ID), audit.String("expires", g.Expires.UTC().Format(time.RFC3339)))
	ev.Severity = audit.SeverityNotice
	err = e.change(ctx, ev, func() error {
		// Re-check under the lock: the request may have been approved
		// meanwhile.
		reqs, err := e.readRequests()
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if r.ID == id {
				return nil
			}
		}
		return ErrNoSuchRequest
	}, delta{del: []Row{{Ptype: "p3", Fields: requestFields(q)}}, add: []Row{{Ptype: "p2", Fields: grantFields(g)}}, missing: ErrNoSuchRequest})
	if err != nil {
		return Grant{}, err
	}
	return publicGrant(g), nil
}

// Revoke ends grant id before its expiry.
func (e *Enforcer) Revoke(ctx context.Context, id string) error {
	ev := audit.Event{Action: "rbac.grant.revoke", Resource: id, Severity: audit.SeverityNotice}
	g, ok, err := e.findGrant(id)
	if err != nil {
		return err
	}
	if !ok {
		return e.refuse(ctx, ev, ErrNoSuchRequest)
	}
	return e.change(ctx, ev, nil, delta{del: []Row{{Ptype: "p2", Fields: grantFields(g)}}, missing: ErrNoSuchRequest})
}

func (e *Enforcer) findGrant(id string) (policy.Grant, bool, error) {
	gs, err := e.grants()
	if err != nil {
		return policy.Grant{}, false, err
	}
	for _, g := range gs {
		if g.ID == id {
			return g, true, nil
		}
	}
	return policy.Grant{}, false, nil
}

func (e *Enforcer) grants() ([]policy.Grant, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	gs, err := e.readGrants()
	return gs, err
}

// Grants lists the grants of tenant that are still in force.
func (e *Enforcer) Grants(tenant string) ([]Grant, error) {
	gs, err := e.grants()
	if err != nil {
		return nil, err
	}
	now := e.now()
	var out []Grant
	for _, g := range gs {
		if g.Dom == tenant && now.Before(g.Expires) {
			out = append(out, publicGrant(g))
		}
	}
	return out, nil
}

// BreakGlass elevates the actor in ctx to the privileged role in its
// tenant at once, without approval, for Config.BreakGlassTTL. It is the
// emergency path and is loud: the actor must hold the break-glass role in
// the tenant and have fresh MFA, the justification is required, a
// critical audit event is written and Config.Alert is called (if the alert
// fails, the grant is withdrawn and [ErrAlert] returned). The grant stays
// listed by [Enforcer.BreakGlassReview] after it expires, until
// [Enforcer.CloseReview].
func (e *Enforcer) BreakGlass(ctx context.Context, role, justification string) (Grant, error) {
	now := e.now()
	a := audit.ActorFrom(ctx)
	ev := audit.Event{Time: now, Actor: a, Action: "rbac.breakglass", Resource: role, Severity: audit.SeverityCritical,
		Attributes: []audit.Attr{audit.String("justification", justification)}}
	if e.cfg.Alert == nil {
		return Grant{}, e.refuse(ctx, ev, ErrNoAlert)
	}
	if _, err := e.actor(ctx); err != nil {
		return Grant{}, e.refuse(ctx, ev, err)
	}
	if err := checkReason(justification); err != nil {
		return Grant{}, e.refuse(ctx, ev, err)
	}
	if !e.mfaFresh(ctx, now) {
		return Grant{}, e.refuse(ctx, ev, ErrMFARequired)
	}
	ix := e.ix.Load()
	if ix == nil {
		return Grant{}, e.refuse(ctx, ev, ErrUnavailable)
	}
	if !ix.HasRole(a.Subject, e.cfg.BreakGlassRole, a.Tenant) {
		return Grant{}, e.refuse(ctx, ev, ErrNotEligible)
	}
	if policy.CheckName(role) != nil || !ix.Privileged(role, a.Tenant) {
		return Grant{}, e.refuse(ctx, ev, fmt.Errorf("%w: %q in %q", ErrNotPrivileged, role, a.Tenant))
	}
	g := policy.Grant{ID: newID("bg"), Sub: a.Subject, Dom: a.Tenant, Role: role,
		Expires: now.Add(e.cfg.BreakGlassTTL), Note: notePrefixBreakGlass + strings.TrimSpace(justification)}
	ev.Attributes = append(ev.Attributes, audit.String("grant", g.ID), audit.String("expires", g.Expires.UTC().Format(time.RFC3339)))
	err := e.change(ctx, ev, nil, delta{add: []Row{{Ptype: "p2", Fields: grantFields(g)}}})
	if err != nil {
		return Grant{}, err
	}
	ev.Outcome = audit.OutcomeAllow
	if aerr := e.cfg.Alert(ctx, ev); aerr != nil {
		wev := audit.Event{Action: "rbac.breakglass.withdraw", Actor: a, Resource: g.ID, Severity: audit.SeverityCritical,
			Reason: "alert failed: " + aerr.Error()}
		werr := e.change(ctx, wev, nil, delta{del: []Row{{Ptype: "p2", Fields: grantFields(g)}}, what: "grant"})
		return Grant{}, errors.Join(fmt.Errorf("%w: %v", ErrAlert, aerr), werr)
	}
	return publicGrant(g), nil
}

// BreakGlassReview lists every break-glass grant on record, expired or
// not, oldest expiry first, for post-incident review.
func (e *Enforcer) BreakGlassReview() ([]Grant, error) {
	gs, err := e.grants()
	if err != nil {
		return nil, err
	}
	var out []Grant
	for _, g := range gs {
		if pg := publicGrant(g); pg.BreakGlass {
			out = append(out, pg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out, nil
}

// CloseReview records the post-incident review of break-glass grant id,
// with the reviewer (the actor in ctx) and a note, and removes it from
// the review list. A grant still in force is refused: revoke it first.
func (e *Enforcer) CloseReview(ctx context.Context, id, note string) error {
	now := e.now()
	ev := audit.Event{Time: now, Action: "rbac.breakglass.review", Resource: id, Severity: audit.SeverityNotice,
		Attributes: []audit.Attr{audit.String("note", note)}}
	if _, err := e.actor(ctx); err != nil {
		return e.refuse(ctx, ev, err)
	}
	if err := checkReason(note); err != nil {
		return e.refuse(ctx, ev, err)
	}
	g, ok, err := e.findGrant(id)
	if err != nil {
		return err
	}
	if !ok || !strings.HasPrefix(g.Note, notePrefixBreakGlass) {
		return e.refuse(ctx, ev, ErrNoSuchRequest)
	}
	if now.Before(g.Expires) {
		return e.refuse(ctx, ev, fmt.Errorf("%w: grant still in force", ErrDenied))
	}
	return e.change(ctx, ev, nil, delta{del: []Row{{Ptype: "p2", Fields: grantFields(g)}}, missing: ErrNoSuchRequest})
}

// requestExpired is the "rbac.access.expire" event of dropping the
// expired access request q.
func requestExpired(q AccessRequest, now time.Time) audit.Event {
	return audit.Event{Time: now, Actor: q.Actor, Action: "rbac.access.expire", Resource: q.ID, Severity: audit.SeverityNotice,
		Attributes: []audit.Attr{audit.String("role", q.Role), audit.String("expires", q.Expires.UTC().Format(time.RFC3339))}}
}

// PruneReport is the result of [Enforcer.PruneExpired].
type PruneReport struct {
	// Grants and Requests count the expired grants and access requests
	// removed from the store.
	Grants, Requests int
	// BreakGlassKept counts the expired break-glass grants kept because
	// their post-incident review is still open ([Enforcer.CloseReview]).
	BreakGlassKept int
}

// PruneExpired removes from the policy store every grant and access
// request whose expiry is at or before the clock (Config.Now), so that
// the store and policy dumps do not fill with dead rows. Decisions never
// depend on it: an expired grant denies whether or not it was pruned.
//
// Expired break-glass grants are kept and counted in the report: they
// are the evidence for the post-incident review and stay listed by
// [Enforcer.BreakGlassReview] until [Enforcer.CloseReview] removes them.
//
// Each removal is audited, before the row is removed, as
// "rbac.grant.expire" or "rbac.access.expire" (the actor is the holder or
// requester), and each run ends with one "rbac.policy.prune" event with
// the counts. If an audit write fails, PruneExpired stops and returns the
// error: what could not be audited stays in the store, and the report
// counts what was removed before. A cancelled ctx stops it the same way.
//
// The removals go through the same store as every other change, each
// announced to the other instances. It is
// idempotent, safe to call concurrently with decisions and changes, and
// meant to be called periodically, for example from a ticker. With
// several instances, run it on one: two runs at the same moment on
// different instances remove each row once but may both audit it.
func (e *Enforcer) PruneExpired(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	if e.closed.Load() {
		return rep, ErrEnforcerClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	grants, err := e.readGrants()
	if err != nil {
		return rep, err
	}
	reqs, err := e.readRequests()
	if err != nil {
		return rep, err
	}

	type row struct {
		ptype  string
		fields []string
		ev     audit.Event
	}
	var rows []row
	for _, g := range grants {
		if now.Before(g.Expires) {
			continue
		}
		if strings.HasPrefix(g.Note, notePrefixBreakGlass) {
			rep.BreakGlassKept++
			continue
		}
		rows = append(rows, row{"p2", grantFields(g), audit.Event{Time: now, Actor: audit.Actor{Subject: g.Sub, Tenant: g.Dom},
			Action: "rbac.grant.expire", Resource: g.ID, Outcome: audit.OutcomeAllow, Severity: audit.SeverityNotice,
			Attributes: []audit.Attr{audit.String("role", g.Role), audit.String("expires", g.Expires.UTC().Format(time.RFC3339))}}})
	}
	for _, q := range reqs {
		if now.Before(q.Expires) {
			continue
		}
		ev := requestExpired(q, now)
		ev.Outcome = audit.OutcomeAllow
		rows = append(rows, row{"p3", requestFields(q), ev})
	}

	// Audit each row, then remove it; stop at the first failure.
	var stop error
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			stop = err
			break
		}
		if err := e.log(ctx, r.ev); err != nil {
			stop = err
			break
		}
		deleted, _, err := e.apply(ctx, []Row{{Ptype: r.ptype, Fields: r.fields}}, nil)
		if err != nil {
			xev := r.ev
			xev.Outcome, xev.Reason, xev.Severity = audit.OutcomeError, err.Error(), audit.SeverityWarning
			_ = e.log(ctx, xev)
			stop = err
			break
		}
		if deleted == 0 {
			// Another instance pruned it meanwhile.
			continue
		}
		if r.ptype == "p2" {
			rep.Grants++
		} else {
			rep.Requests++
		}
	}

	sev := audit.SeverityInfo
	if rep.Grants+rep.Requests > 0 {
		sev = audit.SeverityNotice
	}
	sum := audit.Event{Time: now, Actor: audit.ActorFrom(ctx), Action: "rbac.policy.prune", Outcome: audit.OutcomeAllow, Severity: sev,
		Attributes: []audit.Attr{audit.String("grants", strconv.Itoa(rep.Grants)), audit.String("requests", strconv.Itoa(rep.Requests)),
			audit.String("breakglass_kept", strconv.Itoa(rep.BreakGlassKept))}}
	if rep.Grants+rep.Requests > 0 {
		// The store announced each removal to the other instances; make
		// them take effect here too, even if ctx was cancelled meanwhile.
		if err := e.reindex(); err != nil {
			sum.Outcome, sum.Reason, sum.Severity = audit.OutcomeError, "rebuild: "+err.Error(), audit.SeverityCritical
			_ = e.log(ctx, sum)
			return rep, errors.Join(stop, err)
		}
	}
	if stop != nil {
		// Best effort: the logger may be what failed.
		sum.Outcome, sum.Reason, sum.Severity = audit.OutcomeError, "stopped: "+stop.Error(), audit.SeverityWarning
		_ = e.log(ctx, sum)
		return rep, stop
	}
	return rep, e.log(ctx, sum)
}
