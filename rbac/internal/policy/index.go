package policy

import (
	"slices"
	"strings"
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

// Index answers decisions over a validated policy without scanning it.
// Per tenant, every subject (role or user) with rules has its permissions
// hashed by object, with the "/*" patterns hashed by their prefix and
// looked up through the request object's path prefixes; every user's
// roles (the closure of its "g" lines) and grants are resolved in advance
// to the subjects that carry rules. It is immutable once built, so readers
// need no lock.
type Index struct {
	tenants map[string]*tenant
}

// entry is what matched one (subject, object, action).
type entry struct {
	act      string
	allow    *Rule // an allow without MFA
	allowMFA *Rule // an allow that requires MFA
	deny     *Rule
}

// subject holds the rules of one role or user in a tenant.
type subject struct {
	exact  map[string][]entry // object -> per-action entries
	prefix map[string][]entry // pattern prefix ("/a/") -> per-action entries
}

// holder is a name that holds roles: its own rules and those of its
// roles, and its grants.
type holder struct {
	static []*subject
	grants []heldGrant
}

type heldGrant struct {
	g     *Grant
	subjs []*subject
}

type tenant struct {
	subjects map[string]*subject // roles with rules
	roles    map[string]bool     // every role name: rule subjects and g roles
	holders  map[string]*holder  // users: never a role name
	closure  map[string][]string // name -> roles it inherits (transitively)
	actions  map[string]struct{}
	priv     map[string]bool // roles with an MFA-marked allow
}

// Build indexes p (which must have passed Validate) and grants.
func Build(p *Policy, grants []Grant) *Index {
	type part struct {
		rules  []Rule
		links  []Link
		grants []Grant
	}
	parts := map[string]*part{}
	get := func(dom string) *part {
		pt := parts[dom]
		if pt == nil {
			pt = &part{}
			parts[dom] = pt
		}
		return pt
	}
	for _, r := range p.Rules {
		pt := get(r.Dom)
		pt.rules = append(pt.rules, r)
	}
	for _, g := range p.Links {
		pt := get(g.Dom)
		pt.links = append(pt.links, g)
	}
	for _, g := range grants {
		pt := get(g.Dom)
		pt.grants = append(pt.grants, g)
	}
	ix := &Index{tenants: make(map[string]*tenant, len(parts))}
	for dom, pt := range parts {
		ix.tenants[dom] = buildTenant(pt.rules, pt.links, pt.grants)
	}
	return ix
}

// WithTenant returns a copy of ix in which tenant dom is indexed anew
// from its rules, links and grants (all of dom, validated); the other
// tenants are shared. Its cost grows with the size of dom and the number
// of tenants, not with the size of the policy. ix is not modified.
func (ix *Index) WithTenant(dom string, rules []Rule, links []Link, grants []Grant) *Index {
	out := &Index{tenants: make(map[string]*tenant, len(ix.tenants)+1)}
	for d, t := range ix.tenants {
		if d != dom {
			out.tenants[d] = t
		}
	}
	if len(rules)+len(links)+len(grants) > 0 {
		out.tenants[dom] = buildTenant(rules, links, grants)
	}
	return out
}

// buildTenant indexes the rules, links and grants of one tenant. It
// copies them: the index keeps pointers into its own slices only.
func buildTenant(rules []Rule, links []Link, grants []Grant) *tenant {
	rules = slices.Clone(rules)
	// Grants and role lists are sorted, so that the rule and grant a
	// decision names do not depend on the order of the stored rows.
	grants = slices.Clone(grants)
	slices.SortFunc(grants, func(a, b Grant) int { return strings.Compare(a.ID, b.ID) })
	t := &tenant{
		subjects: map[string]*subject{},
		roles:    map[string]bool{},
		holders:  map[string]*holder{},
		closure:  map[string][]string{},
		actions:  map[string]struct{}{},
		priv:     map[string]bool{},
	}
	for i := range rules {
		r := &rules[i]
		if r.Text == "" {
			r.Text = r.String()
		}
		t.roles[r.Sub] = true
		t.actions[r.Act] = struct{}{}
		s := t.subjects[r.Sub]
		if s == nil {
			s = &subject{exact: map[string][]entry{}}
			t.subjects[r.Sub] = s
		}
		m, obj := s.exact, r.Obj
		if pre, ok := IsPattern(r.Obj); ok {
			if s.prefix == nil {
				s.prefix = map[string][]entry{}
			}
			m, obj = s.prefix, pre
		}
		es := m[obj]
		k := -1
		for j := range es {
			if es[j].act == r.Act {
				k = j
			}
		}
		if k < 0 {
			es = append(es, entry{act: r.Act})
			k = len(es) - 1
		}
		e := &es[k]
		switch {
		case r.Deny:
			if e.deny == nil || r.Text < e.deny.Text {
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
		m[obj] = es
	}
	direct := map[string][]string{}
	for _, g := range links {
		t.roles[g.Role] = true
		direct[g.User] = append(direct[g.User], g.Role)
	}
	for _, rs := range direct {
		slices.Sort(rs)
	}
	for name := range direct {
		t.closure[name] = closure(direct, name)
	}
	// Users and roles are apart: a g line whose first name is a role is
	// role inheritance, any other gives a user a role, and a user whose
	// name is a role's holds nothing through g lines.
	for name := range direct {
		if !t.roles[name] {
			t.holders[name] = &holder{static: t.resolve(name)}
		}
	}
	for i := range grants {
		g := &grants[i]
		h := t.holders[g.Sub]
		if h == nil {
			h = &holder{}
			if !t.roles[g.Sub] {
				h.static = t.resolve(g.Sub)
			}
			t.holders[g.Sub] = h
		}
		h.grants = append(h.grants, heldGrant{g: g, subjs: t.resolve(g.Role)})
	}
	return t
}

// resolve returns the subjects carrying rules among the roles name holds
// or inherits (name's own rules too, when name is a role).
func (t *tenant) resolve(name string) []*subject {
	var out []*subject
	if s := t.subjects[name]; s != nil {
		out = append(out, s)
	}
	for _, r := range t.closure[name] {
		if s := t.subjects[r]; s != nil {
			out = append(out, s)
		}
	}
	return out
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

// Decide evaluates one request of the user sub. sub, dom and act must be
// valid names and obj a canonical object; the caller checks. mfa reports
// whether the principal's MFA is fresh. sub is a user, never a role: it
// gets the rules of the roles its g lines and grants give it, and a user
// whose name is a role's gets no rule of that role.
func (ix *Index) Decide(sub, dom, obj, act string, mfa bool, now time.Time) Result {
	t := ix.tenants[dom]
	if t == nil {
		return Result{Reason: ReasonNoTenant}
	}
	if _, ok := t.actions[act]; !ok {
		return Result{Reason: ReasonUnknownAction}
	}
	var st state
	if h := t.holders[sub]; h != nil {
		for _, s := range h.static {
			st.lookup(s, obj, act, mfa, nil)
		}
		for i := range h.grants {
			hg := &h.grants[i]
			if !now.Before(hg.g.Expires) {
				continue
			}
			for _, s := range hg.subjs {
				st.lookup(s, obj, act, mfa, hg.g)
			}
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

func (st *state) merge(es []entry, act string, mfa bool, g *Grant) {
	for i := range es {
		e := &es[i]
		if e.act != act {
			continue
		}
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
		return
	}
}

func (st *state) lookup(s *subject, obj, act string, mfa bool, g *Grant) {
	if es, ok := s.exact[obj]; ok {
		st.merge(es, act, mfa, g)
	}
	if s.prefix == nil || len(obj) == 0 || obj[0] != '/' {
		return
	}
	for i := 0; i < len(obj); i++ {
		if obj[i] == '/' {
			if es, ok := s.prefix[obj[:i+1]]; ok {
				st.merge(es, act, mfa, g)
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

// HasRole reports whether the user name holds role in dom through the
// static "g" lines (grants are not considered). A user whose name is a
// role's holds nothing.
func (ix *Index) HasRole(name, role, dom string) bool {
	t := ix.tenants[dom]
	if t == nil || t.roles[name] {
		return false
	}
	for _, r := range t.closure[name] {
		if r == role {
			return true
		}
	}
	return false
}
