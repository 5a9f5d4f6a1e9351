package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/rbac/pgstore"
)

func pgPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func pgEnforcer(t *testing.T, dsn string, c *clock, seed string) (*rbac.Enforcer, *audit.Recorder) {
	t.Helper()
	rec := &audit.Recorder{}
	st, err := pgstore.Open(context.Background(), pgPool(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	cfg := rbac.Config{Logger: rec, Store: st, Clock: audit.ClockFunc(c.Now),
		Alert: func(context.Context, audit.Event) error { return nil }}
	if seed != "" {
		cfg.Policy = []byte(seed)
	}
	e, err := rbac.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, rec
}

// eventually polls cond until it holds or 10 s pass. It waits for a
// notification to arrive from PostgreSQL, not for time to pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allowed(e *rbac.Enforcer, ctx context.Context, obj, act string) bool {
	return e.Check(ctx, obj, act) == nil
}

// TestPostgresTwoInstances runs two enforcers on one database: each sees
// the other's changes (rules, role removals, added denies, grants)
// through LISTEN/NOTIFY, with no stale decision left behind.
func TestPostgresTwoInstances(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	a, _ := pgEnforcer(t, dsn, c, testPolicy)
	b, _ := pgEnforcer(t, dsn, c, "p, ignored, x, /y, read, allow") // table not empty: seed ignored
	alice := actx("alice", "acme")
	admin := actx("root", "acme")

	if !allowed(a, alice, "/data/x", "write") || !allowed(b, alice, "/data/x", "write") {
		t.Fatal("seeded policy not visible on both instances")
	}
	if allowed(b, actx("ignored", "x"), "/y", "read") {
		t.Fatal("second seed was applied to a non-empty table")
	}

	// Revoke on A: B stops allowing.
	if err := a.UnassignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if allowed(a, alice, "/data/x", "write") {
		t.Fatal("A allows after its own revoke")
	}
	eventually(t, "B to see the revoke", func() bool { return !allowed(b, alice, "/data/x", "write") })

	// Grant on B: A starts allowing.
	if err := b.AssignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to see the assignment", func() bool { return allowed(a, alice, "/data/x", "write") })

	// An added deny on A reaches B.
	if err := a.AddRule(admin, rbac.Rule{Subject: "editor", Tenant: "acme", Object: "/data/x", Action: "write", Deny: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see the deny", func() bool { return !allowed(b, alice, "/data/x", "write") })

	// A four-eyes grant approved on A is usable on B and expires on both,
	// after a reload too.
	bob := rbac.WithMFA(actx("bob", "acme"), c.Now())
	q, err := b.RequestAccess(bob, "admin", "INC-9 user cleanup with a long reason that is longer than one hundred bytes, to check the text columns of the table")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to see the request", func() bool { p, _ := a.Pending("acme"); return len(p) == 1 })
	if _, err := a.Approve(rbac.WithMFA(actx("dave", "acme"), c.Now()), q.ID, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see the grant", func() bool { return allowed(b, bob, "/admin/users", "manage") })
	c.Advance(time.Hour)
	bob = rbac.WithMFA(actx("bob", "acme"), c.Now())
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if allowed(a, bob, "/admin/users", "manage") || allowed(b, bob, "/admin/users", "manage") {
		t.Fatal("expired grant allows")
	}
}

// TestPostgresInvalidRowFailsClosed writes a wildcard rule straight into
// the table: the reload refuses it and every decision denies.
func TestPostgresInvalidRowFailsClosed(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	e, rec := pgEnforcer(t, dsn, c, testPolicy)
	alice := actx("alice", "acme")
	if !allowed(e, alice, "/data/x", "write") {
		t.Fatal("setup")
	}
	pool := pgPool(t, dsn)
	if _, err := pool.Exec(context.Background(), "INSERT INTO tomkit_rbac_rule (ptype, v0, v1, v2, v3, v4, v5) VALUES ('p', '*', 'acme', '/data/*', 'write', 'allow', 'none')"); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); !errors.Is(err, rbac.ErrWildcard) {
		t.Fatalf("Reload = %v, want ErrWildcard", err)
	}
	d, _ := e.Decide(alice, rbac.Request{Object: "/data/x", Action: "write"})
	if d.Allowed || d.Reason != "policy unavailable" {
		t.Fatalf("decision with an invalid stored policy: %+v", d)
	}
	var critical bool
	for _, ev := range rec.Events() {
		critical = critical || ev.Action == "rbac.policy.reload" && ev.Severity == audit.SeverityCritical
	}
	if !critical {
		t.Fatal("failed reload not audited as critical")
	}
	// A change while the stored policy is invalid does not index it.
	if err := e.RemoveRule(actx("root", "acme"), rbac.Rule{Subject: "svc", Tenant: "acme", Object: "invoices", Action: "export"}); !errors.Is(err, rbac.ErrWildcard) {
		t.Fatalf("RemoveRule with an invalid stored policy = %v, want ErrWildcard", err)
	}
	if d, _ := e.Decide(actx("mallory", "acme"), rbac.Request{Object: "/data/x", Action: "write"}); d.Allowed || d.Reason != "policy unavailable" {
		t.Fatalf("decision after a change on an invalid stored policy: %+v", d)
	}
	if _, err := pool.Exec(context.Background(), "DELETE FROM tomkit_rbac_rule WHERE v0 = '*'"); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !allowed(e, alice, "/data/x", "write") {
		t.Fatal("not recovered after the bad row was removed")
	}
}

// TestPostgresRemoveExact checks that removals with an empty field are
// refused with a typed error and remove nothing, in the table and on a
// second instance; and that the audit event says what the store did.
func TestPostgresRemoveExact(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	a, rec := pgEnforcer(t, dsn, c, testPolicy)
	b, _ := pgEnforcer(t, dsn, c, "")
	pool := pgPool(t, dsn)
	count := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM tomkit_rbac_rule").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	admin := actx("root", "acme")

	err := a.RemoveRule(admin, rbac.Rule{Tenant: "acme", Object: "/data/secret/*", Action: "write", Deny: true})
	var pe *rbac.PolicyError
	if !errors.Is(err, rbac.ErrName) || !errors.As(err, &pe) {
		t.Fatalf("RemoveRule with an empty subject = %v, want a *PolicyError wrapping ErrName", err)
	}
	err = a.UnassignRole(admin, rbac.Assignment{User: "", Role: "editor", Tenant: "acme"})
	if !errors.Is(err, rbac.ErrName) || !errors.As(err, &pe) {
		t.Fatalf("UnassignRole with an empty user = %v, want a *PolicyError wrapping ErrName", err)
	}
	for _, r := range []rbac.Rule{
		{Subject: "editor", Object: "/data/*", Action: "write"},
		{Subject: "editor", Tenant: "acme", Action: "write"},
		{Subject: "editor", Tenant: "acme", Object: "/data/*"},
		{Subject: "*", Tenant: "acme", Object: "/data/*", Action: "write"},
	} {
		if err := a.RemoveRule(admin, r); err == nil {
			t.Errorf("RemoveRule(%+v) accepted", r)
		}
	}
	if err := a.UnassignRole(admin, rbac.Assignment{User: "alice", Role: "", Tenant: "acme"}); err == nil {
		t.Error("UnassignRole with an empty role accepted")
	}
	if err := a.UnassignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: ""}); err == nil {
		t.Error("UnassignRole with an empty tenant accepted")
	}
	if got := count(); got != before {
		t.Fatalf("refused removals changed the table: %d rows, want %d", got, before)
	}
	var refused int
	for _, ev := range rec.Events() {
		if (ev.Action == "rbac.rule.remove" || ev.Action == "rbac.role.unassign") && ev.Outcome == audit.OutcomeDeny {
			refused++
		}
	}
	if refused != 8 {
		t.Fatalf("%d refused removals audited as deny, want 8", refused)
	}
	// The deny and the assignments still hold, on a reloaded second
	// instance too.
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*rbac.Enforcer{a, b} {
		if allowed(e, actx("alice", "acme"), "/data/secret/x", "write") || !allowed(e, actx("alice", "acme"), "/data/x", "write") ||
			!allowed(e, actx("ann", "acme"), "/data/x", "write") {
			t.Fatal("a refused removal changed a decision")
		}
	}

	// A removal of a missing rule says so; a real one says what went.
	last := func(action string) audit.Event {
		evs := rec.Events()
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Action == action {
				return evs[i]
			}
		}
		t.Fatalf("no %s event", action)
		return audit.Event{}
	}
	if err := a.RemoveRule(admin, rbac.Rule{Subject: "nobody", Tenant: "acme", Object: "/data/*", Action: "write"}); err != nil {
		t.Fatal(err)
	}
	if ev := last("rbac.rule.remove"); ev.Reason != "no such rule" {
		t.Fatalf("missing rule removal audited as %q", ev.Reason)
	}
	if err := a.UnassignRole(admin, rbac.Assignment{User: "alice", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if ev := last("rbac.role.unassign"); ev.Reason != "removed 1 row" || ev.Outcome != audit.OutcomeAllow {
		t.Fatalf("removal audited as %q (%s)", ev.Reason, ev.Outcome)
	}
	if got := count(); got != before-1 {
		t.Fatalf("%d rows after one removal, want %d", got, before-1)
	}
}

// approveRace approves each of n access requests at the same moment
// through each of the enforcers, and checks that each request yields
// exactly one grant, and that every other approval is refused with
// ErrNoSuchRequest.
func approveRace(t *testing.T, c *clock, n int, es ...*rbac.Enforcer) {
	t.Helper()
	mfa := func(sub string) context.Context { return rbac.WithMFA(actx(sub, "acme"), c.Now()) }
	before, err := es[0].Grants("acme")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		q, err := es[0].RequestAccess(mfa("bob"), "admin", fmt.Sprintf("INC-%d race", i))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es[1:] {
			eventually(t, "the request to reach every instance", func() bool {
				p, _ := e.Pending("acme")
				return slices.ContainsFunc(p, func(r rbac.AccessRequest) bool { return r.ID == q.ID })
			})
		}
		const each = 2
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok, notFound int
		for _, e := range es {
			for k := 0; k < each; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := e.Approve(mfa("dave"), q.ID, 0)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, rbac.ErrNoSuchRequest):
						notFound++
					default:
						t.Errorf("Approve: %v", err)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		if ok != 1 || notFound != len(es)*each-1 {
			t.Fatalf("request %d: %d approvals succeeded, %d refused as not found; want 1 and %d", i, ok, notFound, len(es)*each-1)
		}
	}
	for _, e := range es {
		if err := e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		gs, err := e.Grants("acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != len(before)+n {
			t.Fatalf("%d new grants for %d requests", len(gs)-len(before), n)
		}
	}
}

// TestApproveOnce approves one request concurrently on one in-memory
// enforcer: at most one grant.
func TestApproveOnce(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	approveRace(t, f.clock, 20, f.e)
}

// TestPostgresApproveOnce approves one request concurrently on one
// enforcer and on two enforcers sharing a schema: the database lets one
// approval through (the request row's delete, whose row count is checked
// in the grant's transaction).
func TestPostgresApproveOnce(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	a, _ := pgEnforcer(t, dsn, c, testPolicy)
	approveRace(t, c, 10, a)
	b, _ := pgEnforcer(t, dsn, c, "")
	approveRace(t, c, 20, a, b)
	pool := pgPool(t, dsn)
	var grants, reqs int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE ptype = 'p2'), count(*) FILTER (WHERE ptype = 'p3') FROM tomkit_rbac_rule").Scan(&grants, &reqs); err != nil {
		t.Fatal(err)
	}
	if grants != 30 || reqs != 0 {
		t.Fatalf("table holds %d grants and %d requests, want 30 and 0", grants, reqs)
	}
}

// TestPostgresChangeLog checks that another instance applies each change
// itself, from the change log, without reloading the whole policy, and
// reloads when it finds a gap in the log.
func TestPostgresChangeLog(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	a, _ := pgEnforcer(t, dsn, c, testPolicy)
	b, recB := pgEnforcer(t, dsn, c, "")
	count := func(action string) int {
		n := 0
		for _, ev := range recB.Events() {
			if ev.Action == action {
				n++
			}
		}
		return n
	}
	reloads := count("rbac.policy.reload")
	admin := actx("root", "acme")
	alice, bob := actx("alice", "acme"), actx("bob", "acme")
	if err := a.AddRule(admin, rbac.Rule{Subject: "editor", Tenant: "acme", Object: "/data/x", Action: "write", Deny: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to apply the deny", func() bool { return !allowed(b, alice, "/data/x", "write") })
	if err := a.AssignRole(admin, rbac.Assignment{User: "bob", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to apply the assignment", func() bool { return allowed(b, bob, "/data/y", "write") })
	if err := a.UnassignRole(admin, rbac.Assignment{User: "bob", Role: "editor", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to apply the removal", func() bool { return !allowed(b, bob, "/data/y", "write") })
	if got := count("rbac.policy.reload"); got != reloads {
		t.Fatalf("B reloaded the whole policy %d times for three changes", got-reloads)
	}
	if count("rbac.policy.sync") == 0 {
		t.Fatal("B applied no change from the log")
	}
	// A change B never sees in the log (a gap): B reloads and sees it.
	pool := pgPool(t, dsn)
	if _, err := pool.Exec(context.Background(), `INSERT INTO tomkit_rbac_rule (ptype, v0, v1, v2, v3, v4, v5) VALUES ('g', 'zoe', 'viewer', 'acme', '', '', '');
		UPDATE tomkit_rbac_seq SET n = n + 2;
		INSERT INTO tomkit_rbac_change (seq, body) SELECT n, '{}' FROM tomkit_rbac_seq;
		SELECT pg_notify('tomkit_rbac', n::text) FROM tomkit_rbac_seq`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to reload after a gap", func() bool { return allowed(b, actx("zoe", "acme"), "/data/x", "read") })
	// The reload's event is written just after the new index is in
	// place, so it may trail the decision above by a moment.
	eventually(t, "B to record a reload after a gap in the change log", func() bool { return count("rbac.policy.reload") > reloads })
	// An announcement without a change number (from an older version)
	// makes B reload.
	if _, err := pool.Exec(context.Background(), `INSERT INTO tomkit_rbac_rule (ptype, v0, v1, v2, v3, v4, v5) VALUES ('g', 'xia', 'viewer', 'acme', '', '', '');
		SELECT pg_notify('tomkit_rbac', 'i_0123')`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to reload after an old-style notification", func() bool { return allowed(b, actx("xia", "acme"), "/data/x", "read") })
	// A, whose next change does not follow on from what it applied,
	// catches up first and stays consistent.
	if err := a.AssignRole(admin, rbac.Assignment{User: "yan", Role: "viewer", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*rbac.Enforcer{a, b} {
		e := e
		eventually(t, "both to allow zoe and yan", func() bool {
			return allowed(e, actx("zoe", "acme"), "/data/x", "read") && allowed(e, actx("yan", "acme"), "/data/x", "read")
		})
	}
}

// BenchmarkPropagate measures the time from a change returning on one
// instance to another instance deciding with it, over PostgreSQL
// (LISTEN/NOTIFY and the change log), and reports its p50 and max.
func BenchmarkPropagate(b *testing.B) {
	dsn := testpg.Schema(b)
	c := newClock()
	pg := func(seed string) *rbac.Enforcer {
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		st, err := pgstore.Open(context.Background(), pool)
		if err != nil {
			b.Fatal(err)
		}
		e, err := rbac.New(context.Background(), rbac.Config{Logger: nopLogger{}, Store: st, Clock: audit.ClockFunc(c.Now), Policy: []byte(seed)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		return e
	}
	a, other := pg(testPolicy), pg("")
	admin, alice := actx("root", "acme"), actx("alice", "acme")
	deny := rbac.Rule{Subject: "editor", Tenant: "acme", Object: "/data/x", Action: "write", Deny: true}
	wait := func(want bool) time.Duration {
		t0 := time.Now()
		for allowed(other, alice, "/data/x", "write") != want {
			if time.Since(t0) > 10*time.Second {
				b.Fatal("change did not propagate")
			}
			time.Sleep(50 * time.Microsecond)
		}
		return time.Since(t0)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.AddRule(admin, deny); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, wait(false))
		if err := a.RemoveRule(admin, deny); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, wait(true))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
