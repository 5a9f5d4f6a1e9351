package rbac

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tomkit/tomkit/rbac/internal/policy"
)

// mirror is the validated policy and the grants by tenant, kept beside
// Casbin's model so that a change validates and re-indexes only its own
// tenant: its cost does not grow with the size of the policy.
type mirror struct {
	tenants map[string]*tenantPolicy
	// names (subjects, users, roles), tenants and actions by lower case,
	// with how often each spelling occurs, for the case-variant check.
	names, doms, acts caseCount
}

type tenantPolicy struct {
	rules  []policy.Rule
	links  []policy.Link
	grants []policy.Grant
}

func newMirror(p *policy.Policy, grants []policy.Grant) *mirror {
	m := &mirror{tenants: map[string]*tenantPolicy{}, names: caseCount{}, doms: caseCount{}, acts: caseCount{}}
	for _, r := range p.Rules {
		m.addRule(r)
	}
	for _, l := range p.Links {
		m.addLink(l)
	}
	for _, g := range grants {
		m.tenant(g.Dom).grants = append(m.tenant(g.Dom).grants, g)
	}
	return m
}

func (m *mirror) tenant(dom string) *tenantPolicy {
	t := m.tenants[dom]
	if t == nil {
		t = &tenantPolicy{}
		m.tenants[dom] = t
	}
	return t
}

func (m *mirror) addRule(r policy.Rule) {
	r.Line, r.Text = 0, r.String() // the index reuses Text
	t := m.tenant(r.Dom)
	t.rules = append(t.rules, r)
	m.names.add(r.Sub, 1)
	m.doms.add(r.Dom, 1)
	m.acts.add(r.Act, 1)
}

func (m *mirror) addLink(l policy.Link) {
	l.Line = 0
	t := m.tenant(l.Dom)
	t.links = append(t.links, l)
	m.names.add(l.User, 1)
	m.names.add(l.Role, 1)
	m.doms.add(l.Dom, 1)
}

// apply records one stored row added or deleted, and returns the tenant
// whose index it changes ("" for an access request, which is not
// indexed).
func (m *mirror) apply(r Row, add bool) (string, error) {
	switch r.Ptype {
	case "p":
		ir, err := policy.RuleFromFields(r.Fields)
		if err != nil {
			return "", policyErr(err)
		}
		if add {
			m.addRule(ir)
			return ir.Dom, nil
		}
		t := m.tenant(ir.Dom)
		if i := slices.IndexFunc(t.rules, func(x policy.Rule) bool {
			return x.Sub == ir.Sub && x.Obj == ir.Obj && x.Act == ir.Act && x.Deny == ir.Deny && x.MFA == ir.MFA
		}); i >= 0 {
			t.rules = slices.Delete(t.rules, i, i+1)
			m.names.add(ir.Sub, -1)
			m.doms.add(ir.Dom, -1)
			m.acts.add(ir.Act, -1)
		}
		return ir.Dom, nil
	case "g":
		if len(r.Fields) != 3 {
			return "", &PolicyError{Err: ErrSyntax, Msg: fmt.Sprintf("g rule has %d fields, want 3", len(r.Fields))}
		}
		l := policy.Link{User: r.Fields[0], Role: r.Fields[1], Dom: r.Fields[2]}
		if add {
			m.addLink(l)
			return l.Dom, nil
		}
		t := m.tenant(l.Dom)
		if i := slices.Index(t.links, l); i >= 0 {
			t.links = slices.Delete(t.links, i, i+1)
			m.names.add(l.User, -1)
			m.names.add(l.Role, -1)
			m.doms.add(l.Dom, -1)
		}
		return l.Dom, nil
	case "p2":
		g, err := grantFromFields(r.Fields)
		if err != nil {
			return "", err
		}
		t := m.tenant(g.Dom)
		if add {
			t.grants = append(t.grants, g)
		} else if i := slices.IndexFunc(t.grants, func(x policy.Grant) bool { return x.ID == g.ID }); i >= 0 {
			t.grants = slices.Delete(t.grants, i, i+1)
		}
		return g.Dom, nil
	}
	return "", nil
}

// checkRule applies the loader's checks to the policy with r added: r's
// own fields, and case variants against the whole policy.
func (m *mirror) checkRule(r policy.Rule, lim policy.Limits) error {
	if err := (&policy.Policy{Rules: []policy.Rule{r}}).Validate(lim); err != nil {
		return policyErr(err)
	}
	return m.checkCase(r.String(), [][2]string{{"name", r.Sub}, {"tenant", r.Dom}, {"action", r.Act}})
}

// checkLink applies the loader's checks to the policy with l added: l's
// own fields, case variants against the whole policy, and the role
// hierarchy of l's tenant.
func (m *mirror) checkLink(l policy.Link, lim policy.Limits) error {
	links := []policy.Link{l}
	if t := m.tenants[l.Dom]; t != nil {
		links = append(slices.Clone(t.links), l)
	}
	if err := (&policy.Policy{Links: links}).Validate(lim); err != nil {
		return policyErr(err)
	}
	return m.checkCase("g, "+l.User+", "+l.Role+", "+l.Dom, [][2]string{{"name", l.User}, {"name", l.Role}, {"tenant", l.Dom}})
}

func (m *mirror) checkCase(line string, fields [][2]string) error {
	for _, f := range fields {
		set := m.names
		switch f[0] {
		case "tenant":
			set = m.doms
		case "action":
			set = m.acts
		}
		if v := set.variant(f[1]); v != "" {
			return &PolicyError{Err: ErrCase, Msg: fmt.Sprintf("%q and %q differ only in case (%s)", v, f[1], line)}
		}
	}
	return nil
}

// caseCount counts the spellings of names by their lower case.
type caseCount map[string]map[string]int

func (c caseCount) add(s string, n int) {
	k := strings.ToLower(s)
	m := c[k]
	if m == nil {
		m = map[string]int{}
		c[k] = m
	}
	m[s] += n
	if m[s] <= 0 {
		delete(m, s)
		if len(m) == 0 {
			delete(c, k)
		}
	}
}

// variant returns another spelling of s in use, or "".
func (c caseCount) variant(s string) string {
	for v := range c[strings.ToLower(s)] {
		if v != s {
			return v
		}
	}
	return ""
}
