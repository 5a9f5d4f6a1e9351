package rbac

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tomkit/tomkit/rbac/internal/policy"
)

// Kinds of [Finding].
const (
	FindingInvalid            = "invalid"             // the loader would refuse the line
	FindingWildcard           = "wildcard"            // a grant on everything
	FindingNoMFA              = "privileged-no-mfa"   // a privileged permission without the mfa marker
	FindingCrossTenant        = "cross-tenant"        // a grant reaching into another tenant
	FindingUnheldRole         = "unheld-role"         // a role nobody holds
	FindingStandingPrivileged = "standing-privileged" // a standing grant of a privileged role
)

// privilegedActions are the actions Lint expects to carry the mfa marker
// wherever they are allowed, besides every permission of the admin role.
var privilegedActions = []string{"admin", "approve", "delete", "export", "grant", "impersonate", "manage", "purge", "rotate"}

// Finding is one problem [Lint] reports.
type Finding struct {
	Line int
	Kind string // one of the Finding constants
	Msg  string
}

func (f Finding) String() string { return fmt.Sprintf("line %d: %s: %s", f.Line, f.Kind, f.Msg) }

// Lint reviews policy text for least-privilege problems the loader
// accepts or refuses, and returns them in line order. It returns a
// *[PolicyError] only when the text cannot be parsed at all. It flags:
//
//   - everything the loader refuses (wildcards in names, non-canonical
//     objects, case variants, deep or cyclic hierarchies);
//   - wildcard grants: an allow on "/*";
//   - privileged permissions without mfa: every allow of the admin role,
//     and every allow of the actions admin, approve, delete, export,
//     grant, impersonate, manage, purge and rotate;
//   - cross-tenant grants: a g line giving a role that has permissions
//     only in other tenants, or a rule whose object path names another
//     tenant;
//   - roles nobody holds: a subject with permissions (always a role:
//     users get permissions only through roles) that is neither held
//     through a g line nor privileged (privileged roles are held through
//     four-eyes grants);
//   - standing grants of privileged roles: a g line giving a role with
//     an mfa-marked permission (or the admin role), which should be a
//     time-bound grant through [Enforcer.RequestAccess].
func Lint(text []byte) ([]Finding, error) {
	p, err := policy.Parse(text)
	if err != nil {
		return nil, policyErr(err)
	}
	var out []Finding
	add := func(line int, kind, format string, a ...any) {
		out = append(out, Finding{Line: line, Kind: kind, Msg: fmt.Sprintf(format, a...)})
	}
	for _, err := range p.Problems(policy.Limits{MaxDepth: DefaultMaxRoleDepth}) {
		var le *PolicyError
		errors.As(policyErr(err), &le)
		kind := FindingInvalid
		if errors.Is(err, ErrWildcard) {
			kind = FindingWildcard
		}
		add(le.Line, kind, "%s: %s", strings.TrimPrefix(le.Err.Error(), "rbac: "), le.Msg)
	}
	type tr struct{ dom, name string }
	tenants := map[string]bool{}
	hasRules := map[tr]bool{}
	ruleTenants := map[string]map[string]bool{}
	priv := map[tr]bool{}
	held := map[tr]bool{}
	for _, r := range p.Rules {
		tenants[r.Dom] = true
		hasRules[tr{r.Dom, r.Sub}] = true
		if ruleTenants[r.Sub] == nil {
			ruleTenants[r.Sub] = map[string]bool{}
		}
		ruleTenants[r.Sub][r.Dom] = true
		if !r.Deny && (r.MFA || r.Sub == "admin") {
			priv[tr{r.Dom, r.Sub}] = true
		}
	}
	for _, g := range p.Links {
		tenants[g.Dom] = true
		held[tr{g.Dom, g.Role}] = true
	}
	for _, r := range p.Rules {
		if r.Deny {
			continue
		}
		if r.Obj == "/*" {
			add(r.Line, FindingWildcard, "%q may %s every object in %q", r.Sub, r.Act, r.Dom)
		}
		if !r.MFA && (r.Sub == "admin" || contains(privilegedActions, r.Act)) {
			add(r.Line, FindingNoMFA, "privileged permission %q for %q lacks the mfa marker", r.Act, r.Sub)
		}
		for _, seg := range strings.Split(r.Obj, "/") {
			if seg != r.Dom && tenants[seg] {
				add(r.Line, FindingCrossTenant, "object %q in tenant %q names tenant %q", r.Obj, r.Dom, seg)
				break
			}
		}
	}
	reported := map[tr]bool{}
	for _, r := range p.Rules {
		k := tr{r.Dom, r.Sub}
		if r.Deny || held[k] || priv[k] || reported[k] || policy.CheckName(r.Sub) != nil {
			continue
		}
		reported[k] = true
		add(r.Line, FindingUnheldRole, "role %q in tenant %q is held by nobody", r.Sub, r.Dom)
	}
	for _, g := range p.Links {
		if !hasRules[tr{g.Dom, g.Role}] && len(ruleTenants[g.Role]) > 0 {
			var others []string
			for d := range ruleTenants[g.Role] {
				others = append(others, d)
			}
			sort.Strings(others)
			add(g.Line, FindingCrossTenant, "%q gets role %q in %q, which has permissions only in %s", g.User, g.Role, g.Dom, strings.Join(others, ", "))
		}
		if priv[tr{g.Dom, g.Role}] || g.Role == "admin" {
			add(g.Line, FindingStandingPrivileged, "%q holds privileged role %q in %q permanently; use a time-bound four-eyes grant", g.User, g.Role, g.Dom)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BuiltinRoles returns the policy text of the four built-in roles for
// tenant, to be used as a starting point and extended:
//
//   - viewer reads /data/*;
//   - editor reads and writes /data/*;
//   - admin reads, writes and deletes /data/* and manages /admin/*, all
//     only with fresh MFA;
//   - auditor reads /audit/* and is explicitly denied writing or deleting
//     it, whatever other role it is combined with.
//
// No user holds any of them: add g lines (or, for admin, four-eyes
// grants).
func BuiltinRoles(tenant string) ([]byte, error) {
	if err := policy.CheckName(tenant); err != nil {
		return nil, fmt.Errorf("%w: tenant %q: %v", ErrName, tenant, err)
	}
	var b strings.Builder
	for _, l := range []string{
		"p, viewer, T, /data/*, read, allow",
		"p, editor, T, /data/*, read, allow",
		"p, editor, T, /data/*, write, allow",
		"p, admin, T, /data/*, read, allow, mfa",
		"p, admin, T, /data/*, write, allow, mfa",
		"p, admin, T, /data/*, delete, allow, mfa",
		"p, admin, T, /admin/*, manage, allow, mfa",
		"p, auditor, T, /audit/*, read, allow",
		"p, auditor, T, /audit/*, write, deny",
		"p, auditor, T, /audit/*, delete, deny",
	} {
		b.WriteString(strings.Replace(l, ", T,", ", "+tenant+",", 1))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
