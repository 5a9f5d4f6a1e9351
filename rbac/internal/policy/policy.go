// Package policy parses, validates and indexes tomkit RBAC policies.
//
// The text format is Casbin's CSV policy format for the tomkit model:
//
//	# comment
//	p, SUBJECT, TENANT, OBJECT, ACTION, allow|deny[, mfa]
//	g, USER, ROLE, TENANT
//
// Parse checks only the syntax, so that a linter can report what the
// loader would refuse; Validate applies the loader's rules.
package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Auth values of the sixth field of a "p" rule.
const (
	AuthMFA  = "mfa"
	AuthNone = "none"
)

// Errors, wrapped in a *LineError when they concern one line.
var (
	ErrSyntax    = errors.New("rbac: malformed policy line")
	ErrWildcard  = errors.New("rbac: wildcard not allowed")
	ErrName      = errors.New("rbac: invalid name")
	ErrObject    = errors.New("rbac: invalid object")
	ErrCase      = errors.New("rbac: ambiguous case variant")
	ErrHierarchy = errors.New("rbac: role hierarchy too deep or cyclic")
)

// LineError reports a problem on one line of a policy file. Line is 1-based;
// 0 means the problem does not belong to a line of text (a rule added
// through the API).
type LineError struct {
	Line int
	Err  error
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%v: line %d: %s", e.Err, e.Line, e.Msg)
	}
	return fmt.Sprintf("%v: %s", e.Err, e.Msg)
}

func (e *LineError) Unwrap() error { return e.Err }

// Rule is one "p" line: a permission or a prohibition.
type Rule struct {
	Line               int
	Sub, Dom, Obj, Act string
	Deny               bool
	MFA                bool
	// Text is String(), filled in by Build when empty, so that
	// decisions need not allocate it. A Text that is set must equal
	// String().
	Text string
}

// Fields returns the rule as the Casbin policy fields of ptype "p".
func (r Rule) Fields() []string {
	eft, auth := "allow", AuthNone
	if r.Deny {
		eft = "deny"
	}
	if r.MFA {
		auth = AuthMFA
	}
	return []string{r.Sub, r.Dom, r.Obj, r.Act, eft, auth}
}

// String renders the rule as a policy line, the form used in decision
// logs.
func (r Rule) String() string {
	eft := "allow"
	if r.Deny {
		eft = "deny"
	}
	s := "p, " + r.Sub + ", " + r.Dom + ", " + r.Obj + ", " + r.Act + ", " + eft
	if r.MFA {
		s += ", mfa"
	}
	return s
}

// RuleFromFields is the inverse of [Rule.Fields].
func RuleFromFields(f []string) (Rule, error) {
	if len(f) != 6 {
		return Rule{}, &LineError{Err: ErrSyntax, Msg: fmt.Sprintf("p rule has %d fields, want 6", len(f))}
	}
	r := Rule{Sub: f[0], Dom: f[1], Obj: f[2], Act: f[3]}
	switch f[4] {
	case "allow":
	case "deny":
		r.Deny = true
	default:
		return Rule{}, &LineError{Err: ErrSyntax, Msg: fmt.Sprintf("effect %q is neither allow nor deny", f[4])}
	}
	switch f[5] {
	case AuthNone:
	case AuthMFA:
		r.MFA = true
	default:
		return Rule{}, &LineError{Err: ErrSyntax, Msg: fmt.Sprintf("auth %q is neither mfa nor none", f[5])}
	}
	return r, nil
}

// Link is one "g" line: User holds Role in Dom.
type Link struct {
	Line            int
	User, Role, Dom string
}

// Fields returns the link as Casbin grouping fields.
func (l Link) Fields() []string { return []string{l.User, l.Role, l.Dom} }

// Policy is a parsed policy.
type Policy struct {
	Rules []Rule
	Links []Link
}

// MaxLineLength bounds one line of policy text.
const MaxLineLength = 4096

// Parse reads policy text. It checks the syntax only: field counts, known
// line types, effects and auth markers, and that no field is empty.
func Parse(data []byte) (*Policy, error) {
	p := &Policy{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), MaxLineLength+2)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
			if fields[i] == "" {
				return nil, &LineError{Line: n, Err: ErrSyntax, Msg: fmt.Sprintf("field %d is empty", i+1)}
			}
		}
		switch fields[0] {
		case "p":
			f := fields[1:]
			if len(f) == 5 {
				f = append(f, AuthNone)
			} else if len(f) == 6 && f[5] != AuthMFA {
				return nil, &LineError{Line: n, Err: ErrSyntax, Msg: fmt.Sprintf("sixth field %q is not mfa", f[5])}
			}
			if len(f) != 6 {
				return nil, &LineError{Line: n, Err: ErrSyntax, Msg: "want p, subject, tenant, object, action, allow|deny[, mfa]"}
			}
			r, err := RuleFromFields(f)
			if err != nil {
				le := err.(*LineError)
				le.Line = n
				return nil, le
			}
			r.Line = n
			p.Rules = append(p.Rules, r)
		case "g":
			if len(fields) != 4 {
				return nil, &LineError{Line: n, Err: ErrSyntax, Msg: "want g, user, role, tenant"}
			}
			p.Links = append(p.Links, Link{Line: n, User: fields[1], Role: fields[2], Dom: fields[3]})
		default:
			return nil, &LineError{Line: n, Err: ErrSyntax, Msg: fmt.Sprintf("unknown line type %q (want p or g)", fields[0])}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{Line: n + 1, Err: ErrSyntax, Msg: err.Error()}
	}
	return p, nil
}

// CheckName reports whether s is a valid subject, role, tenant or action:
// non-empty printable ASCII without spaces, commas, quotes, '#' or '*'.
func CheckName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 256 {
		return errors.New("longer than 256 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '*':
			return ErrWildcard
		case c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '#' || c == '\\':
			return fmt.Errorf("byte %q not allowed", c)
		}
	}
	return nil
}

// CheckObject reports whether obj is a canonical object. An object either
// has no '/' at all (a plain name other than "." and "..", compared
// exactly) or is an absolute, clean path: no empty, "." or ".."
// segments, no trailing slash (except "/" itself). Neither may contain a
// byte that a common server or proxy treats as a path boundary or
// decodes: ';' (path parameters, stripped by servlet containers, so that
// "/docs/..;/admin" becomes "/admin"), '?', '%' (encoded '/', '.', '\'),
// '\', NUL and other control bytes, and non-ASCII bytes. When pattern is
// true, obj may end in "/*", which matches every object below that path.
func CheckObject(obj string, pattern bool) error {
	if obj == "" {
		return errors.New("empty")
	}
	if len(obj) > 1024 {
		return errors.New("longer than 1024 bytes")
	}
	base := obj
	if pattern && strings.HasSuffix(obj, "/*") {
		base = strings.TrimSuffix(obj, "*")
		if base != "/" {
			base = strings.TrimSuffix(base, "/")
		}
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		switch {
		case c == '*':
			if pattern {
				return fmt.Errorf("%w: only a final \"/*\" is supported", ErrWildcard)
			}
			return ErrWildcard
		case c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '#' || c == '\\' || c == '%' || c == ';' || c == '?':
			return fmt.Errorf("byte %q not allowed", c)
		}
	}
	if !strings.Contains(base, "/") {
		if base != obj {
			return errors.New("a pattern must be an absolute path")
		}
		if obj == "." || obj == ".." {
			return errors.New("a dot segment is not a name")
		}
		return nil
	}
	if base[0] != '/' {
		return errors.New("a path must be absolute")
	}
	if path.Clean(base) != base {
		return errors.New("path is not clean (\".\", \"..\", \"//\" or trailing \"/\")")
	}
	return nil
}

// IsPattern reports whether a validated object is a "/*" pattern, and
// returns its prefix (ending in "/").
func IsPattern(obj string) (prefix string, ok bool) {
	if strings.HasSuffix(obj, "/*") {
		return obj[:len(obj)-1], true
	}
	return "", false
}

// Limits bound what Validate accepts.
type Limits struct {
	// MaxDepth is the longest chain of role inheritance (g lines) from a
	// user to a role.
	MaxDepth int
}

// Validate applies the loader's rules to p and returns the first problem:
// wildcards or invalid characters in subjects, tenants, roles and actions;
// objects that are not canonical; names that differ from another only in
// case; role chains longer than l.MaxDepth or cyclic.
func (p *Policy) Validate(l Limits) error {
	for _, errs := range p.Problems(l) {
		return errs
	}
	return nil
}

// Problems returns every problem Validate would report, in line order
// per kind.
func (p *Policy) Problems(l Limits) []error {
	var out []error
	bad := func(line int, err error, format string, a ...any) {
		out = append(out, &LineError{Line: line, Err: err, Msg: fmt.Sprintf(format, a...)})
	}
	name := func(line int, what, s string) {
		if err := CheckName(s); err != nil {
			if errors.Is(err, ErrWildcard) {
				bad(line, ErrWildcard, "%s %q", what, s)
			} else {
				bad(line, ErrName, "%s %q: %v", what, s, err)
			}
		}
	}
	names, tenants, actions := caseSet{}, caseSet{}, caseSet{}
	for _, r := range p.Rules {
		name(r.Line, "subject", r.Sub)
		name(r.Line, "tenant", r.Dom)
		name(r.Line, "action", r.Act)
		if err := CheckObject(r.Obj, true); err != nil {
			if errors.Is(err, ErrWildcard) {
				bad(r.Line, ErrWildcard, "object %q: %v", r.Obj, err)
			} else {
				bad(r.Line, ErrObject, "object %q: %v", r.Obj, err)
			}
		}
		names.add(r.Line, r.Sub, bad)
		tenants.add(r.Line, r.Dom, bad)
		actions.add(r.Line, r.Act, bad)
	}
	for _, g := range p.Links {
		name(g.Line, "user", g.User)
		name(g.Line, "role", g.Role)
		name(g.Line, "tenant", g.Dom)
		names.add(g.Line, g.User, bad)
		names.add(g.Line, g.Role, bad)
		tenants.add(g.Line, g.Dom, bad)
		if g.User == g.Role {
			bad(g.Line, ErrHierarchy, "%q inherits itself", g.User)
		}
	}
	if len(out) == 0 {
		if err := checkHierarchy(p.Links, l.MaxDepth); err != nil {
			out = append(out, err)
		}
	}
	return out
}

type caseSet map[string]string

func (c caseSet) add(line int, s string, bad func(int, error, string, ...any)) {
	k := strings.ToLower(s)
	if prev, ok := c[k]; ok && prev != s {
		bad(line, ErrCase, "%q and %q differ only in case", prev, s)
		return
	}
	c[k] = s
}

// checkHierarchy refuses cycles and chains longer than max within a tenant.
func checkHierarchy(links []Link, max int) error {
	type key struct{ dom, name string }
	edges := map[key][]Link{}
	for _, g := range links {
		k := key{g.Dom, g.User}
		edges[k] = append(edges[k], g)
	}
	depth := map[key]int{}
	const visiting = -1
	var walk func(k key, from int) (int, error)
	walk = func(k key, from int) (int, error) {
		switch d, ok := depth[k]; {
		case ok && d == visiting:
			return 0, &LineError{Line: from, Err: ErrHierarchy, Msg: fmt.Sprintf("cycle through %q in tenant %q", k.name, k.dom)}
		case ok:
			return d, nil
		}
		depth[k] = visiting
		d := 0
		for _, g := range edges[k] {
			sub, err := walk(key{k.dom, g.Role}, g.Line)
			if err != nil {
				return 0, err
			}
			if sub+1 > d {
				d = sub + 1
			}
			if d > max {
				return 0, &LineError{Line: g.Line, Err: ErrHierarchy, Msg: fmt.Sprintf("chain from %q in tenant %q is longer than %d", k.name, k.dom, max)}
			}
		}
		depth[k] = d
		return d, nil
	}
	for _, g := range links {
		if _, err := walk(key{g.Dom, g.User}, g.Line); err != nil {
			return err
		}
	}
	return nil
}
