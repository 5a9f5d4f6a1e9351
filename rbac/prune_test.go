package rbac_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/rbac"
)

// pruneCase holds what prepare created: expired rows PruneExpired must
// remove, and rows it must keep.
type pruneCase struct {
	expGrant   rbac.Grant         // approved, expired: removed
	expRequest rbac.AccessRequest // expired exactly now: removed
	bgOpen     rbac.Grant         // break-glass, expired, review open: kept
	bgClosed   rbac.Grant         // break-glass, expired, review closed
	bgLive     rbac.Grant         // break-glass in force: kept
	liveGrant  rbac.Grant         // approved, in force: kept
	liveReq    rbac.AccessRequest // pending: kept
}

// preparePrune builds the scenario on e and leaves c at the moment the
// expired request expires.
func preparePrune(t *testing.T, e *rbac.Enforcer, c *clock) pruneCase {
	t.Helper()
	var pc pruneCase
	mfa := func(sub string) context.Context { return rbac.WithMFA(actx(sub, "acme"), c.Now()) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	q, err := e.RequestAccess(mfa("bob"), "admin", "INC-1 rotate keys")
	must(err)
	pc.expGrant, err = e.Approve(mfa("dave"), q.ID, time.Hour)
	must(err)
	pc.bgOpen, err = e.BreakGlass(mfa("erin"), "admin", "INC-2 prod down")
	must(err)
	pc.bgClosed, err = e.BreakGlass(mfa("erin"), "admin", "INC-3 prod down again")
	must(err)
	pc.expRequest, err = e.RequestAccess(mfa("alice"), "admin", "INC-4 never approved")
	must(err)

	c.Advance(rbac.DefaultRequestTTL) // now == expRequest.Expires
	if !c.Now().Equal(pc.expRequest.Expires) {
		t.Fatalf("setup: clock %v, request expires %v", c.Now(), pc.expRequest.Expires)
	}
	must(e.CloseReview(actx("dave", "acme"), pc.bgClosed.ID, "PIR-3 done"))

	pc.liveReq, err = e.RequestAccess(mfa("ann"), "admin", "INC-5 pending")
	must(err)
	q, err = e.RequestAccess(mfa("bob"), "admin", "INC-6 audit fix")
	must(err)
	pc.liveGrant, err = e.Approve(mfa("dave"), q.ID, rbac.DefaultMaxGrantTTL)
	must(err)
	pc.bgLive, err = e.BreakGlass(mfa("erin"), "admin", "INC-7 prod down once more")
	must(err)
	return pc
}

func ids[T any](xs []T, id func(T) string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[id(x)] = true
	}
	return m
}

func grantID(g rbac.Grant) string { return g.ID }

// checkPruned runs PruneExpired twice on a prepared enforcer and checks
// the report, the audit events and what is left.
func checkPruned(t *testing.T, e *rbac.Enforcer, rec *audit.Recorder, pc pruneCase) {
	t.Helper()
	ctx := actx("janitor", "acme")
	before := len(rec.Events())
	rep, err := e.PruneExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (rbac.PruneReport{Grants: 1, Requests: 1, BreakGlassKept: 1}); rep != want {
		t.Fatalf("report = %+v, want %+v", rep, want)
	}
	evs := rec.Events()[before:]
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	if ev := evs[0]; ev.Action != "rbac.grant.expire" || ev.Resource != pc.expGrant.ID || ev.Outcome != audit.OutcomeAllow ||
		ev.Actor != pc.expGrant.Actor || attr(ev, "role") != "admin" {
		t.Errorf("grant event = %+v", ev)
	}
	if ev := evs[1]; ev.Action != "rbac.access.expire" || ev.Resource != pc.expRequest.ID || ev.Outcome != audit.OutcomeAllow ||
		ev.Actor != pc.expRequest.Actor {
		t.Errorf("request event = %+v", ev)
	}
	if ev := evs[2]; ev.Action != "rbac.policy.prune" || ev.Outcome != audit.OutcomeAllow || ev.Actor.Subject != "janitor" ||
		attr(ev, "grants") != "1" || attr(ev, "requests") != "1" || attr(ev, "breakglass_kept") != "1" {
		t.Errorf("summary event = %+v", ev)
	}

	rev, err := e.BreakGlassReview()
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rev, grantID); len(got) != 2 || !got[pc.bgOpen.ID] || !got[pc.bgLive.ID] {
		t.Errorf("break-glass review after prune = %+v", rev)
	}
	gs, err := e.Grants("acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(gs, grantID); len(got) != 2 || !got[pc.liveGrant.ID] || !got[pc.bgLive.ID] {
		t.Errorf("grants in force after prune = %+v", gs)
	}
	p, err := e.Pending("acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].ID != pc.liveReq.ID {
		t.Errorf("pending after prune = %+v", p)
	}

	// Idempotent: nothing left to remove, only the summary is written.
	before = len(rec.Events())
	rep, err = e.PruneExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (rbac.PruneReport{BreakGlassKept: 1}); rep != want {
		t.Fatalf("second report = %+v, want %+v", rep, want)
	}
	if evs := rec.Events()[before:]; len(evs) != 1 || evs[0].Action != "rbac.policy.prune" || attr(evs[0], "grants") != "0" {
		t.Fatalf("second run events = %+v", evs)
	}

}

// assertGone checks through the API that the expired grant and request
// are no longer stored: a stored expired request would be refused with
// ErrRequestExpired, a stored grant revoked. It changes the store if they are.
func assertGone(t *testing.T, e *rbac.Enforcer, c *clock, pc pruneCase) {
	t.Helper()
	if _, err := e.Approve(rbac.WithMFA(actx("dave", "acme"), c.Now()), pc.expRequest.ID, 0); !errors.Is(err, rbac.ErrNoSuchRequest) {
		t.Errorf("Approve(expired request) after prune = %v, want ErrNoSuchRequest", err)
	}
	if err := e.Revoke(actx("dave", "acme"), pc.expGrant.ID); !errors.Is(err, rbac.ErrNoSuchRequest) {
		t.Errorf("Revoke(expired grant) after prune = %v, want ErrNoSuchRequest", err)
	}
}

func TestPruneExpired(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	pc := preparePrune(t, f.e, f.clock)
	checkPruned(t, f.e, f.rec, pc)
	assertGone(t, f.e, f.clock, pc)
}

// gateLogger passes events to a Recorder unless fail says otherwise.
type gateLogger struct {
	rec  audit.Recorder
	mu   sync.Mutex
	fail func(audit.Event) bool
}

var errAuditDown = errors.New("audit sink down")

func (g *gateLogger) Log(ctx context.Context, ev audit.Event) error {
	g.mu.Lock()
	fail := g.fail
	g.mu.Unlock()
	if fail != nil && fail(ev) {
		return errAuditDown
	}
	return g.rec.Log(ctx, ev)
}

func (g *gateLogger) set(fail func(audit.Event) bool) {
	g.mu.Lock()
	g.fail = fail
	g.mu.Unlock()
}

func TestPruneExpiredAuditFailure(t *testing.T) {
	gate := &gateLogger{}
	f := newFixture(t, testPolicy, func(c *rbac.Config) { c.Logger = gate })
	pc := preparePrune(t, f.e, f.clock)

	gate.set(func(audit.Event) bool { return true })
	rep, err := f.e.PruneExpired(context.Background())
	if !errors.Is(err, errAuditDown) {
		t.Fatalf("PruneExpired with a failing logger = %v, want the audit error", err)
	}
	if rep != (rbac.PruneReport{BreakGlassKept: 1}) {
		t.Fatalf("report = %+v, want nothing removed", rep)
	}
	gate.set(nil)
	// Nothing was removed: a working run still finds both rows.
	checkPruned(t, f.e, &gate.rec, pc)
	assertGone(t, f.e, f.clock, pc)
}

func TestPruneExpiredStopsAtFirstAuditFailure(t *testing.T) {
	gate := &gateLogger{}
	f := newFixture(t, testPolicy, func(c *rbac.Config) { c.Logger = gate })
	pc := preparePrune(t, f.e, f.clock)

	// The grant's event is written, the request's is not: the grant is
	// removed, the request stays.
	gate.set(func(ev audit.Event) bool { return ev.Action == "rbac.access.expire" })
	rep, err := f.e.PruneExpired(context.Background())
	if !errors.Is(err, errAuditDown) {
		t.Fatalf("PruneExpired = %v, want the audit error", err)
	}
	if want := (rbac.PruneReport{Grants: 1, BreakGlassKept: 1}); rep != want {
		t.Fatalf("report = %+v, want %+v", rep, want)
	}
	var grantEv, reqEv, summary int
	for _, ev := range gate.rec.Events() {
		switch {
		case ev.Action == "rbac.grant.expire" && ev.Resource == pc.expGrant.ID:
			grantEv++
		case ev.Action == "rbac.access.expire":
			reqEv++
		case ev.Action == "rbac.policy.prune" && ev.Outcome == audit.OutcomeError:
			summary++
		}
	}
	if grantEv != 1 || reqEv != 0 || summary != 1 {
		t.Fatalf("events: grant expire %d, request expire %d, failed summary %d; want 1, 0, 1", grantEv, reqEv, summary)
	}
	gate.set(nil)
	rep, err = f.e.PruneExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (rbac.PruneReport{Requests: 1, BreakGlassKept: 1}); rep != want {
		t.Fatalf("report after recovery = %+v, want %+v", rep, want)
	}
	assertGone(t, f.e, f.clock, pc)
}

func TestPruneExpiredCancelledAndClosed(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	preparePrune(t, f.e, f.clock)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := f.e.PruneExpired(ctx)
	if !errors.Is(err, context.Canceled) || rep.Grants+rep.Requests != 0 {
		t.Fatalf("PruneExpired(cancelled) = %+v, %v", rep, err)
	}
	rep, err = f.e.PruneExpired(context.Background())
	if err != nil || rep.Grants != 1 || rep.Requests != 1 {
		t.Fatalf("PruneExpired after a cancelled run = %+v, %v", rep, err)
	}
	f.e.Close()
	if _, err := f.e.PruneExpired(context.Background()); !errors.Is(err, rbac.ErrEnforcerClosed) {
		t.Fatalf("PruneExpired after Close = %v", err)
	}
}

// TestPruneExpiredConcurrentDecisions prunes while decisions run: a
// grant in force keeps allowing, an expired one keeps denying.
func TestPruneExpiredConcurrentDecisions(t *testing.T) {
	f := newFixture(t, testPolicy, nil)
	pc := preparePrune(t, f.e, f.clock)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bob := rbac.WithMFA(actx("bob", "acme"), f.clock.Now())
			alice := rbac.WithMFA(actx("alice", "acme"), f.clock.Now())
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d, err := f.e.Decide(bob, rbac.Request{Object: "/admin/x", Action: "manage"}); err != nil || !d.Allowed || d.GrantID != pc.liveGrant.ID {
					t.Errorf("live grant: %+v, %v", d, err)
					return
				}
				if d, err := f.e.Decide(alice, rbac.Request{Object: "/admin/x", Action: "manage"}); err != nil || d.Allowed {
					t.Errorf("alice without a grant: %+v, %v", d, err)
					return
				}
			}
		}()
	}
	var removed int
	for i := 0; i < 20; i++ {
		rep, err := f.e.PruneExpired(context.Background())
		if err != nil {
			t.Error(err)
			break
		}
		removed += rep.Grants + rep.Requests
	}
	close(stop)
	wg.Wait()
	if removed != 2 {
		t.Fatalf("removed %d rows over 20 runs, want 2", removed)
	}
}

// TestPostgresPruneExpired runs the scenario on PostgreSQL and checks the
// table itself and a fresh instance.
func TestPostgresPruneExpired(t *testing.T) {
	dsn := testpg.Schema(t)
	c := newClock()
	e, rec := pgEnforcer(t, dsn, c, testPolicy)
	pc := preparePrune(t, e, c)
	checkPruned(t, e, rec, pc)

	pool := pgPool(t, dsn)
	rows := func(id string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM tomkit_rbac_rule WHERE v0 = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for id, want := range map[string]int{
		pc.expGrant.ID: 0, pc.expRequest.ID: 0, pc.bgClosed.ID: 0,
		pc.bgOpen.ID: 1, pc.bgLive.ID: 1, pc.liveGrant.ID: 1, pc.liveReq.ID: 1,
	} {
		if got := rows(id); got != want {
			t.Errorf("%s: %d rows in the table, want %d", id, got, want)
		}
	}
	// A fresh instance loads the pruned table: nothing left to prune.
	fresh, _ := pgEnforcer(t, dsn, c, "")
	rep, err := fresh.PruneExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (rbac.PruneReport{BreakGlassKept: 1}); rep != want {
		t.Fatalf("fresh instance report = %+v, want %+v", rep, want)
	}
	assertGone(t, e, c, pc)
}
