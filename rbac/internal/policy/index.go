package policy

import (
	"time"
)

// Grant is a time-bound role assignment created by an approval or a
// break-glass elevation. It is stored beside the policy (Casbin ptype
// "p2") but never handed to Casbin's role manager: its expiry is checked
// at every decision against the injected clock.
type Grant struct {
	ID, Sub, Dom, Role string
	Expires            time.Time
	Note               string
}

// Index answers decisions over a validated policy without scanning it:
// per tenant, a hash lookup of (subject-or-role, object, action), with the
// "/*" patterns looked up by the request object's path prefixes, and the
// role closure of each name precomputed from the "g" lines. It is
// immutable once built, so readers need no lock.
type Index struct {
	tenants map[string]*tenant
}

type key struct{ sub, obj, act string }

// entry is what matched one (subject, object, action) key.
type entry struct {
	allow    *Rule // an allow without MFA
	allowMFA *Rule // an allow that requires MFA
	deny     *Rule
}

type tenant struct {
	exact   map[key]*entry
	prefix  map[key]*entry
	closure map[string][]string // name -> roles it inherits (transitively)
	actions map[string]struct{}
	grants  map[string][]Grant // subject -> grants
	priv    map[string]bool    // roles with an MFA-marked allow
}

// Build indexes p (which must have passed Validate) and grants.
func Build(p *Policy, grants []Grant) *Index {
	ix := &Index{tenants: map[string]*tenant{}}
	get := func(dom string) *tenant {
		t := ix.tenants[dom]
		if t == nil {
			t = &tenant{
				exact:   map[key]*entry{},
				prefix:  map[key]*entry{},
				closure: map[string][]string{},
				actions: map[string]struct{}{},
				grants:  map[string][]Grant{},
				priv:    map[string]bool{},
			}
			ix.tenants[dom] = t
		}
		return t
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		r.Text = r.String()
		t := get(r.Dom)
		t.actions[r.Act] = struct{}{}
		m, obj := t.exact, r.Obj
		if pre, ok := IsPattern(r.Obj); ok {
			m, obj = t.prefix, pre
		}
		k := key{r.Sub, obj, r.Act}
		e := m[k]
		if e == nil {
			e = &entry{}
			m[k] = e
		}
		switch {
		case r.Deny:
			if e.deny == nil {
				e.deny = r
			}
		case r.MFA:
			t.priv[r.Sub] = true
			if e.allowMFA == nil {
				e.allowMFA = r
			}
		default:
			if e.allow == nil {
				e.allow = r
			}
		}
	}
	direct := map[string]map[string][]string{}
	for _, g := range p.Links {
		get(g.Dom)
		if direct[g.Dom] == nil {
			direct[g.Dom] = map[string][]string{}
		}
		direct[g.Dom][g.User] = append(direct[g.Dom][g.User], g.Role)
	}
	for dom, d := range direct {
		t := ix.tenants[dom]
		for name := range d {
			t.closure[name] = closure(d, name)
		}
	}
	for _, g := range grants {
		t := get(g.Dom)
		t.grants[g.Sub] = append(t.grants[g.Sub], g)
	}
	return ix
}

func closure(d map[string][]string, name string) []string {
	seen := map[string]bool{name: true}
	var out []string
	queue := []string{name}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, r := range d[n] {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
				queue = append(queue, r)
			}
		}
	}
	return out
}

// Reasons a decision gives.
const (
	ReasonAllow         = "allowed by rule"
	ReasonNoTenant      = "no policy for tenant"
	ReasonUnknownAction = "unknown action"
	ReasonNoAllow       = "no matching allow (implicit deny)"
	ReasonDeny          = "explicit deny"
	ReasonMFA           = "mfa required: privileged permission without fresh mfa"
)

// Result is the outcome of Index.Decide.
type Result struct {
	Allow      bool
	Rule       *Rule  // the rule that decided; nil for an implicit deny
	Reason     string // one of the Reason constants
	Privileged bool   // allowed only by an MFA-marked rule
	Grant      *Grant // the grant that supplied the deciding role, if any
}

// Decide evaluates one request. sub, dom and act must be valid names and
// obj a canonical object; the caller checks. mfa reports whether the
// principal's MFA is fresh.
func (ix *Index) Decide(sub, dom, obj, act string, mfa bool, now time.Time) Result {
	t := ix.tenants[dom]
	if t == nil {
		return Result{Reason: ReasonNoTenant}
	}
	if _, ok := t.actions[act]; !ok {
		return Result{Reason: ReasonUnknownAction}
	}
	var st state
	st.lookup(t, sub, obj, act, mfa, nil)
	for _, r := range t.closure[sub] {
		st.lookup(t, r, obj, act, mfa, nil)
	}
	for i := range t.grants[sub] {
		g := &t.grants[sub][i]
		if !now.Before(g.Expires) {
			continue
		}
		st.lookup(t, g.Role, obj, act, mfa, g)
		for _, r := range t.closure[g.Role] {
			st.lookup(t, r, obj, act, mfa, g)
		}
	}
	switch {
	case st.deny != nil:
		return Result{Rule: st.deny, Reason: ReasonDeny}
	case st.allow != nil:
		return Result{Allow: true, Rule: st.allow, Reason: ReasonAllow, Grant: st.allowGrant}
	case st.allowMFA != nil:
		return Result{Allow: true, Rule: st.allowMFA, Reason: ReasonAllow, Privileged: true, Grant: st.mfaGrant}
	case st.mfaMissing != nil:
		return Result{Rule: st.mfaMissing, Reason: ReasonMFA}
	}
	return Result{Reason: ReasonNoAllow}
}

type state struct {
	allow, allowMFA, deny, mfaMissing *Rule
	allowGrant, mfaGrant              *Grant
}

func (st *state) merge(e *entry, mfa bool, g *Grant) {
	if e.deny != nil && st.deny == nil {
		st.deny = e.deny
	}
	if e.allow != nil && (st.allow == nil || st.allowGrant != nil && g == nil) {
		st.allow, st.allowGrant = e.allow, g
	}
	if e.allowMFA != nil {
		if !mfa {
			if st.mfaMissing == nil {
				st.mfaMissing = e.allowMFA
			}
		} else if st.allowMFA == nil || st.mfaGrant != nil && g == nil {
			st.allowMFA, st.mfaGrant = e.allowMFA, g
		}
	}
}

func (st *state) lookup(t *tenant, sub, obj, act string, mfa bool, g *Grant) {
	if e := t.exact[key{sub, obj, act}]; e != nil {
		st.merge(e, mfa, g)
	}
	if len(t.prefix) == 0 || len(obj) == 0 || obj[0] != '/' {
		return
	}
	for i := 0; i < len(obj); i++ {
		if obj[i] == '/' {
			if e := t.prefix[key{sub, obj[:i+1], act}]; e != nil {
				st.merge(e, mfa, g)
			}
		}
	}
}

// Privileged reports whether role holds an MFA-marked allow in dom.
func (ix *Index) Privileged(role, dom string) bool {
	t := ix.tenants[dom]
	if t == nil {
		return false
	}
	if t.priv[role] {
		return true
	}
	for _, r := range t.closure[role] {
		if t.priv[r] {
			return true
		}
	}
	return false
}

// HasRole reports whether name holds role in dom through the static "g"
// lines (grants are not considered).
func (ix *Index) HasRole(name, role, dom string) bool {
	t := ix.tenants[dom]
	if t == nil {
		return false
	}
	for _, r := range t.closure[name] {
		if r == role {
			return true
		}
	}
	return false
}
