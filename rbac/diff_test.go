package rbac_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// nopLogger accepts and drops events.
type nopLogger struct{}

func (nopLogger) Log(context.Context, audit.Event) error { return nil }

// plainCasbin builds a plain casbin.Enforcer on tomkit's model, the
// baseline of the differential test and the benchmarks.
func plainCasbin(tb testing.TB, rules, links [][]string) *casbin.Enforcer {
	tb.Helper()
	m, err := model.NewModelFromString(rbac.Model())
	if err != nil {
		tb.Fatal(err)
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		tb.Fatal(err)
	}
	if len(rules) > 0 {
		if _, err := ce.AddPolicies(rules); err != nil {
			tb.Fatal(err)
		}
	}
	if len(links) > 0 {
		if _, err := ce.AddGroupingPolicies(links); err != nil {
			tb.Fatal(err)
		}
	}
	return ce
}

// rolePrefix marks role names in the baseline's policy.
const rolePrefix = "role:"

// separated returns rules and links with the role names of each tenant
// (rule subjects and g roles) prefixed, as tomkit keeps users and roles
// apart: a g line whose first name is a role is role inheritance, and a
// request subject is always a user. Plain Casbin on the result decides as
// tomkit does on the original.
func separated(rules, links [][]string) (r, l [][]string) {
	roles := map[[2]string]bool{}
	for _, x := range rules {
		roles[[2]string{x[1], x[0]}] = true
	}
	for _, g := range links {
		roles[[2]string{g[2], g[1]}] = true
	}
	for _, x := range rules {
		y := slices.Clone(x)
		y[0] = rolePrefix + y[0]
		r = append(r, y)
	}
	for _, g := range links {
		y := slices.Clone(g)
		if roles[[2]string{g[2], g[0]}] {
			y[0] = rolePrefix + y[0]
		}
		y[1] = rolePrefix + y[1]
		l = append(l, y)
	}
	return r, l
}

// policyText renders rules and links in the policy file format.
func policyText(rules, links [][]string) string {
	var b strings.Builder
	for _, r := range rules {
		f := r
		if f[5] == "none" {
			f = f[:5]
		}
		b.WriteString("p, " + strings.Join(f, ", ") + "\n")
	}
	for _, g := range links {
		b.WriteString("g, " + strings.Join(g, ", ") + "\n")
	}
	return b.String()
}

type rows struct{ rules, links [][]string }

// policyRows splits policy text into Casbin rows, for the baseline.
func policyRows(text string) (rows, error) {
	var r rows
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		switch {
		case f[0] == "p" && len(f) == 6:
			r.rules = append(r.rules, append(f[1:], "none"))
		case f[0] == "p":
			r.rules = append(r.rules, f[1:])
		case f[0] == "g":
			r.links = append(r.links, f[1:])
		}
	}
	return r, nil
}

// nonCanonical reports the request objects tomkit denies before
// consulting the policy (documented stricter case 1).
func nonCanonical(obj string) bool {
	return obj == "" || obj == "." || obj == ".." || strings.ContainsAny(obj, "%*;?\\\x00") ||
		strings.HasPrefix(obj, "/") && path.Clean(obj) != obj
}

// TestDifferential compares tomkit's decisions with plain casbin.Enforcer
// on the same model over random policies and requests. They must agree,
// except in the stricter cases documented in the package overview, which
// are counted.
func TestDifferential(t *testing.T) {
	const policies, requestsPer = 10000, 4
	rng := rand.New(rand.NewPCG(1, 2))
	tenants := []string{"t1", "t2", "t3"}
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	roles := []string{"r1", "r2", "r3", "r4", "admin"}
	ruleObjs := []string{"/a", "/a/b", "/a/*", "/a/b/*", "/*", "/c/d", "doc", "/a/b/c", "/c/*"}
	reqObjs := []string{"/a", "/a/b", "/a/b/c", "/a/x", "/c/d", "/c/e/f", "doc", "/", "/ab", "/abc/d", "docs",
		"/a/../c/d", "/a//b", "/a/b/", "/a/./b", "", "/a/*", "/a/%2e%2e/c",
		"/a/..;/c/d", "/a/.;/b", "/a/b;p=1", "/a/b?x", "/a\\b", "/a/b\x00", "..", "."}
	actions := []string{"read", "write", "del"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }

	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var compared, stricter, allows, refused, deep, roleSubjects int
	for p := 0; p < policies; p++ {
		var rules, links [][]string
		for i, n := 0, 3+rng.IntN(14); i < n; i++ {
			sub := pick(roles)
			if rng.IntN(5) == 0 {
				sub = pick(users)
			}
			eft, auth := "allow", "none"
			if rng.IntN(5) == 0 {
				eft = "deny"
			}
			if rng.IntN(4) == 0 {
				auth = "mfa"
			}
			rules = append(rules, []string{sub, pick(tenants), pick(ruleObjs), pick(actions), eft, auth})
		}
		for i, n := 0, 2+rng.IntN(12); i < n; i++ {
			// Users get roles; roles inherit from higher-numbered roles
			// only, so the hierarchy is acyclic and at most 4 deep.
			ri := rng.IntN(len(roles))
			if rng.IntN(3) == 0 && ri < len(roles)-1 {
				links = append(links, []string{roles[ri], roles[ri+1+rng.IntN(len(roles)-ri-1)], pick(tenants)})
			} else {
				links = append(links, []string{pick(users), roles[ri], pick(tenants)})
			}
		}
		caseVariant := rng.IntN(50) == 0
		if caseVariant {
			rules = append(rules, []string{"r1", "t1", "/a", "read", "allow", "none"}, []string{"R1", "t1", "/a", "read", "allow", "none"})
		}
		text := policyText(rules, links)
		e, err := rbac.New(context.Background(), rbac.Config{Logger: nopLogger{}, Policy: []byte(text), Clock: audit.ClockFunc(func() time.Time { return now })})
		if caseVariant {
			if !errors.Is(err, rbac.ErrCase) {
				t.Fatalf("policy %d with case variants: New = %v", p, err)
			}
			refused++ // documented: the loader refuses case variants
			continue
		}
		if errors.Is(err, rbac.ErrHierarchy) {
			deep++ // documented: the loader refuses role chains beyond MaxRoleDepth, and cycles
			continue
		}
		if err != nil {
			t.Fatalf("policy %d: %v\n%s", p, err, text)
		}
		sr, sl := separated(rules, links)
		ce := plainCasbin(t, sr, sl)
		for q := 0; q < requestsPer; q++ {
			sub := pick(append(users, "r1", "U1"))
			dom := pick(append(tenants, "T1"))
			obj, act := pick(reqObjs), pick(append(actions, "nope"))
			if rng.IntN(2) == 0 {
				// Aim at a rule, through a user holding its role when
				// there is one, so that allows are frequent.
				r := rules[rng.IntN(len(rules))]
				for try := 0; try < 4 && !slices.ContainsFunc(links, func(g []string) bool {
					return g[1] == r[0] && g[2] == r[1] && slices.Contains(users, g[0])
				}); try++ {
					r = rules[rng.IntN(len(rules))]
				}
				sub, dom, act = r[0], r[1], r[3]
				for _, g := range links {
					if g[1] == r[0] && g[2] == r[1] && rng.IntN(5) != 0 {
						sub = g[0]
					}
				}
				obj = r[2]
				if strings.HasSuffix(obj, "*") {
					obj = strings.TrimSuffix(obj, "*") + pick([]string{"x", "b", "b/c", "", "../c/d", "/y", "..;/c/d", ".;/x", "x;p"})
				}
			}
			var mfaAt time.Time
			mfa := ""
			switch rng.IntN(3) {
			case 1:
				mfaAt, mfa = now.Add(-time.Hour), "fresh"
			case 2:
				mfaAt = now.Add(-13 * time.Hour)
			}
			want, err := ce.Enforce(sub, dom, obj, act, mfa)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Decide(context.Background(), rbac.Request{Actor: audit.Actor{Subject: sub, Tenant: dom}, Object: obj, Action: act, MFAVerifiedAt: mfaAt})
			if err != nil {
				t.Fatal(err)
			}
			compared++
			if slices.Contains(roles, sub) || sub == "r1" {
				roleSubjects++ // a user named like a role: must get none of its rules
			}
			if d.Allowed && !want {
				t.Fatalf("policy %d: tomkit allows what casbin denies: %s %s %s %s mfa=%q: %+v\n%s", p, sub, dom, obj, act, mfa, d, text)
			}
			if d.Allowed != want {
				if nonCanonical(obj) && !d.Allowed {
					stricter++
					continue
				}
				t.Fatalf("policy %d: tomkit %+v, casbin %v: %s %s %s %s mfa=%q\n%s", p, d, want, sub, dom, obj, act, mfa, text)
			}
			if d.Allowed {
				allows++
				if !strings.Contains(text, strings.TrimSuffix(strings.TrimPrefix(d.Rule, "p, "), ", mfa")) || !strings.Contains(d.Rule, "allow") {
					t.Fatalf("allow explained by %q, not an allow rule of the policy", d.Rule)
				}
			}
		}
		e.Close()
	}
	if loaded := policies - refused - deep; loaded < policies*9/10 || compared < requestsPer*loaded {
		t.Fatalf("only %d comparisons", compared)
	}
	if allows < compared/20 {
		t.Fatalf("only %d of %d comparisons allow: the generator is too weak", allows, compared)
	}
	if roleSubjects < compared/10 {
		t.Fatalf("only %d of %d requests come from a user named like a role", roleSubjects, compared)
	}
	t.Logf("%d requests over %d policies: %d allows, %d from users named like roles; tomkit stricter on %d (non-canonical objects); %d policies refused at load for case variants, %d for role chains deeper than the limit",
		compared, policies, allows, roleSubjects, stricter, refused, deep)
}
