package rbac_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// The benchmark world: 100 tenants × 10 roles × 100 objects × 2 actions =
// 200,000 rules, and 10,000 users (100 per tenant, 1–2 roles each). It is
// built lazily, so it costs nothing outside -bench.
const (
	benchTenants = 100
	benchRoles   = 10
	benchObjects = 100
	benchUsers   = 10000
)

type benchWorld struct {
	rules, links [][]string
	reqs         []benchReq
	tomkit       *rbac.Enforcer
	small        *rbac.Enforcer // tenant000 alone: 2,000 rules
	plain        *casbin.Enforcer
	cached       *casbin.SyncedCachedEnforcer
}

type benchReq struct{ sub, dom, obj, act string }

var (
	cachedCursor int
	worldOnce    sync.Once
	world        *benchWorld
)

func benchSetup(b *testing.B) *benchWorld {
	worldOnce.Do(func() {
		w := &benchWorld{}
		rng := rand.New(rand.NewPCG(7, 7))
		acts := []string{"read", "write"}
		for t := 0; t < benchTenants; t++ {
			dom := fmt.Sprintf("tenant%03d", t)
			for r := 0; r < benchRoles; r++ {
				for o := 0; o < benchObjects; o++ {
					for _, a := range acts {
						// Role r may act on objects o where (o+r) is
						// not a multiple of 3; otherwise a deny, so that
						// answers are mixed.
						eft := "allow"
						if (o+r)%3 == 0 {
							eft = "deny"
						}
						w.rules = append(w.rules, []string{fmt.Sprintf("role%d", r), dom, fmt.Sprintf("/data/obj%03d", o), a, eft, "none"})
					}
				}
			}
		}
		for u := 0; u < benchUsers; u++ {
			dom := fmt.Sprintf("tenant%03d", u%benchTenants)
			user := fmt.Sprintf("user%05d", u)
			w.links = append(w.links, []string{user, fmt.Sprintf("role%d", rng.IntN(benchRoles)), dom})
			if u%2 == 0 {
				w.links = append(w.links, []string{user, fmt.Sprintf("role%d", rng.IntN(benchRoles)), dom})
			}
		}
		for i := 0; i < 4096; i++ {
			u := rng.IntN(benchUsers)
			w.reqs = append(w.reqs, benchReq{
				sub: fmt.Sprintf("user%05d", u),
				dom: fmt.Sprintf("tenant%03d", u%benchTenants),
				obj: fmt.Sprintf("/data/obj%03d", rng.IntN(benchObjects)),
				act: acts[rng.IntN(2)],
			})
		}
		e, err := rbac.New(context.Background(), rbac.Config{Logger: nopLogger{}, Policy: []byte(policyText(w.rules, w.links))})
		if err != nil {
			b.Fatal(err)
		}
		w.tomkit = e
		var srules, slinks [][]string
		for _, r := range w.rules {
			if r[1] == "tenant000" {
				srules = append(srules, r)
			}
		}
		for _, g := range w.links {
			if g[2] == "tenant000" {
				slinks = append(slinks, g)
			}
		}
		if w.small, err = rbac.New(context.Background(), rbac.Config{Logger: nopLogger{}, Policy: []byte(policyText(srules, slinks))}); err != nil {
			b.Fatal(err)
		}
		w.plain = plainCasbin(b, w.rules, w.links)
		m, _ := model.NewModelFromString(rbac.Model())
		ce, err := casbin.NewSyncedCachedEnforcer(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ce.AddPolicies(w.rules); err != nil {
			b.Fatal(err)
		}
		if _, err := ce.AddGroupingPolicies(w.links); err != nil {
			b.Fatal(err)
		}
		w.cached = ce
		// The answers must be identical.
		for _, q := range w.reqs[:24] {
			want, _ := w.plain.Enforce(q.sub, q.dom, q.obj, q.act, "")
			d, _ := w.tomkit.Decide(context.Background(), rbac.Request{Actor: audit.Actor{Subject: q.sub, Tenant: q.dom}, Object: q.obj, Action: q.act})
			if d.Allowed != want {
				b.Fatalf("tomkit %v, casbin %v for %+v", d.Allowed, want, q)
			}
		}
		world = w
	})
	if world == nil {
		b.Fatal("setup failed")
	}
	return world
}

// measure runs decide b.N times over the request mix and reports p50 and
// p99 latency besides ns/op. The percentiles are taken over at least
// minSamples decisions (the extra ones untimed by the benchmark clock), so
// that a small -benchtime, needed for plain Casbin, still gives stable
// percentiles for the fast contenders.
func measure(b *testing.B, reqs []benchReq, minSamples int, decide func(q benchReq) bool) {
	n := max(b.N, minSamples)
	lat := make([]time.Duration, 0, n)
	allows := 0
	b.ResetTimer()
	for i := 0; i < n; i++ {
		if i == b.N {
			b.StopTimer()
		}
		q := reqs[i%len(reqs)]
		t0 := time.Now()
		if decide(q) {
			allows++
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(allows)/float64(n), "allow-ratio")
}

// BenchmarkDecide compares tomkit's decision with plain casbin.Enforcer
// and SyncedCachedEnforcer on the same 200,000-rule policy. Plain Casbin
// takes hundreds of milliseconds per decision, so run with a fixed, small
// iteration count; tomkit and the warmed cache still measure their
// percentiles over 200,000 decisions:
//
//	go test -run '^$' -bench Decide -benchtime 20x -count 3 ./rbac/
func BenchmarkDecide(b *testing.B) {
	w := benchSetup(b)
	ctx := context.Background()
	b.Run("tomkit", func(b *testing.B) {
		b.ReportAllocs()
		measure(b, w.reqs, 200000, func(q benchReq) bool {
			d, _ := w.tomkit.Decide(ctx, rbac.Request{Actor: audit.Actor{Subject: q.sub, Tenant: q.dom}, Object: q.obj, Action: q.act})
			return d.Allowed
		})
	})
	b.Run("casbin-plain", func(b *testing.B) {
		measure(b, w.reqs, 0, func(q benchReq) bool {
			ok, _ := w.plain.Enforce(q.sub, q.dom, q.obj, q.act, "")
			return ok
		})
	})
	// Random requests: 10,000 users × 100 objects × 2 actions rarely
	// repeat, so the cache mostly misses.
	b.Run("casbin-synced-cached", func(b *testing.B) {
		// Start where the previous run stopped, so that -count does not
		// replay requests the cache has already seen.
		start := cachedCursor % len(w.reqs)
		cachedCursor += b.N
		reqs := append(slices.Clone(w.reqs[start:]), w.reqs[:start]...)
		measure(b, reqs, 0, func(q benchReq) bool {
			ok, _ := w.cached.Enforce(q.sub, q.dom, q.obj, q.act, "")
			return ok
		})
	})
	// Hot: 64 requests repeated, warmed first: the cache's best case.
	b.Run("casbin-synced-cached-hot", func(b *testing.B) {
		hot := w.reqs[:64]
		for _, q := range hot {
			_, _ = w.cached.Enforce(q.sub, q.dom, q.obj, q.act, "")
		}
		measure(b, hot, 200000, func(q benchReq) bool {
			ok, _ := w.cached.Enforce(q.sub, q.dom, q.obj, q.act, "")
			return ok
		})
	})
}

// BenchmarkChange measures one policy change (add then remove a rule,
// then assign and unassign a role) in tenant000, on the 200,000-rule
// policy and on tenant000 alone (2,000 rules) as the baseline: a change
// re-indexes only its tenant, so the two should cost about the same.
//
//	go test -run '^$' -bench Change -benchtime 200x -count 5 ./rbac/
func BenchmarkChange(b *testing.B) {
	w := benchSetup(b)
	ctx := context.Background()
	r := rbac.Rule{Subject: "role0", Tenant: "tenant000", Object: "/data/new", Action: "read"}
	a := rbac.Assignment{User: "newuser", Role: "role1", Tenant: "tenant000"}
	for _, c := range []struct {
		name string
		e    *rbac.Enforcer
	}{{"rules=2000", w.small}, {"rules=200000", w.tomkit}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := c.e.AddRule(ctx, r); err != nil {
					b.Fatal(err)
				}
				if err := c.e.RemoveRule(ctx, r); err != nil {
					b.Fatal(err)
				}
				if err := c.e.AssignRole(ctx, a); err != nil {
					b.Fatal(err)
				}
				if err := c.e.UnassignRole(ctx, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
