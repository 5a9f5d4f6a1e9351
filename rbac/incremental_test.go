package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// TestIncrementalIndex applies random changes (rules, assignments,
// grants, removals) and checks after each that the incrementally updated
// index decides exactly as one rebuilt from the whole policy (Reload).
func TestIncrementalIndex(t *testing.T) {
	f := newFixture(t, testPolicy, func(c *rbac.Config) { c.Logger = nopLogger{} })
	rng := rand.New(rand.NewPCG(3, 4))
	tenants := []string{"acme", "globex", "initech"}
	roles := []string{"viewer", "editor", "admin", "r1", "r2"}
	users := []string{"alice", "bob", "carol", "u1", "u2", "editor"}
	objs := []string{"/data/*", "/data/x", "/admin/*", "/r/*", "doc"}
	reqObjs := []string{"/data/x", "/data/y/z", "/admin/users", "/r/q", "doc", "/r"}
	acts := []string{"read", "write", "manage"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	admin := actx("root", "acme")
	var added []rbac.Rule
	var assigned []rbac.Assignment
	var grants []string

	snapshot := func() []string {
		var out []string
		for _, dom := range tenants {
			for _, u := range append(users, roles...) {
				for _, o := range reqObjs {
					for _, a := range acts {
						d, err := f.e.Decide(context.Background(), rbac.Request{Actor: audit.Actor{Subject: u, Tenant: dom}, Object: o, Action: a,
							MFAVerifiedAt: f.clock.Now()})
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, fmt.Sprintf("%s %s %s %s: %v %s %s %s", u, dom, o, a, d.Allowed, d.Reason, d.Rule, d.GrantID))
					}
				}
			}
		}
		return out
	}
	for step := 0; step < 200; step++ {
		var err error
		switch op := rng.IntN(6); {
		case op == 0 || op == 1:
			r := rbac.Rule{Subject: pick(roles), Tenant: pick(tenants), Object: pick(objs), Action: pick(acts), Deny: rng.IntN(4) == 0, MFA: rng.IntN(3) == 0}
			if err = f.e.AddRule(admin, r); err == nil {
				added = append(added, r)
			}
		case op == 2 && len(added) > 0:
			i := rng.IntN(len(added))
			err = f.e.RemoveRule(admin, added[i])
			added = append(added[:i], added[i+1:]...)
		case op == 3:
			a := rbac.Assignment{User: pick(users[:5]), Role: pick(roles), Tenant: pick(tenants)}
			if err = f.e.AssignRole(admin, a); err == nil {
				assigned = append(assigned, a)
			}
		case op == 4 && len(assigned) > 0:
			i := rng.IntN(len(assigned))
			err = f.e.UnassignRole(admin, assigned[i])
			assigned = append(assigned[:i], assigned[i+1:]...)
		case op == 5:
			if len(grants) > 0 && rng.IntN(2) == 0 {
				err = f.e.Revoke(admin, grants[0])
				grants = grants[1:]
				break
			}
			q, qerr := f.e.RequestAccess(f.mfa(actx(pick(users[:5]), "acme")), "admin", "INC-1 incremental")
			if qerr != nil {
				continue
			}
			g, aerr := f.e.Approve(f.mfa(actx("dave", "acme")), q.ID, time.Duration(1+rng.IntN(120))*time.Minute)
			if aerr != nil {
				t.Fatal(aerr)
			}
			grants = append(grants, g.ID)
			f.clock.Advance(time.Duration(rng.IntN(30)) * time.Minute)
		}
		if err != nil && !isPolicyErr(err) {
			t.Fatalf("step %d: %v", step, err)
		}
		inc := snapshot()
		if err := f.e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		full := snapshot()
		for i := range inc {
			if inc[i] != full[i] {
				t.Fatalf("step %d: incremental index decides %q, full rebuild %q", step, inc[i], full[i])
			}
		}
	}
}

func isPolicyErr(err error) bool {
	var pe *rbac.PolicyError
	return errors.As(err, &pe)
}
