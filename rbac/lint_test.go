package rbac_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/tomkit/tomkit/rbac"
)

func TestLint(t *testing.T) {
	text := `p, viewer, acme, /data/*, read, allow
p, ops, acme, /*, read, allow
p, admin, acme, /admin/*, manage, allow
p, cleaner, acme, /data/*, delete, allow
p, editor, acme, /tenants/globex/data, write, allow
p, ghost, acme, /data/*, read, allow
p, root, acme, /admin/*, manage, allow, mfa
p, viewer, globex, /data/*, read, allow
p, *, acme, /x, read, allow
g, alice, viewer, acme
g, bob, ops, acme
g, carol, cleaner, acme
g, dave, editor, acme
g, erin, root, acme
g, frank, auditor, acme
g, gina, viewer, initech
`
	got, err := rbac.Lint([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{ // "kind@line"
		"wildcard@2": 1, "privileged-no-mfa@3": 1, "privileged-no-mfa@4": 1, "cross-tenant@5": 1,
		"unheld-role@6": 1, "unheld-role@8": 1, "wildcard@9": 1, "standing-privileged@14": 1, "cross-tenant@16": 1,
	}
	seen := map[string]int{}
	for _, f := range got {
		seen[f.Kind+"@"+strconv.Itoa(f.Line)]++
	}
	for k := range want {
		if seen[k] == 0 {
			t.Errorf("missing finding %s; got:\n%v", k, got)
		}
	}
	for k := range seen {
		if want[k] == 0 {
			t.Errorf("unexpected finding %s; got:\n%v", k, got)
		}
	}
}

func TestLintClean(t *testing.T) {
	text := `p, viewer, acme, /data/*, read, allow
p, admin, acme, /admin/*, manage, allow, mfa
g, alice, viewer, acme
g, dave, approver, acme
`
	got, err := rbac.Lint([]byte(text))
	if err != nil || len(got) != 0 {
		t.Fatalf("Lint = %v, %v", got, err)
	}
	if _, err := rbac.Lint([]byte("p, x\n")); !errors.Is(err, rbac.ErrSyntax) {
		t.Fatalf("Lint of malformed text = %v", err)
	}
}

func TestBuiltinRoles(t *testing.T) {
	text, err := rbac.BuiltinRoles("acme")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, string(text)+"g, ann, auditor, acme\ng, ann, editor, acme\ng, vic, viewer, acme\n", nil)
	for _, tt := range []struct {
		sub, obj, act string
		mfa, allow    bool
	}{
		{"vic", "/data/x", "read", false, true},
		{"vic", "/data/x", "write", false, false},
		{"ann", "/audit/2026", "read", false, true},
		{"ann", "/audit/2026", "write", false, false}, // even though ann is an editor too
		{"ann", "/audit/2026", "delete", true, false},
		{"ann", "/data/x", "write", false, true},
	} {
		ctx := actx(tt.sub, "acme")
		if tt.mfa {
			ctx = f.mfa(ctx)
		}
		if d := f.decide(t, ctx, tt.obj, tt.act); d.Allowed != tt.allow {
			t.Errorf("%s %s %s: %+v", tt.sub, tt.act, tt.obj, d)
		}
	}
	if _, err := rbac.BuiltinRoles("a*"); !errors.Is(err, rbac.ErrName) {
		t.Fatalf("BuiltinRoles wildcard tenant = %v", err)
	}
}
