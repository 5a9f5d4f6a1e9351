package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/rbac/internal/policy"
)

func TestParse(t *testing.T) {
	p, err := policy.Parse([]byte("# c\n\n  p ,admin, acme, /a/*, manage, allow, mfa  \np, v, acme, doc, read, deny\ng, alice, admin, acme\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p, admin, acme, /a/*, manage, allow, mfa", "p, v, acme, doc, read, deny"}
	for i, r := range p.Rules {
		if r.String() != want[i] {
			t.Errorf("rule %d = %q, want %q", i, r.String(), want[i])
		}
	}
	if p.Rules[0].Line != 3 || p.Links[0].Line != 5 || p.Links[0] != (policy.Link{Line: 5, User: "alice", Role: "admin", Dom: "acme"}) {
		t.Fatalf("lines/links: %+v %+v", p.Rules, p.Links)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, text := range []string{
		"p, a, b, c, d, allow\nx, y",
		"p, a, b, c, d, allow\np, a, b, c, d",
		"p, a, b, c, d, allow\np, a, b, c, d, allow, 2fa",
		"p, a, b, c, d, allow\ng, a, b",
		"p, a, b, c, d, allow\n" + strings.Repeat("x", policy.MaxLineLength+10),
	} {
		_, err := policy.Parse([]byte(text))
		var le *policy.LineError
		if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, policy.ErrSyntax) {
			t.Errorf("Parse(%.40q) = %v, want a syntax error on line 2", text, err)
		}
	}
}

func TestCheckObject(t *testing.T) {
	for _, tt := range []struct {
		obj     string
		pattern bool
		ok      bool
	}{
		{"/a/b", false, true}, {"doc", false, true}, {"/", false, true},
		{"/a/*", true, true}, {"/*", true, true}, {"/a/*", false, false},
		{"*", true, false}, {"/a*", true, false}, {"/a/*/b", true, false}, {"a/*", true, false},
		{"/a/../b", false, false}, {"/a/./b", false, false}, {"/a//b", false, false}, {"/a/", false, false},
		{"/a/%2e%2e", false, false}, {`/a\b`, false, false}, {"a/b", false, false}, {"", false, false},
		{"/a b", false, false}, {"/ä", false, false}, {"/../*", true, false},
	} {
		if err := policy.CheckObject(tt.obj, tt.pattern); (err == nil) != tt.ok {
			t.Errorf("CheckObject(%q, %v) = %v, want ok=%v", tt.obj, tt.pattern, err, tt.ok)
		}
	}
}

// FuzzParse checks that Parse and Validate never panic, and that a
// parsed policy renders back to text that parses to the same rules.
func FuzzParse(f *testing.F) {
	f.Add([]byte("p, admin, acme, /a/*, manage, allow, mfa\ng, alice, admin, acme\n"))
	f.Add([]byte("# c\np, v, acme, doc, read, deny\n"))
	f.Add([]byte("g, a, b, t\ng, b, a, t\n"))
	f.Add([]byte("p, *, acme, /x/../y, read, allow\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data)
		if err != nil {
			var le *policy.LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		_ = p.Problems(policy.Limits{MaxDepth: 4})
		var b strings.Builder
		for _, r := range p.Rules {
			b.WriteString(r.String() + "\n")
		}
		for _, g := range p.Links {
			b.WriteString("g, " + strings.Join(g.Fields(), ", ") + "\n")
		}
		q, err := policy.Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(q.Rules) != len(p.Rules) || len(q.Links) != len(p.Links) {
			t.Fatalf("round trip changed the policy")
		}
		for i := range p.Rules {
			a, b := p.Rules[i], q.Rules[i]
			a.Line, b.Line = 0, 0
			if a != b {
				t.Fatalf("rule %d: %+v != %+v", i, a, b)
			}
		}
		for i := range p.Links {
			if p.Links[i].Fields()[0] != q.Links[i].Fields()[0] || p.Links[i].Role != q.Links[i].Role || p.Links[i].Dom != q.Links[i].Dom {
				t.Fatalf("link %d changed", i)
			}
		}
	})
}

// FuzzCheckObject checks that every object CheckObject accepts is free of
// the bytes and segments that a server or proxy treats as path
// boundaries or normalises.
func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{"/docs/x", "/docs/..;/admin", "/docs/.;/x", "/docs/x;jsessionid=1", "/a%2f..", "/a/%2e%2e/b",
		"/a\\..\\b", "/a\x00/b", "/a//b", "/a/./b", "..", ".", "doc", "/docs/*", "/a?b", "/a/b/"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, obj string, pattern bool) {
		if policy.CheckObject(obj, pattern) != nil {
			return
		}
		if strings.ContainsAny(obj, ";?%\\\"#,") {
			t.Fatalf("accepted %q with a separator or encoding byte", obj)
		}
		for i := 0; i < len(obj); i++ {
			if obj[i] <= ' ' || obj[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", obj, obj[i])
			}
		}
		base := strings.TrimSuffix(obj, "/*")
		if !pattern || base == obj {
			base = obj
		}
		if strings.Contains(base, "//") || (base != "/" && strings.HasSuffix(base, "/")) {
			t.Fatalf("accepted %q with an empty segment", obj)
		}
		for _, seg := range strings.Split(base, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with a dot segment", obj)
			}
			if strings.Contains(seg, "*") {
				t.Fatalf("accepted %q with a wildcard", obj)
			}
		}
	})
}

func TestCheckObjectSeparators(t *testing.T) {
	for _, obj := range []string{"/docs/..;/admin", "/docs/.;/x", "/docs/x;v=1", "/docs/x?y", "..", ".", "/a%2fb", "/a%2e%2e", "/a%5cb", "/a\\b", "/a\x00b", "/a\tb", "/a//b", "/a/./b", "/a/../b"} {
		for _, pattern := range []bool{false, true} {
			if policy.CheckObject(obj, pattern) == nil {
				t.Errorf("CheckObject(%q, %v) accepted", obj, pattern)
			}
		}
	}
	for _, obj := range []string{"/docs/x", "doc", "/", "/a.b/c..d", "/a/.well-known"} {
		if err := policy.CheckObject(obj, false); err != nil {
			t.Errorf("CheckObject(%q) = %v", obj, err)
		}
	}
}
