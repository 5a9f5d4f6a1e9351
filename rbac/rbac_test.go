package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testPolicy = `# test policy
p, viewer, acme, /data/*, read, allow
p, editor, acme, /data/*, read, allow
p, editor, acme, /data/*, write, allow
p, editor, acme, /data/secret/*, write, deny
p, admin, acme, /data/*, delete, allow, mfa
p, admin, acme, /admin/*, manage, allow, mfa
p, auditor, acme, /audit/*, read, allow
p, auditor, acme, /audit/*, write, deny
p, admin, globex, /admin/*, manage, allow, mfa
p, viewer, globex, /data/*, read, allow
p, svc, acme, invoices, export, allow
g, alice, editor, acme
g, bob, viewer, acme
g, carol, admin, globex
g, carol, viewer, acme
g, dave, approver, acme
g, erin, breakglass, acme
g, erin, viewer, acme
g, ann, auditor, acme
g, ann, editor, acme
g, lead, approver, globex
g, svcbot, svc, acme
`

type fixture struct {
	e     *rbac.Enforcer
	rec   *audit.Recorder
	clock *clock
	alert []audit.Event
	mu    sync.Mutex
}

func newFixture(t *testing.T, text string, mod func(*rbac.Config)) *fixture {
	t.Helper()
	f := &fixture{rec: &audit.Recorder{}, clock: newClock()}
	cfg := rbac.Config{
		Logger: f.rec,
		Policy: []byte(text),
		Clock:  audit.ClockFunc(f.clock.Now),
		Alert: func(_ context.Context, e audit.Event) error {
			f.mu.Lock()
			f.alert = append(f.alert, e)
			f.mu.Unlock()
			return nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := rbac.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	f.e = e
	return f
}

func actx(sub, tenant string) context.Context {
	return audit.WithActor(context.Background(), audit.Actor{Subject: sub, Tenant: tenant})
}

func (f *fixture) mfa(ctx context.Context) context.Context {
	return rbac.WithMFA(ctx, f.clock.Now().Add(-time.Minute))
}

func (f *fixture) decide(t *testing.T, ctx context.Context, obj, act string) rbac.Decision {
	t.Helper()
	d, err := f.e.Decide(ctx, rbac.Request{Object: obj, Action: act})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}

func TestLeastPrivilege(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	fresh := f.clock.Now().Add(-time.Hour)
	stale := f.clock.Now().Add(-13 * time.Hour)
	tests := []struct {
		name       string
		sub, ten   string
		obj, act   string
		mfa        time.Time
		allow      bool
		reason     string
		privileged bool
	}{
		{"editor writes data", "alice", "acme", "/data/report", "write", time.Time{}, true, "allowed by rule", false},
		{"viewer cannot write", "bob", "acme", "/data/report", "write", time.Time{}, false, "no matching allow", false},
		{"explicit deny beats allow", "alice", "acme", "/data/secret/x", "write", time.Time{}, false, "explicit deny", false},
		{"cross-tenant admin", "carol", "acme", "/admin/users", "manage", fresh, false, "no matching allow", false},
		{"admin in own tenant with mfa", "carol", "globex", "/admin/users", "manage", fresh, true, "allowed by rule", true},
		{"admin without mfa", "carol", "globex", "/admin/users", "manage", time.Time{}, false, "mfa required", false},
		{"admin with stale mfa", "carol", "globex", "/admin/users", "manage", stale, false, "mfa required", false},
		{"mfa in the future", "carol", "globex", "/admin/users", "manage", f.clock.Now().Add(time.Hour), false, "future", false},
		{"path traversal", "bob", "acme", "/data/../admin/users", "read", time.Time{}, false, "not canonical", false},
		{"dot segment", "bob", "acme", "/data/./x", "read", time.Time{}, false, "not canonical", false},
		{"double slash", "bob", "acme", "/data//x", "read", time.Time{}, false, "not canonical", false},
		{"trailing slash", "bob", "acme", "/data/", "read", time.Time{}, false, "not canonical", false},
		{"encoded traversal", "bob", "acme", "/data/%2e%2e/admin", "read", time.Time{}, false, "not canonical", false},
		{"wildcard object", "bob", "acme", "/data/*", "read", time.Time{}, false, "not canonical", false},
		{"pattern anchored at segment", "bob", "acme", "/database", "read", time.Time{}, false, "no matching allow", false},
		{"pattern needs a child", "bob", "acme", "/data", "read", time.Time{}, false, "no matching allow", false},
		{"nested child", "bob", "acme", "/data/a/b/c", "read", time.Time{}, true, "allowed by rule", false},
		{"case variant subject", "Alice", "acme", "/data/report", "write", time.Time{}, false, "no matching allow", false},
		{"case variant tenant", "alice", "ACME", "/data/report", "write", time.Time{}, false, "no policy for tenant", false},
		{"case variant action", "alice", "acme", "/data/report", "Write", time.Time{}, false, "unknown action", false},
		{"empty tenant", "alice", "", "/data/report", "write", time.Time{}, false, "empty tenant", false},
		{"empty subject", "", "acme", "/data/report", "write", time.Time{}, false, "empty subject", false},
		{"unknown action", "alice", "acme", "/data/report", "frobnicate", time.Time{}, false, "unknown action", false},
		{"unknown tenant", "alice", "initech", "/data/report", "read", time.Time{}, false, "no policy for tenant", false},
		{"auditor reads audit", "ann", "acme", "/audit/2026", "read", time.Time{}, true, "allowed by rule", false},
		{"auditor+editor cannot write audit", "ann", "acme", "/audit/2026", "write", time.Time{}, false, "explicit deny", false},
		{"plain object exact", "svcbot", "acme", "invoices", "export", time.Time{}, true, "allowed by rule", false},
		{"plain object other", "svcbot", "acme", "invoices2", "export", time.Time{}, false, "no matching allow", false},
		// Users and roles are apart: a user named like a role gets none
		// of its rules, MFA-marked or not.
		{"user named like a role", "editor", "acme", "/data/x", "write", time.Time{}, false, "no matching allow", false},
		{"user named like a role with rules only", "svc", "acme", "invoices", "export", time.Time{}, false, "no matching allow", false},
		{"user named like a privileged role", "admin", "globex", "/admin/users", "manage", fresh, false, "no matching allow", false},
		{"approver has no data access", "dave", "acme", "/data/x", "read", fresh, false, "no matching allow", false},
		{"comma in subject", "alice,editor", "acme", "/data/x", "read", time.Time{}, false, "invalid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := f.e.Decide(context.Background(), rbac.Request{
				Actor:  audit.Actor{Subject: tt.sub, Tenant: tt.ten},
				Object: tt.obj, Action: tt.act, MFAVerifiedAt: tt.mfa,
			})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allow || !strings.Contains(d.Reason, tt.reason) || d.Privileged != tt.privileged {
				t.Fatalf("got %+v, want allow=%v reason~%q privileged=%v", d, tt.allow, tt.reason, tt.privileged)
			}
		})
	}
}

func TestDecisionLog(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	// A plain allow is not logged.
	f.decide(t, actx("alice", "acme"), "/data/x", "write")
	if n := len(f.rec.Events()); n != 0 {
		t.Fatalf("plain allow logged %d events", n)
	}
	f.decide(t, actx("alice", "acme"), "/data/secret/k", "write")
	f.decide(t, f.mfa(actx("carol", "globex")), "/admin/users", "manage")
	evs := f.rec.Events()
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	want := []struct {
		outcome audit.Outcome
		rule    string
		reason  string
	}{
		{audit.OutcomeDeny, "p, editor, acme, /data/secret/*, write, deny", "explicit deny"},
		{audit.OutcomeAllow, "p, admin, globex, /admin/*, manage, allow, mfa", "allowed by rule"},
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Action != "rbac.decide" || ev.Outcome != w.outcome || ev.Reason != w.reason || attr(ev, "rule") != w.rule {
			t.Errorf("event %d = %+v, want %v %q %q", i, ev, w.outcome, w.rule, w.reason)
		}
		if ev.Actor.Subject == "" || ev.Resource == "" || attr(ev, "action") == "" {
			t.Errorf("event %d lacks actor, resource or action: %+v", i, ev)
		}
	}
}

func attr(ev audit.Event, k string) string {
	for _, a := range ev.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

// failLogger fails every Log call.
type failLogger struct{}

func (failLogger) Log(context.Context, audit.Event) error { return errors.New("disk full") }

func TestAuditFailureDenies(t *testing.T) {
	f := newFixture(t, testPolicy, func(c *rbac.Config) { c.Logger = failLogger{} })
	d, err := f.e.Decide(f.mfa(actx("carol", "globex")), rbac.Request{Object: "/admin/x", Action: "manage"})
	if err == nil || d.Allowed {
		t.Fatalf("privileged allow without a decision log: %+v, %v", d, err)
	}
	if err := f.e.Check(f.mfa(actx("carol", "globex")), "/admin/x", "manage"); !errors.Is(err, rbac.ErrDenied) {
		t.Fatalf("Check = %v, want ErrDenied", err)
	}
}

func TestNoLogger(t *testing.T) {
	if _, err := rbac.New(context.Background(), rbac.Config{}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("New without Logger = %v", err)
	}
}

func TestCheckUsesContext(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	if err := f.e.Check(actx("alice", "acme"), "/data/x", "write"); err != nil {
		t.Fatal(err)
	}
	err := f.e.Check(actx("bob", "acme"), "/data/x", "write")
	if !errors.Is(err, rbac.ErrDenied) || !strings.Contains(err.Error(), "no matching allow") {
		t.Fatalf("Check = %v", err)
	}
	if err := f.e.Check(context.Background(), "/data/x", "read"); !errors.Is(err, rbac.ErrDenied) {
		t.Fatalf("Check without actor = %v", err)
	}
	// A request for another tenant than the ctx's is a mismatch.
	d, _ := f.e.Decide(actx("alice", "acme"), rbac.Request{Actor: audit.Actor{Subject: "alice", Tenant: "globex"}, Object: "/data/x", Action: "read"})
	if d.Allowed || !strings.Contains(d.Reason, "mismatch") {
		t.Fatalf("tenant mismatch: %+v", d)
	}
}

func TestLoadRefusals(t *testing.T) {
	tests := []struct {
		name, text string
		err        error
		line       int
	}{
		{"wildcard subject", "p, viewer, acme, /d/*, read, allow\np, *, acme, /d/*, read, allow", rbac.ErrWildcard, 2},
		{"wildcard tenant", "p, viewer, *, /d/*, read, allow", rbac.ErrWildcard, 1},
		{"wildcard in tenant name", "g, alice, viewer, ac*", rbac.ErrWildcard, 1},
		{"wildcard action", "p, viewer, acme, /d/*, *, allow", rbac.ErrWildcard, 1},
		{"bare star object", "p, viewer, acme, *, read, allow", rbac.ErrWildcard, 1},
		{"mid-pattern", "p, viewer, acme, /d/*/x, read, allow", rbac.ErrWildcard, 1},
		{"unanchored prefix", "p, viewer, acme, /data*, read, allow", rbac.ErrWildcard, 1},
		{"traversal object", "\n\np, viewer, acme, /d/../x, read, allow", rbac.ErrObject, 3},
		{"relative path", "p, viewer, acme, d/x, read, allow", rbac.ErrObject, 1},
		{"case variants", "p, admin, acme, /d/*, read, allow\np, Admin, acme, /d/*, write, allow", rbac.ErrCase, 2},
		{"tenant case variants", "p, v, acme, /d/*, read, allow\ng, alice, v, ACME", rbac.ErrCase, 2},
		{"bad effect", "p, v, acme, /d/*, read, maybe", rbac.ErrSyntax, 1},
		{"bad marker", "p, v, acme, /d/*, read, allow, totp", rbac.ErrSyntax, 1},
		{"too few fields", "p, v, acme, read, allow", rbac.ErrSyntax, 1},
		{"empty field", "p, v, , /d/*, read, allow", rbac.ErrSyntax, 1},
		{"unknown type", "p2, x, acme, editor, 2026, x", rbac.ErrSyntax, 1},
		{"g too long", "g, a, b, acme, extra", rbac.ErrSyntax, 1},
		{"cycle", "g, a, b, acme\ng, b, a, acme", rbac.ErrHierarchy, 2},
		{"too deep", "g, u, r1, t\ng, r1, r2, t\ng, r2, r3, t\ng, r3, r4, t\ng, r4, r5, t", rbac.ErrHierarchy, 1},
		{"non-ascii", "p, vіewer, acme, /d/*, read, allow", rbac.ErrName, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rbac.New(context.Background(), rbac.Config{Logger: &audit.Recorder{}, Policy: []byte(tt.text)})
			if !errors.Is(err, tt.err) {
				t.Fatalf("New = %v, want %v", err, tt.err)
			}
			var pe *rbac.PolicyError
			if !errors.As(err, &pe) || pe.Line != tt.line {
				t.Fatalf("error %v does not name line %d", err, tt.line)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("line %d", tt.line)) {
				t.Fatalf("message %q does not name the line", err)
			}
		})
	}
}

func TestAddRuleValidates(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	ctx := actx("root", "acme")
	for _, r := range []rbac.Rule{
		{Subject: "*", Tenant: "acme", Object: "/x", Action: "read"},
		{Subject: "v", Tenant: "*", Object: "/x", Action: "read"},
		{Subject: "Editor", Tenant: "acme", Object: "/x", Action: "read"},
		{Subject: "v", Tenant: "acme", Object: "/x/../y", Action: "read"},
	} {
		if err := f.e.AddRule(ctx, r); err == nil {
			t.Errorf("AddRule(%v) accepted", r)
		}
	}
	if err := f.e.AssignRole(ctx, rbac.Assignment{User: "alice", Role: "*", Tenant: "acme"}); !errors.Is(err, rbac.ErrWildcard) {
		t.Errorf("AssignRole wildcard = %v", err)
	}
	if err := f.e.AssignRole(ctx, rbac.Assignment{User: "editor", Role: "alice", Tenant: "acme"}); !errors.Is(err, rbac.ErrHierarchy) {
		t.Errorf("AssignRole cycle = %v", err)
	}
}

// TestStaleCacheAfterRevoke is the CachedEnforcer regression: a decision
// must change as soon as a role is removed or a deny is added.
func TestStaleCacheAfterRevoke(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	ctx := actx("alice", "acme")
	admin := actx("root", "acme")
	for i := 0; i < 3; i++ { // warm anything that could cache
		if !f.decide(t, ctx, "/data/x", "write").Allowed {
			t.Fatal("setup: alice cannot write")
		}
	}
	if err := f.e.UnassignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if d := f.decide(t, ctx, "/data/x", "write"); d.Allowed {
		t.Fatalf("allow after RemoveGroupingPolicy: %+v", d)
	}
	if err := f.e.AssignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if !f.decide(t, ctx, "/data/x", "write").Allowed {
		t.Fatal("re-assigned alice cannot write")
	}
	if err := f.e.AddRule(admin, rbac.Rule{Subject: "editor", Tenant: "acme", Object: "/data/x", Action: "write", Deny: true}); err != nil {
		t.Fatal(err)
	}
	if d := f.decide(t, ctx, "/data/x", "write"); d.Allowed || d.Reason != "explicit deny" {
		t.Fatalf("allow after an added deny: %+v", d)
	}
	var changes int
	for _, ev := range f.rec.Events() {
		if strings.HasPrefix(ev.Action, "rbac.role.") || strings.HasPrefix(ev.Action, "rbac.rule.") {
			changes++
		}
	}
	if changes != 3 {
		t.Fatalf("%d change events, want 3", changes)
	}
}

func TestFourEyes(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	bob := f.mfa(actx("bob", "acme"))
	dave := f.mfa(actx("dave", "acme"))

	if f.decide(t, bob, "/admin/users", "manage").Allowed {
		t.Fatal("bob is admin before any grant")
	}
	if _, err := f.e.RequestAccess(bob, "admin", "  "); !errors.Is(err, rbac.ErrJustification) {
		t.Fatalf("request without reason = %v", err)
	}
	if _, err := f.e.RequestAccess(bob, "viewer", "need it"); !errors.Is(err, rbac.ErrNotPrivileged) {
		t.Fatalf("request for non-privileged role = %v", err)
	}
	q, err := f.e.RequestAccess(bob, "admin", "INC-42: rotate user keys")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := f.e.Pending("acme"); len(p) != 1 || p[0].ID != q.ID {
		t.Fatalf("Pending = %+v", p)
	}
	// Self-approval, even through a case variant of the name.
	if _, err := f.e.Approve(bob, q.ID, 0); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Fatalf("self-approval = %v", err)
	}
	if _, err := f.e.Approve(f.mfa(actx("BOB", "acme")), q.ID, 0); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Fatalf("case-variant self-approval = %v", err)
	}
	// Not an approver; approver without MFA; approver of another tenant.
	if _, err := f.e.Approve(f.mfa(actx("alice", "acme")), q.ID, 0); !errors.Is(err, rbac.ErrNotApprover) {
		t.Fatalf("non-approver = %v", err)
	}
	if _, err := f.e.Approve(actx("dave", "acme"), q.ID, 0); !errors.Is(err, rbac.ErrMFARequired) {
		t.Fatalf("approver without mfa = %v", err)
	}
	if _, err := f.e.Approve(f.mfa(actx("lead", "globex")), q.ID, 0); !errors.Is(err, rbac.ErrDenied) {
		t.Fatalf("approver from another tenant = %v", err)
	}
	if _, err := f.e.Approve(dave, q.ID, 9*time.Hour); !errors.Is(err, rbac.ErrTTL) {
		t.Fatalf("ttl above max = %v", err)
	}
	g, err := f.e.Approve(dave, q.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Actor.Subject != "bob" || g.Role != "admin" || g.Note != "dave" || !g.Expires.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("grant = %+v", g)
	}
	if _, err := f.e.Approve(dave, q.ID, 0); !errors.Is(err, rbac.ErrNoSuchRequest) {
		t.Fatalf("second approval = %v", err)
	}
	d := f.decide(t, bob, "/admin/users", "manage")
	if !d.Allowed || d.GrantID != g.ID || !d.Privileged {
		t.Fatalf("granted bob: %+v", d)
	}
	// The grant does not reach another tenant, nor work without MFA.
	if f.decide(t, f.mfa(actx("bob", "globex")), "/admin/users", "manage").Allowed {
		t.Fatal("grant crossed tenants")
	}
	if f.decide(t, actx("bob", "acme"), "/admin/users", "manage").Allowed {
		t.Fatal("grant used without mfa")
	}
	// Expired grants deny, also after a reload.
	f.clock.Advance(time.Hour)
	if err := f.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := f.decide(t, f.mfa(actx("bob", "acme")), "/admin/users", "manage"); d.Allowed {
		t.Fatalf("expired grant after reload: %+v", d)
	}
	// Every step was audited.
	seen := map[string]int{}
	for _, ev := range f.rec.Events() {
		seen[ev.Action+"/"+string(ev.Outcome)]++
	}
	for _, k := range []string{"rbac.access.request/allow", "rbac.access.request/deny", "rbac.access.approve/deny", "rbac.access.approve/allow", "rbac.policy.reload/allow"} {
		if seen[k] == 0 {
			t.Errorf("no %s event; got %v", k, seen)
		}
	}
}

func TestRequestExpires(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	q, err := f.e.RequestAccess(actx("bob", "acme"), "admin", "quarterly cleanup")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(rbac.DefaultRequestTTL)
	if _, err := f.e.Approve(f.mfa(actx("dave", "acme")), q.ID, 0); !errors.Is(err, rbac.ErrRequestExpired) {
		t.Fatalf("approve expired request = %v", err)
	}
	if p, _ := f.e.Pending("acme"); len(p) != 0 {
		t.Fatalf("expired request still pending: %+v", p)
	}
	var expired bool
	for _, ev := range f.rec.Events() {
		expired = expired || ev.Action == "rbac.access.expire" && ev.Resource == q.ID
	}
	if !expired {
		t.Fatal("expiry not audited")
	}
	if _, err := f.e.Approve(f.mfa(actx("dave", "acme")), q.ID, 0); !errors.Is(err, rbac.ErrNoSuchRequest) {
		t.Fatalf("expired request not removed: %v", err)
	}
}

func TestRevokeGrant(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	bob := f.mfa(actx("bob", "acme"))
	q, _ := f.e.RequestAccess(bob, "admin", "fix")
	g, err := f.e.Approve(f.mfa(actx("dave", "acme")), q.ID, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if gs, _ := f.e.Grants("acme"); len(gs) != 1 {
		t.Fatalf("Grants = %+v", gs)
	}
	if err := f.e.Revoke(actx("dave", "acme"), g.ID); err != nil {
		t.Fatal(err)
	}
	if f.decide(t, bob, "/admin/users", "manage").Allowed {
		t.Fatal("revoked grant still allows")
	}
}

func TestBreakGlass(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	erin := f.mfa(actx("erin", "acme"))
	if _, err := f.e.BreakGlass(erin, "admin", ""); !errors.Is(err, rbac.ErrJustification) {
		t.Fatalf("no justification = %v", err)
	}
	if _, err := f.e.BreakGlass(actx("erin", "acme"), "admin", "prod down"); !errors.Is(err, rbac.ErrMFARequired) {
		t.Fatalf("no mfa = %v", err)
	}
	if _, err := f.e.BreakGlass(f.mfa(actx("bob", "acme")), "admin", "prod down"); !errors.Is(err, rbac.ErrNotEligible) {
		t.Fatalf("not eligible = %v", err)
	}
	g, err := f.e.BreakGlass(erin, "admin", "INC-7 prod down, on-call lead unreachable")
	if err != nil {
		t.Fatal(err)
	}
	if !g.BreakGlass || !g.Expires.Equal(f.clock.Now().Add(rbac.DefaultBreakGlassTTL)) {
		t.Fatalf("grant = %+v", g)
	}
	if len(f.alert) != 1 || f.alert[0].Severity != audit.SeverityCritical {
		t.Fatalf("alerts = %+v", f.alert)
	}
	var critical bool
	for _, ev := range f.rec.Events() {
		critical = critical || ev.Action == "rbac.breakglass" && ev.Outcome == audit.OutcomeAllow && ev.Severity == audit.SeverityCritical
	}
	if !critical {
		t.Fatal("no critical audit event")
	}
	if !f.decide(t, erin, "/admin/db", "manage").Allowed {
		t.Fatal("break-glass grant does not allow")
	}
	if err := f.e.CloseReview(actx("dave", "acme"), g.ID, "reviewed"); !errors.Is(err, rbac.ErrDenied) {
		t.Fatalf("review of a live grant = %v", err)
	}
	// After its TTL, break-glass denies, also after a reload.
	f.clock.Advance(rbac.DefaultBreakGlassTTL)
	_ = f.e.Reload(context.Background())
	if d := f.decide(t, f.mfa(actx("erin", "acme")), "/admin/db", "manage"); d.Allowed {
		t.Fatalf("break-glass after TTL: %+v", d)
	}
	rev, err := f.e.BreakGlassReview()
	if err != nil || len(rev) != 1 || rev[0].ID != g.ID || !strings.Contains(rev[0].Note, "INC-7") {
		t.Fatalf("review list = %+v, %v", rev, err)
	}
	if err := f.e.CloseReview(actx("dave", "acme"), g.ID, "PIR-7 done"); err != nil {
		t.Fatal(err)
	}
	if rev, _ := f.e.BreakGlassReview(); len(rev) != 0 {
		t.Fatalf("review list after close = %+v", rev)
	}
}

func TestBreakGlassNeedsAlert(t *testing.T) {
	f := newFixture(t, testPolicy, func(c *rbac.Config) { c.Alert = nil })
	if _, err := f.e.BreakGlass(f.mfa(actx("erin", "acme")), "admin", "prod down"); !errors.Is(err, rbac.ErrNoAlert) {
		t.Fatalf("BreakGlass without Alert = %v", err)
	}
	f = newFixture(t, testPolicy, func(c *rbac.Config) {
		c.Alert = func(context.Context, audit.Event) error { return errors.New("pager down") }
	})
	if _, err := f.e.BreakGlass(f.mfa(actx("erin", "acme")), "admin", "prod down"); !errors.Is(err, rbac.ErrAlert) {
		t.Fatalf("BreakGlass with failing Alert = %v", err)
	}
	if f.decide(t, f.mfa(actx("erin", "acme")), "/admin/db", "manage").Allowed {
		t.Fatal("grant kept although the alert failed")
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, c := range []rbac.Config{
		{BreakGlassTTL: 2 * time.Hour},
		{GrantTTL: 9 * time.Hour},
		{MFAMaxAge: -1},
		{MaxRoleDepth: 11},
		{ApproverRole: "*"},
	} {
		c.Logger = &audit.Recorder{}
		if _, err := rbac.New(context.Background(), c); !errors.Is(err, rbac.ErrConfig) {
			t.Errorf("New(%+v) = %v", c, err)
		}
	}
}

func TestConcurrentUpdates(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := f.e.Decide(ctx, rbac.Request{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Object: "/data/x", Action: "read"})
				if err != nil {
					t.Error(err)
					return
				}
				// alice stays a viewer-equivalent through the editor role
				// that is never touched, so read must always be allowed.
				if !d.Allowed {
					t.Errorf("alice lost read: %+v", d)
					return
				}
				_, _ = f.e.Decide(ctx, rbac.Request{Actor: audit.Actor{Subject: "u1", Tenant: "acme"}, Object: "/data/y", Action: "write"})
			}
		}()
	}
	admin := actx("root", "acme")
	for i := 0; i < 50; i++ {
		u := fmt.Sprintf("u%d", i%5)
		if err := f.e.AssignRole(admin, rbac.Assignment{User: u, Role: "editor", Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
		if err := f.e.AddRule(admin, rbac.Rule{Subject: "viewer", Tenant: "acme", Object: fmt.Sprintf("/r/%d", i), Action: "read"}); err != nil {
			t.Fatal(err)
		}
		if err := f.e.UnassignRole(admin, rbac.Assignment{User: u, Role: "editor", Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
		if err := f.e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestHostileInputIsLogged sends objects and subjects that are not valid
// UTF-8 or are huge: the deny must still reach a validating audit sink.
func TestHostileInputIsLogged(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	for _, req := range []rbac.Request{
		{Actor: audit.Actor{Subject: "bob", Tenant: "acme"}, Object: "/data/\xff\xfe", Action: "read"},
		{Actor: audit.Actor{Subject: "b\xffb", Tenant: "acme"}, Object: "/data/x", Action: "read"},
		{Actor: audit.Actor{Subject: "bob", Tenant: "acme"}, Object: "/data/" + strings.Repeat("x", 1<<20), Action: "read"},
		{Actor: audit.Actor{Subject: "bob", Tenant: "acme"}, Object: "/data/x", Action: strings.Repeat("\xff", 1<<17)},
	} {
		d, err := f.e.Decide(context.Background(), req)
		if err != nil || d.Allowed {
			t.Fatalf("Decide = %+v, %v", d, err)
		}
	}
	if n := len(f.rec.Events()); n != 4 {
		t.Fatalf("%d deny events recorded, want 4", n)
	}
	if _, err := f.e.RequestAccess(actx("bob", "acme"), "admin", strings.Repeat("\xff", 100)); !errors.Is(err, rbac.ErrJustification) {
		t.Fatalf("RequestAccess with invalid reason = %v", err)
	}
	if n := len(f.rec.Events()); n != 5 {
		t.Fatalf("refusal not recorded: %d events", n)
	}
}

// TestUsersAndRolesApart checks that a request subject is always a user:
// a user named like a role gets none of its rules, inherited ones
// included, and cannot approve or break the glass through the role's g
// lines, while role inheritance keeps working for real users.
func TestUsersAndRolesApart(t *testing.T) {
	f := newFixture(t, `p, viewer, acme, /data/*, read, allow
p, admin, acme, /admin/*, manage, allow, mfa
g, admin, viewer, acme
g, ops, admin, acme
g, approver, viewer, acme
g, dave, approver, acme
g, breakglass, viewer, acme
g, erin, breakglass, acme
`, nil)
	for _, tt := range []struct {
		sub, obj, act string
		allow         bool
	}{
		{"ops", "/admin/users", "manage", true},
		{"ops", "/data/x", "read", true}, // inherited through admin
		{"admin", "/admin/users", "manage", false},
		{"admin", "/data/x", "read", false},
		{"viewer", "/data/x", "read", false},
		{"approver", "/data/x", "read", false},
	} {
		d := f.decide(t, f.mfa(actx(tt.sub, "acme")), tt.obj, tt.act)
		if d.Allowed != tt.allow {
			t.Errorf("%s %s %s: %+v, want allow=%v", tt.sub, tt.act, tt.obj, d, tt.allow)
		}
	}
	q, err := f.e.RequestAccess(f.mfa(actx("bob", "acme")), "admin", "INC-1 unlock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Approve(f.mfa(actx("approver", "acme")), q.ID, 0); !errors.Is(err, rbac.ErrNotApprover) {
		t.Fatalf("a user named approver approved: %v", err)
	}
	if _, err := f.e.BreakGlass(f.mfa(actx("breakglass", "acme")), "admin", "INC-2 down"); !errors.Is(err, rbac.ErrNotEligible) {
		t.Fatalf("a user named breakglass broke the glass: %v", err)
	}
	if _, err := f.e.Approve(f.mfa(actx("dave", "acme")), q.ID, 0); err != nil {
		t.Fatal(err)
	}
	if d := f.decide(t, f.mfa(actx("bob", "acme")), "/admin/users", "manage"); !d.Allowed || d.GrantID == "" {
		t.Fatalf("granted user: %+v", d)
	}
}

// TestPathParameters checks that objects with path parameters or other
// separators a server may strip or decode are denied by a "/docs/*" rule
// with a typed error, and refused in rules.
func TestPathParameters(t *testing.T) {
	f := newFixture(t, "p, reader, acme, /docs/*, read, allow\ng, alice, reader, acme\n", nil)
	alice := actx("alice", "acme")
	if err := f.e.Check(alice, "/docs/x", "read"); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []string{"/docs/..;/admin", "/docs/.;/x", "/docs/x;jsessionid=1", "/docs/x?y=1", "/docs/%2e%2e/admin",
		"/docs/..%2fadmin", "/docs/x%5cy", "/docs\\..\\admin", "/docs/x\x00", "/docs/x\r\n", "/docs//x", "/docs/./x", "/docs/../admin"} {
		err := f.e.Check(alice, obj, "read")
		if !errors.Is(err, rbac.ErrDenied) || !errors.Is(err, rbac.ErrObject) {
			t.Errorf("Check(%q) = %v, want ErrDenied and ErrObject", obj, err)
		}
	}
	for _, obj := range []string{"/docs/..;/admin", "/docs;/*", "/docs/x;v=1", "..", "/docs/x?y"} {
		err := f.e.AddRule(alice, rbac.Rule{Subject: "reader", Tenant: "acme", Object: obj, Action: "read"})
		if !errors.Is(err, rbac.ErrObject) {
			t.Errorf("AddRule(%q) = %v, want ErrObject", obj, err)
		}
	}
	if _, err := rbac.New(context.Background(), rbac.Config{Logger: &audit.Recorder{}, Policy: []byte("p, reader, acme, /docs;x/*, read, allow\n")}); !errors.Is(err, rbac.ErrObject) {
		t.Fatalf("policy with ';' in an object: %v", err)
	}
}

// TestCheckErrors checks that Check's errors wrap their sentinels, so
// handlers can tell a step-up from a plain deny.
func TestCheckErrors(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	carol := actx("carol", "globex")
	err := f.e.Check(carol, "/admin/users", "manage")
	if !errors.Is(err, rbac.ErrMFARequired) || !errors.Is(err, rbac.ErrDenied) {
		t.Fatalf("Check without MFA = %v, want ErrMFARequired and ErrDenied", err)
	}
	if err := f.e.Check(f.mfa(carol), "/admin/users", "manage"); err != nil {
		t.Fatalf("Check with MFA = %v", err)
	}
	err = f.e.Check(actx("bob", "acme"), "/data/x", "write")
	if !errors.Is(err, rbac.ErrDenied) || errors.Is(err, rbac.ErrMFARequired) || errors.Is(err, rbac.ErrObject) {
		t.Fatalf("plain deny = %v, want ErrDenied only", err)
	}
	if !strings.HasPrefix(err.Error(), "rbac: access denied: no matching allow") {
		t.Fatalf("deny text %q", err)
	}
	// The explicit deny wins over MFA: no step-up would help.
	err = f.e.Check(f.mfa(actx("alice", "acme")), "/data/secret/x", "write")
	if !errors.Is(err, rbac.ErrDenied) || errors.Is(err, rbac.ErrMFARequired) {
		t.Fatalf("explicit deny = %v", err)
	}
	bad := &gateLogger{}
	bad.set(func(audit.Event) bool { return true })
	e, err := rbac.New(context.Background(), rbac.Config{Logger: bad, Policy: []byte(testPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Check(actx("bob", "acme"), "/data/x", "write"); !errors.Is(err, rbac.ErrDenied) || !errors.Is(err, errAuditDown) {
		t.Fatalf("Check with a failing audit log = %v, want ErrDenied wrapping the log's error", err)
	}
}

// TestPolicyErrorType checks that policy problems are *rbac.PolicyError
// values carrying the line and the sentinel.
func TestPolicyErrorType(t *testing.T) {
	_, err := rbac.New(context.Background(), rbac.Config{Logger: &audit.Recorder{}, Policy: []byte("p, editor, acme, /data/*, write, allow\np, *, acme, /x, read, allow\n")})
	var pe *rbac.PolicyError
	if !errors.As(err, &pe) || pe.Line != 2 || !errors.Is(err, rbac.ErrWildcard) || pe.Err != rbac.ErrWildcard {
		t.Fatalf("New = %#v", err)
	}
	_, err = rbac.New(context.Background(), rbac.Config{Logger: &audit.Recorder{}, Policy: []byte("p, editor\n")})
	if !errors.As(err, &pe) || pe.Line != 1 || !errors.Is(err, rbac.ErrSyntax) {
		t.Fatalf("New = %#v", err)
	}
	f := newFixture(t, testPolicy, nil)
	err = f.e.AssignRole(actx("root", "acme"), rbac.Assignment{User: "alice", Role: "Editor", Tenant: "acme"})
	if !errors.As(err, &pe) || pe.Line != 0 || !errors.Is(err, rbac.ErrCase) {
		t.Fatalf("AssignRole = %#v", err)
	}
	if _, err := rbac.Lint([]byte("p, editor\n")); !errors.As(err, &pe) {
		t.Fatalf("Lint = %#v", err)
	}
}
