package rbac

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

//go:embed model.conf
var modelText string

// Model returns the Casbin model tomkit enforces: RBAC with domains (the
// domain is the tenant, compared for equality in the matcher), a
// deny-override effect, and MFA-marked permissions that match only a
// request whose MFA is fresh. A plain casbin.Enforcer built on it decides
// as tomkit does, except where tomkit is deliberately stricter (see the
// package documentation).
func Model() string { return modelText }

// Defaults for the zero values of [Config].
const (
	DefaultMFAMaxAge     = 12 * time.Hour
	DefaultGrantTTL      = time.Hour
	DefaultMaxGrantTTL   = 8 * time.Hour
	DefaultRequestTTL    = 24 * time.Hour
	DefaultBreakGlassTTL = 15 * time.Minute
	// MaxBreakGlassTTL caps Config.BreakGlassTTL.
	MaxBreakGlassTTL    = time.Hour
	DefaultMaxRoleDepth = 4
	// MaxRoleDepth caps Config.MaxRoleDepth; Casbin's own role manager
	// stops at 10 levels.
	MaxRoleDepth = 10
)

// Config configures an [Enforcer]. Its zero value is not usable only
// because Logger is required; every other zero value is a safe default.
// A Config must not be modified after it has been passed to [New].
type Config struct {
	// Logger receives the decision log and every four-eyes, break-glass
	// and policy-change event. Required: New fails with
	// [audit.ErrNoLogger] without one.
	Logger audit.Logger

	// Policy is the policy text (see the package documentation for its
	// format), typically embedded in the binary with go:embed. Without
	// Postgres it is the whole policy, held in memory; with Postgres it
	// seeds an empty table and is otherwise ignored. Nil means an empty
	// policy, which denies everything.
	Policy []byte

	// Postgres, when non-nil, stores the policy, grants and access
	// requests in the table tomkit_rbac_rule through Casbin's gorm
	// adapter, and propagates every change to the other instances with
	// LISTEN/NOTIFY on the channel tomkit_rbac. The pool must stay open
	// until Close. Its connections' search_path selects the schema.
	Postgres *pgxpool.Pool

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// MFAMaxAge is how long an MFA verification stays fresh for
	// privileged (MFA-marked) permissions. Zero means 12 hours.
	MFAMaxAge time.Duration

	// GrantTTL is the lifetime of an approved grant when the request
	// asked for none; MaxGrantTTL caps what a request may ask for. Zero
	// means 1 hour and 8 hours.
	GrantTTL, MaxGrantTTL time.Duration

	// RequestTTL is how long an access request waits for approval. Zero
	// means 24 hours.
	RequestTTL time.Duration

	// BreakGlassTTL is the lifetime of a break-glass elevation. Zero
	// means 15 minutes; values above [MaxBreakGlassTTL] are refused.
	BreakGlassTTL time.Duration

	// ApproverRole is the role that may approve access requests in its
	// tenant; BreakGlassRole is the role that may break the glass. Empty
	// means "approver" and "breakglass". Both must be held through the
	// policy's g lines, never through a grant.
	ApproverRole, BreakGlassRole string

	// Alert is called, after the critical audit event, for every
	// break-glass elevation. Nil means break-glass is unavailable
	// ([ErrNoAlert]): an unannounced emergency access is not allowed.
	Alert func(ctx context.Context, e audit.Event) error

	// MaxRoleDepth bounds the role hierarchy: the longest chain of g lines
	// from a user to a role. Zero means 4; at most [MaxRoleDepth].
	MaxRoleDepth int
}

// Errors. Policy problems are reported as a *[PolicyError] wrapping one of
// ErrSyntax, ErrWildcard, ErrName, ErrObject, ErrCase or ErrHierarchy.
var (
	// ErrDenied is returned by [Enforcer.Check] and the four-eyes calls
	// when the caller is not allowed.
	ErrDenied = errors.New("rbac: access denied")

	ErrSyntax    = policy.ErrSyntax
	ErrWildcard  = policy.ErrWildcard
	ErrName      = policy.ErrName
	ErrObject    = policy.ErrObject
	ErrCase      = policy.ErrCase
	ErrHierarchy = policy.ErrHierarchy

	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("rbac: invalid config")
	// ErrUnavailable reports that no valid policy is loaded (a reload
	// failed); every decision is a deny until a reload succeeds.
	ErrUnavailable = errors.New("rbac: policy unavailable")
	// ErrStore reports a storage failure.
	ErrStore = errors.New("rbac: policy store failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("rbac: enforcer closed")
)

// PolicyError locates a policy problem: the 1-based Line of the policy
// text (0 for a rule that did not come from text), the sentinel error and
// a message.
type PolicyError = policy.LineError

// Rule is one permission (Deny false) or prohibition (Deny true) of a
// subject (a role, or a user) in a tenant. Object is a name, an absolute
// path, or a path ending in "/*" that matches every object below it. MFA
// marks a privileged permission: it allows only a principal whose MFA is
// fresh.
type Rule struct {
	Subject, Tenant, Object, Action string
	Deny, MFA                       bool
}

func (r Rule) internal() policy.Rule {
	return policy.Rule{Sub: r.Subject, Dom: r.Tenant, Obj: r.Object, Act: r.Action, Deny: r.Deny, MFA: r.MFA}
}

// String returns the rule as a policy line.
func (r Rule) String() string { return r.internal().String() }

// Enforcer decides access requests. It is safe for concurrent use; Casbin
// itself is kept inside, so that no caller can switch enforcement off.
type Enforcer struct {
	cfg    Config
	now    func() time.Time
	limits policy.Limits
	id     string

	mu     sync.Mutex // serialises changes to ce and the store
	ce     *casbin.Enforcer
	ix     atomic.Pointer[policy.Index] // nil: unavailable, deny all
	closed atomic.Bool

	pg *pgStore
}

// New loads the policy and returns an Enforcer. A policy that breaks a
// rule of the package documentation is refused with a *[PolicyError]
// naming the line.
func New(ctx context.Context, cfg Config) (*Enforcer, error) {
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	e := &Enforcer{cfg: cfg, now: cfg.Now, id: newID("i")}
	if e.now == nil {
		e.now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	c := &e.cfg
	def(&c.MFAMaxAge, DefaultMFAMaxAge)
	def(&c.GrantTTL, DefaultGrantTTL)
	def(&c.MaxGrantTTL, DefaultMaxGrantTTL)
	def(&c.RequestTTL, DefaultRequestTTL)
	def(&c.BreakGlassTTL, DefaultBreakGlassTTL)
	if c.ApproverRole == "" {
		c.ApproverRole = "approver"
	}
	if c.BreakGlassRole == "" {
		c.BreakGlassRole = "breakglass"
	}
	if c.MaxRoleDepth == 0 {
		c.MaxRoleDepth = DefaultMaxRoleDepth
	}
	switch {
	case c.MFAMaxAge < 0, c.GrantTTL < 0, c.MaxGrantTTL < 0, c.RequestTTL < 0, c.BreakGlassTTL < 0:
		return nil, fmt.Errorf("%w: negative duration", ErrConfig)
	case c.GrantTTL > c.MaxGrantTTL:
		return nil, fmt.Errorf("%w: GrantTTL %v exceeds MaxGrantTTL %v", ErrConfig, c.GrantTTL, c.MaxGrantTTL)
	case c.BreakGlassTTL > MaxBreakGlassTTL:
		return nil, fmt.Errorf("%w: BreakGlassTTL %v exceeds %v", ErrConfig, c.BreakGlassTTL, MaxBreakGlassTTL)
	case c.MaxRoleDepth < 0 || c.MaxRoleDepth > MaxRoleDepth:
		return nil, fmt.Errorf("%w: MaxRoleDepth %d not in 1..%d", ErrConfig, c.MaxRoleDepth, MaxRoleDepth)
	}
	if err := policy.CheckName(c.ApproverRole); err != nil {
		return nil, fmt.Errorf("%w: ApproverRole: %v", ErrConfig, err)
	}
	if err := policy.CheckName(c.BreakGlassRole); err != nil {
		return nil, fmt.Errorf("%w: BreakGlassRole: %v", ErrConfig, err)
	}
	e.limits = policy.Limits{MaxDepth: c.MaxRoleDepth}

	var seed *policy.Policy
	if cfg.Policy != nil {
		p, err := policy.Parse(cfg.Policy)
		if err != nil {
			return nil, err
		}
		if err := p.Validate(e.limits); err != nil {
			return nil, err
		}
		seed = p
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("rbac: model: %w", err)
	}
	if cfg.Postgres != nil {
		if err := e.openPostgres(ctx, m, seed); err != nil {
			return nil, err
		}
		return e, nil
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin: %w", err)
	}
	e.ce = ce
	if seed != nil {
		if err := addAll(ce, seed); err != nil {
			return nil, err
		}
	}
	if err := e.rebuild(); err != nil {
		return nil, err
	}
	return e, nil
}

func addAll(ce *casbin.Enforcer, p *policy.Policy) error {
	var rules, links [][]string
	for _, r := range p.Rules {
		rules = append(rules, r.Fields())
	}
	for _, g := range p.Links {
		links = append(links, g.Fields())
	}
	ce.EnableAutoSave(false)
	defer ce.EnableAutoSave(true)
	if len(rules) > 0 {
		if _, err := ce.GetModel().AddPoliciesWithAffected("p", "p", rules); err != nil {
			return fmt.Errorf("rbac: casbin: %w", err)
		}
	}
	if len(links) > 0 {
		if _, err := ce.GetModel().AddPoliciesWithAffected("g", "g", links); err != nil {
			return fmt.Errorf("rbac: casbin: %w", err)
		}
	}
	return nil
}

// Close stops change propagation. Decisions keep working from the last
// policy; changes fail with [ErrClosed].
func (e *Enforcer) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	if e.pg != nil {
		e.pg.close()
	}
	return nil
}

// readPolicy reads the "p" and "g" rules Casbin holds.
func (e *Enforcer) readPolicy() (*policy.Policy, error) {
	p := &policy.Policy{}
	rules, err := e.ce.GetNamedPolicy("p")
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin: %w", err)
	}
	for _, f := range rules {
		r, err := policy.RuleFromFields(f)
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, r)
	}
	links, err := e.ce.GetNamedGroupingPolicy("g")
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin: %w", err)
	}
	for _, f := range links {
		if len(f) != 3 {
			return nil, &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("g rule has %d fields, want 3", len(f))}
		}
		p.Links = append(p.Links, policy.Link{User: f[0], Role: f[1], Dom: f[2]})
	}
	return p, nil
}

// readGrants reads the grants ("p2") Casbin holds.
func (e *Enforcer) readGrants() ([]policy.Grant, error) {
	rows, err := e.ce.GetNamedPolicy("p2")
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin: %w", err)
	}
	var grants []policy.Grant
	for _, f := range rows {
		g, err := grantFromFields(f)
		if err != nil {
			return nil, err
		}
		grants = append(grants, g)
	}
	return grants, nil
}

// readRequests reads the access requests ("p3") Casbin holds.
func (e *Enforcer) readRequests() ([]AccessRequest, error) {
	rows, err := e.ce.GetNamedPolicy("p3")
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin: %w", err)
	}
	var reqs []AccessRequest
	for _, f := range rows {
		q, err := requestFromFields(f)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, q)
	}
	return reqs, nil
}

// rebuild validates Casbin's current policy and swaps in a new index. On
// failure the index is cleared: every decision denies until the next
// successful rebuild.
func (e *Enforcer) rebuild() error { return e.rebuildIndex(true) }

// rebuildIndex is rebuild; validate false skips the policy validation
// after a change that was validated already (an addition checked against
// the whole resulting policy, or a removal, which cannot make a valid
// policy invalid).
func (e *Enforcer) rebuildIndex(validate bool) error {
	p, err := e.readPolicy()
	var grants []policy.Grant
	if err == nil {
		grants, err = e.readGrants()
	}
	if err == nil {
		_, err = e.readRequests()
	}
	if err == nil && validate {
		err = p.Validate(e.limits)
	}
	if err != nil {
		e.ix.Store(nil)
		return err
	}
	e.ix.Store(policy.Build(p, grants))
	return nil
}

// change runs check under the lock, applies one change to Casbin (and
// through it to the store), rebuilds the index, tells the other instances
// and writes ev.
func (e *Enforcer) change(ctx context.Context, ev audit.Event, check func() error, apply func(ce *casbin.Enforcer) (bool, error)) error {
	if e.closed.Load() {
		return ErrClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	ok, err := apply(e.ce)
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityWarning
		_ = e.log(ctx, ev)
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	if !ok {
		ev.Reason = "no change"
	}
	warn, err := e.publish(ctx)
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, "rebuild: "+err.Error(), audit.SeverityCritical
		_ = e.log(ctx, ev)
		return err
	}
	if warn != "" {
		ev.Reason, ev.Severity = warn, audit.SeverityWarning
	}
	ev.Outcome = audit.OutcomeAllow
	return e.log(ctx, ev)
}

// publish makes changes applied to the store take effect: it rebuilds the
// index and tells the other instances. It returns the rebuild's error,
// and a warning for the audit event when the other instances could not
// be told.
func (e *Enforcer) publish(ctx context.Context) (warning string, err error) {
	if err := e.rebuildIndex(false); err != nil {
		return "", err
	}
	if e.pg != nil {
		if err := e.pg.notify(ctx, e.id); err != nil {
			return "changed, but notify failed: " + err.Error(), nil
		}
	}
	return "", nil
}

func (e *Enforcer) log(ctx context.Context, ev audit.Event) error {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	// Caller-supplied strings (a path, a reason) must not make the event
	// unloggable: an invalid or oversized event would let a deny go
	// unrecorded.
	ev.Actor.Subject, ev.Actor.Tenant = logSafe(ev.Actor.Subject), logSafe(ev.Actor.Tenant)
	ev.Resource, ev.Reason = logSafe(ev.Resource), logSafe(ev.Reason)
	for i, a := range ev.Attributes {
		if v := logSafe(a.Value); v != a.Value {
			attrs := slices.Clone(ev.Attributes) // the caller's slice stays intact
			for j := i; j < len(attrs); j++ {
				attrs[j].Value = logSafe(attrs[j].Value)
			}
			ev.Attributes = attrs
			break
		}
	}
	if err := e.cfg.Logger.Log(ctx, ev); err != nil {
		return fmt.Errorf("rbac: audit: %w", err)
	}
	return nil
}

// AddRule adds a permission or prohibition. The rule must pass the same
// checks as a loaded policy, against the whole resulting policy.
func (e *Enforcer) AddRule(ctx context.Context, r Rule) error {
	ir := r.internal()
	ev := audit.Event{Action: "rbac.rule.add", Resource: ir.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		p, err := e.readPolicy()
		if err != nil {
			return err
		}
		p.Rules = append(p.Rules, ir)
		return p.Validate(e.limits)
	}, func(ce *casbin.Enforcer) (bool, error) {
		return ce.AddNamedPolicy("p", ir.Fields())
	})
}

// RemoveRule removes a permission or prohibition.
func (e *Enforcer) RemoveRule(ctx context.Context, r Rule) error {
	ir := r.internal()
	ev := audit.Event{Action: "rbac.rule.remove", Resource: ir.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, nil, func(ce *casbin.Enforcer) (bool, error) {
		return ce.RemoveNamedPolicy("p", ir.Fields())
	})
}

// AssignRole gives user the standing role in tenant (a g line). For
// privileged roles prefer the four-eyes flow ([Enforcer.RequestAccess]),
// whose grants expire.
func (e *Enforcer) AssignRole(ctx context.Context, user, role, tenant string) error {
	l := policy.Link{User: user, Role: role, Dom: tenant}
	ev := audit.Event{Action: "rbac.role.assign", Resource: "g, " + user + ", " + role + ", " + tenant, Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		p, err := e.readPolicy()
		if err != nil {
			return err
		}
		p.Links = append(p.Links, l)
		return p.Validate(e.limits)
	}, func(ce *casbin.Enforcer) (bool, error) {
		return ce.AddNamedGroupingPolicy("g", l.Fields())
	})
}

// UnassignRole removes user's standing role in tenant.
func (e *Enforcer) UnassignRole(ctx context.Context, user, role, tenant string) error {
	l := policy.Link{User: user, Role: role, Dom: tenant}
	ev := audit.Event{Action: "rbac.role.unassign", Resource: "g, " + user + ", " + role + ", " + tenant, Severity: audit.SeverityNotice}
	return e.change(ctx, ev, nil, func(ce *casbin.Enforcer) (bool, error) {
		return ce.RemoveNamedGroupingPolicy("g", l.Fields())
	})
}

// Reload reads the policy again from its store (Postgres) and rebuilds
// the decision index. Without Postgres it only rebuilds. If the stored
// policy is invalid, Reload returns the error and every decision denies
// until a later reload succeeds.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reloadLocked(ctx)
}

func (e *Enforcer) reloadLocked(ctx context.Context) error {
	ev := audit.Event{Action: "rbac.policy.reload", Severity: audit.SeverityInfo}
	if e.pg != nil {
		if err := e.ce.LoadPolicy(); err != nil {
			e.ix.Store(nil)
			ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityCritical
			_ = e.log(ctx, ev)
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
	}
	if err := e.rebuild(); err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityCritical
		_ = e.log(ctx, ev)
		return err
	}
	ev.Outcome = audit.OutcomeAllow
	return e.log(ctx, ev)
}

// maxLogString bounds each caller-supplied string in an audit event.
const maxLogString = 2048

// logSafe makes s valid UTF-8 and at most maxLogString bytes, marking a
// cut.
func logSafe(s string) string {
	if len(s) <= maxLogString && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxLogString {
		cut := maxLogString
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "...(truncated)"
	}
	return s
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + hex.EncodeToString(b[:])
}
