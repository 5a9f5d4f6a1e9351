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

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/rbac/internal/policy"
)

//go:embed model.conf
var modelText string

// Model returns the Casbin model tomkit enforces: RBAC with domains (the
// domain is the tenant, compared for equality in the matcher), a
// deny-override effect, and MFA-marked permissions that match only a
// request whose MFA is fresh. A plain casbin.Enforcer built on it, with
// role names kept apart from user names, decides as tomkit does, except
// where tomkit is deliberately stricter (see docs/RBAC.md).
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

	// Policy is the policy text (see docs/RBAC.md for its
	// format), typically embedded in the binary with go:embed. Without
	// a Store it is the whole policy, held in memory; with a Store it
	// seeds an empty store and is otherwise ignored. Nil means an empty
	// policy, which denies everything.
	Policy []byte

	// Store, when non-nil, persists the policy, grants and access
	// requests, and propagates every change to the other instances
	// sharing it (rbac/pgstore stores them in PostgreSQL). It must stay
	// usable until Close. Nil means the policy lives in memory only.
	Store Store

	// Clock gives the time of decisions, grants and events. Nil means
	// the system clock.
	Clock audit.Clock

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
	// ErrEnforcerClosed is returned after Close.
	ErrEnforcerClosed = errors.New("rbac: enforcer closed")
)

// PolicyError locates a policy problem. errors.Is matches its sentinel
// (Err); errors.As finds it in the errors of [New], [Enforcer.AddRule],
// [Enforcer.RemoveRule], [Enforcer.AssignRole], [Enforcer.UnassignRole],
// [Enforcer.Reload] and [Lint].
type PolicyError struct {
	// Line is the 1-based line of the policy text, or 0 for a rule that
	// did not come from text (one added through the API, or stored).
	Line int
	// Err is the sentinel: ErrSyntax, ErrWildcard, ErrName, ErrObject,
	// ErrCase or ErrHierarchy.
	Err error
	// Msg says what is wrong, naming the field or line content.
	Msg string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%v: line %d: %s", e.Err, e.Line, e.Msg)
	}
	return fmt.Sprintf("%v: %s", e.Err, e.Msg)
}

// Unwrap returns the sentinel.
func (e *PolicyError) Unwrap() error { return e.Err }

// policyErr turns the internal policy package's line error into a
// *PolicyError; other errors are returned as they are.
func policyErr(err error) error {
	var le *policy.LineError
	if errors.As(err, &le) {
		return &PolicyError{Line: le.Line, Err: le.Err, Msg: le.Msg}
	}
	return err
}

// Rule is one permission (Deny false) or prohibition (Deny true) of a
// role (Subject) in a tenant; users hold roles, never rules. Object is a name, an absolute
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

	mu     sync.Mutex // serialises changes to ce and the store
	ce     *casbin.Enforcer
	ix     atomic.Pointer[policy.Index] // nil: unavailable, deny all
	closed atomic.Bool

	mir   *mirror         // the policy by tenant; nil when unavailable
	dirty map[string]bool // tenants changed since the index was built

	store     Store
	applied   atomic.Int64 // the store's last change applied in memory
	stopWatch context.CancelFunc
	watchDone chan struct{}
	stopOnce  sync.Once
}

// New loads the policy and returns an Enforcer. A policy that breaks a
// rule of docs/RBAC.md is refused with a *[PolicyError]
// naming the line.
func New(ctx context.Context, cfg Config) (*Enforcer, error) {
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	e := &Enforcer{cfg: cfg, now: time.Now}
	if cfg.Clock != nil {
		e.now = cfg.Clock.Now
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
			return nil, policyErr(err)
		}
		if err := p.Validate(e.limits); err != nil {
			return nil, policyErr(err)
		}
		seed = p
	}
	ce, err := newCasbin()
	if err != nil {
		return nil, err
	}
	e.ce = ce
	if cfg.Store != nil {
		if err := e.openStore(ctx, seed); err != nil {
			return nil, err
		}
		return e, nil
	}
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

// newCasbin returns an in-memory Casbin enforcer on [Model], with no
// adapter: the Enforcer writes its Store itself.
func newCasbin() (*casbin.Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, errtext.Errorf("rbac: model: %w", err)
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, errtext.Errorf("rbac: casbin: %w", err)
	}
	return ce, nil
}

// policyRows returns p as store rows.
func policyRows(p *policy.Policy) []Row {
	var rows []Row
	for _, r := range p.Rules {
		rows = append(rows, Row{Ptype: "p", Fields: r.Fields()})
	}
	for _, g := range p.Links {
		rows = append(rows, Row{Ptype: "g", Fields: g.Fields()})
	}
	return rows
}

// openStore seeds an empty store, loads it and starts watching it for
// other instances' changes.
func (e *Enforcer) openStore(ctx context.Context, seed *policy.Policy) error {
	e.store = e.cfg.Store
	if seed != nil {
		rows, _, err := e.store.Load(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
		if len(rows) == 0 {
			if _, _, err := e.store.Change(ctx, nil, policyRows(seed)); err != nil {
				return fmt.Errorf("%w: seed: %v", ErrStore, err)
			}
		}
	}
	e.mu.Lock()
	err := e.reloadLocked(ctx)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	e.stopWatch, e.watchDone = cancel, make(chan struct{})
	ready := make(chan struct{})
	go e.watch(wctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		e.stopWatching()
		return ctx.Err()
	}
	return nil
}

func (e *Enforcer) stopWatching() {
	e.stopOnce.Do(func() {
		if e.stopWatch != nil {
			e.stopWatch()
			<-e.watchDone
		}
	})
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
			return errtext.Errorf("rbac: casbin: %w", err)
		}
	}
	if len(links) > 0 {
		if _, err := ce.GetModel().AddPoliciesWithAffected("g", "g", links); err != nil {
			return errtext.Errorf("rbac: casbin: %w", err)
		}
	}
	return nil
}

// Close stops change propagation. Decisions keep working from the last
// policy; changes fail with [ErrEnforcerClosed].
func (e *Enforcer) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.stopWatching()
	return nil
}

// readPolicy reads the "p" and "g" rules Casbin holds.
func (e *Enforcer) readPolicy() (*policy.Policy, error) {
	p := &policy.Policy{}
	rules, err := e.ce.GetNamedPolicy("p")
	if err != nil {
		return nil, errtext.Errorf("rbac: casbin: %w", err)
	}
	for _, f := range rules {
		r, err := policy.RuleFromFields(f)
		if err != nil {
			return nil, policyErr(err)
		}
		p.Rules = append(p.Rules, r)
	}
	links, err := e.ce.GetNamedGroupingPolicy("g")
	if err != nil {
		return nil, errtext.Errorf("rbac: casbin: %w", err)
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
		return nil, errtext.Errorf("rbac: casbin: %w", err)
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
		return nil, errtext.Errorf("rbac: casbin: %w", err)
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
		e.mir, e.dirty = nil, nil
		return policyErr(err)
	}
	e.ix.Store(policy.Build(p, grants))
	e.mir, e.dirty = newMirror(p, grants), nil
	return nil
}

// reindex makes the changes applied since the last index take effect: it
// re-indexes only the tenants they touched. Without a valid index it
// rebuilds and validates the whole policy.
func (e *Enforcer) reindex() error {
	ix := e.ix.Load()
	if ix == nil || e.mir == nil {
		return e.rebuildIndex(true)
	}
	for dom := range e.dirty {
		if t := e.mir.tenants[dom]; t != nil {
			ix = ix.WithTenant(dom, t.rules, t.links, t.grants)
			if len(t.rules)+len(t.links)+len(t.grants) == 0 {
				delete(e.mir.tenants, dom)
			}
		} else {
			ix = ix.WithTenant(dom, nil, nil, nil)
		}
	}
	e.dirty = nil
	e.ix.Store(ix)
	return nil
}

// delta is one change to the stored policy: rows to delete exactly and
// rows to add, in one store transaction.
type delta struct {
	del, add []Row
	// what names the deleted rows in the audit reason when they are not
	// stored ("rule", "role assignment", ...).
	what string
	// missing, when non-nil, makes a row of del that is not stored a
	// refusal: change audits a deny and returns missing. When nil, it
	// is no error and the event says "no such <what>".
	missing error
}

// change catches up with the store, runs check under the lock, writes d
// to the store (which announces it to the other instances) and then to
// Casbin, re-indexes the tenants it touched and writes ev, whose reason
// says what the store did.
func (e *Enforcer) change(ctx context.Context, ev audit.Event, check func() error, d delta) error {
	if e.closed.Load() {
		return ErrEnforcerClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Catch up with the other instances first, so that the checks see
	// their changes; a store that cannot be read fails the change below.
	_ = e.syncLocked(ctx)
	if check != nil {
		if err := check(); err != nil {
			return e.refuse(ctx, ev, err)
		}
	}
	deleted, added, err := e.apply(ctx, d.del, d.add)
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityWarning
		_ = e.log(ctx, ev)
		return err
	}
	if len(d.del) > 0 && deleted == 0 {
		if d.missing != nil {
			return e.refuse(ctx, ev, d.missing)
		}
		ev.Outcome, ev.Reason = audit.OutcomeAllow, "no such "+d.what
		return e.log(ctx, ev)
	}
	ev.Reason = storeReason(deleted, added, len(d.add))
	if err := e.reindex(); err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, "rebuild: "+err.Error(), audit.SeverityCritical
		_ = e.log(ctx, ev)
		return err
	}
	ev.Outcome = audit.OutcomeAllow
	return e.log(ctx, ev)
}

// storeReason says what a change did to the store.
func storeReason(deleted, added, asked int) string {
	var parts []string
	if deleted > 0 {
		parts = append(parts, "removed "+plural(deleted, "row"))
	}
	if added > 0 {
		parts = append(parts, "added "+plural(added, "row"))
	}
	if asked > added {
		parts = append(parts, plural(asked-added, "row")+" already present")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// apply writes del and add to the store (when there is one), then to
// Casbin. Rows of add that Casbin holds already are skipped. A row of del
// that is not stored makes apply change nothing and return deleted 0.
// The caller holds e.mu.
func (e *Enforcer) apply(ctx context.Context, del, add []Row) (deleted, added int, err error) {
	var fresh []Row
	for _, r := range add {
		if !e.has(r) && !slices.ContainsFunc(fresh, func(f Row) bool { return sameRow(f, r) }) {
			fresh = append(fresh, r)
		}
	}
	if len(del)+len(fresh) == 0 {
		return 0, 0, nil
	}
	var seq int64
	if e.store != nil {
		deleted, seq, err = e.store.Change(ctx, del, fresh)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %v", ErrStore, err)
		}
	} else {
		for _, r := range del {
			if !e.has(r) {
				return 0, 0, nil
			}
		}
		deleted = len(del)
	}
	if len(del) > 0 && deleted == 0 {
		return 0, 0, nil
	}
	for _, r := range del {
		if err := e.memApply(r, false); err != nil {
			return 0, 0, e.desync(err)
		}
	}
	for _, r := range fresh {
		if err := e.memApply(r, true); err != nil {
			return 0, 0, e.desync(err)
		}
	}
	if e.store != nil {
		if seq == e.applied.Load()+1 {
			e.applied.Store(seq)
		} else if err := e.syncLocked(ctx); err != nil {
			// Another instance's change came in between: apply it (and
			// ours again, which is a no-op), or reload.
			return deleted, len(fresh), err
		}
	}
	return deleted, len(fresh), nil
}

// memApply adds r to or deletes it from Casbin and the mirror.
func (e *Enforcer) memApply(r Row, add bool) error {
	var err error
	switch {
	case r.Ptype == "g" && add:
		_, err = e.ce.AddNamedGroupingPolicy(r.Ptype, r.Fields)
	case r.Ptype == "g":
		_, err = e.ce.RemoveNamedGroupingPolicy(r.Ptype, r.Fields)
	case add:
		_, err = e.ce.AddNamedPolicy(r.Ptype, r.Fields)
	default:
		_, err = e.ce.RemoveNamedPolicy(r.Ptype, r.Fields)
	}
	if err != nil {
		return err
	}
	return e.mirror(r, add)
}

// mirror records a row added to or deleted from Casbin in e.mir, and
// marks its tenant for re-indexing.
func (e *Enforcer) mirror(r Row, add bool) error {
	if e.mir == nil {
		return nil // the next reindex rebuilds everything
	}
	dom, err := e.mir.apply(r, add)
	if err != nil {
		return err
	}
	if dom != "" {
		if e.dirty == nil {
			e.dirty = map[string]bool{}
		}
		e.dirty[dom] = true
	}
	return nil
}

// desync handles a Casbin failure after the store committed: the
// in-memory policy no longer matches the store, so every decision denies
// until the next reload.
func (e *Enforcer) desync(err error) error {
	e.ix.Store(nil)
	e.mir, e.dirty = nil, nil
	return fmt.Errorf("%w: casbin: %v", ErrUnavailable, err)
}

// has reports whether Casbin holds r.
func (e *Enforcer) has(r Row) bool {
	if r.Ptype == "g" {
		ok, _ := e.ce.HasNamedGroupingPolicy(r.Ptype, r.Fields)
		return ok
	}
	ok, _ := e.ce.HasNamedPolicy(r.Ptype, r.Fields)
	return ok
}

func sameRow(a, b Row) bool { return a.Ptype == b.Ptype && slices.Equal(a.Fields, b.Fields) }

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
		return errtext.Errorf("rbac: audit: %w", err)
	}
	return nil
}

// AddRule adds a permission or prohibition. The rule must pass the same
// checks as a loaded policy, against the whole resulting policy.
func (e *Enforcer) AddRule(ctx context.Context, r Rule) error {
	ir := r.internal()
	ev := audit.Event{Action: "rbac.rule.add", Resource: ir.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		if e.mir == nil {
			return ErrUnavailable
		}
		return e.mir.checkRule(ir, e.limits)
	}, delta{add: []Row{{Ptype: "p", Fields: ir.Fields()}}})
}

// RemoveRule removes a permission or prohibition: exactly the stored
// rule equal to r. r is checked as [Enforcer.AddRule] checks a rule, so
// an empty or wildcard field is refused with a *[PolicyError] and
// removes nothing.
func (e *Enforcer) RemoveRule(ctx context.Context, r Rule) error {
	ir := r.internal()
	ev := audit.Event{Action: "rbac.rule.remove", Resource: ir.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		return policyErr((&policy.Policy{Rules: []policy.Rule{ir}}).Validate(e.limits))
	}, delta{del: []Row{{Ptype: "p", Fields: ir.Fields()}}, what: "rule"})
}

// Assignment is one standing role assignment (a g line): User holds
// Role in Tenant.
type Assignment struct {
	User, Role, Tenant string
}

func (a Assignment) link() policy.Link { return policy.Link{User: a.User, Role: a.Role, Dom: a.Tenant} }

// String returns the assignment as a policy line.
func (a Assignment) String() string { return "g, " + a.User + ", " + a.Role + ", " + a.Tenant }

// AssignRole gives a.User the standing role a.Role in a.Tenant (a g
// line). The assignment must pass the same checks as a loaded policy,
// against the whole resulting policy. For privileged roles prefer the
// four-eyes flow ([Enforcer.RequestAccess]), whose grants expire.
func (e *Enforcer) AssignRole(ctx context.Context, a Assignment) error {
	l := a.link()
	ev := audit.Event{Action: "rbac.role.assign", Resource: a.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		if e.mir == nil {
			return ErrUnavailable
		}
		return e.mir.checkLink(l, e.limits)
	}, delta{add: []Row{{Ptype: "g", Fields: l.Fields()}}})
}

// UnassignRole removes exactly the standing assignment a. Its fields are
// checked as [Enforcer.AssignRole] checks them, so an empty or wildcard
// field is refused with a *[PolicyError] and removes nothing.
func (e *Enforcer) UnassignRole(ctx context.Context, a Assignment) error {
	l := a.link()
	ev := audit.Event{Action: "rbac.role.unassign", Resource: a.String(), Severity: audit.SeverityNotice}
	return e.change(ctx, ev, func() error {
		return policyErr((&policy.Policy{Links: []policy.Link{l}}).Validate(e.limits))
	}, delta{del: []Row{{Ptype: "g", Fields: l.Fields()}}, what: "role assignment"})
}

// Reload reads the whole policy again from its Store and rebuilds the
// decision index. Without a Store it only rebuilds. If the stored
// policy is invalid, Reload returns the error and every decision denies
// until a later reload succeeds.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reloadLocked(ctx)
}

func (e *Enforcer) reloadLocked(ctx context.Context) error {
	ev := audit.Event{Action: "rbac.policy.reload", Severity: audit.SeverityInfo}
	if e.store != nil {
		if err := e.load(ctx); err != nil {
			e.ix.Store(nil)
			ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityCritical
			_ = e.log(ctx, ev)
			return err
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

// load replaces Casbin's policy with the store's rows.
func (e *Enforcer) load(ctx context.Context) error {
	rows, seq, err := e.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	e.applied.Store(seq)
	byType := map[string][][]string{}
	for _, r := range rows {
		f, err := rowFields(r)
		if err != nil {
			return err
		}
		byType[r.Ptype] = append(byType[r.Ptype], f)
	}
	ce, err := newCasbin()
	if err != nil {
		return err
	}
	for _, pt := range []string{"p", "p2", "p3", "g"} {
		if len(byType[pt]) == 0 {
			continue
		}
		if _, err := ce.GetModel().AddPoliciesWithAffected(pt[:1], pt, byType[pt]); err != nil {
			return errtext.Errorf("rbac: casbin: %w", err)
		}
	}
	if len(byType["g"]) > 0 {
		if err := ce.BuildRoleLinks(); err != nil {
			return errtext.Errorf("rbac: casbin: %w", err)
		}
	}
	e.ce = ce
	return nil
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
