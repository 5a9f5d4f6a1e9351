package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliPolicy = `p, editor, acme, /data/*, write, allow
p, admin, acme, /admin/*, manage, allow, mfa
g, alice, editor, acme
g, dave, approver, acme
`

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRBACCheck(t *testing.T) {
	// root holds admin: rules apply to users only through roles.
	pol := writeFile(t, cliPolicy+"g, root, admin, acme\n")
	bad := writeFile(t, "p, editor, acme, /data/*, write, allow\np, *, acme, /x, read, allow\n")
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"allow", []string{"--policy", pol, "alice", "acme", "/data/x", "write"}, 0, "allow: allowed by rule (p, editor, acme, /data/*, write, allow)"},
		{"deny", []string{"--policy", pol, "alice", "acme", "/admin/x", "manage"}, 1, "deny: no matching allow"},
		{"traversal", []string{"--policy", pol, "alice", "acme", "/data/../admin/x", "write"}, 1, "deny: object is not canonical"},
		{"other tenant", []string{"--policy", pol, "alice", "globex", "/data/x", "write"}, 1, "deny: no policy for tenant"},
		{"empty tenant", []string{"--policy", pol, "alice", "", "/data/x", "write"}, 1, "deny: empty tenant"},
		{"mfa missing", []string{"--policy", pol, "root", "acme", "/admin/x", "manage"}, 1, "deny: mfa required"},
		{"mfa fresh", []string{"--policy", pol, "--mfa-age", "1h", "root", "acme", "/admin/x", "manage"}, 0, "allow: allowed by rule (p, admin, acme, /admin/*, manage, allow, mfa)"},
		{"mfa stale", []string{"--policy", pol, "--mfa-age", "13h", "root", "acme", "/admin/x", "manage"}, 1, "deny: mfa required"},
		{"negative mfa age", []string{"--policy", pol, "--mfa-age", "-1h", "root", "acme", "/admin/x", "manage"}, 2, ""},
		{"bad duration", []string{"--policy", pol, "--mfa-age", "soon", "root", "acme", "/admin/x", "manage"}, 2, ""},
		{"no policy flag", []string{"alice", "acme", "/data/x", "write"}, 2, ""},
		{"too few args", []string{"--policy", pol, "alice", "acme", "/data/x"}, 2, ""},
		{"missing file", []string{"--policy", pol + ".nope", "alice", "acme", "/data/x", "write"}, 1, ""},
		{"refused policy", []string{"--policy", bad, "alice", "acme", "/data/x", "write"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", append([]string{"rbac", "check"}, tt.args...)...)
			if code != tt.code || !strings.HasPrefix(out, tt.out) {
				t.Fatalf("code %d out %q stderr %q; want %d %q", code, out, errOut, tt.code, tt.out)
			}
		})
	}
	_, _, errOut := runCLI(t, "", "rbac", "check", "--policy", bad, "alice", "acme", "/data/x", "write")
	if !strings.Contains(errOut, "line 2") {
		t.Fatalf("refused policy error does not name the line: %q", errOut)
	}
}

func TestRBACLint(t *testing.T) {
	clean := writeFile(t, cliPolicy)
	if code, out, _ := runCLI(t, "", "rbac", "lint", clean); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("clean: code %d out %q", code, out)
	}
	dirty := writeFile(t, cliPolicy+"p, ops, acme, /*, read, allow\np, ops, acme, /x, delete, allow\ng, bob, admin, acme\ng, eve, ops, globex\np, ghost, acme, /y, read, allow\n")
	code, out, _ := runCLI(t, "", "rbac", "lint", dirty)
	if code != 1 {
		t.Fatalf("dirty: code %d", code)
	}
	for _, k := range []string{":5: wildcard", ":6: privileged-no-mfa", ":7: standing-privileged", ":8: cross-tenant", ":9: unheld-role"} {
		if !strings.Contains(strings.ReplaceAll(out, "line ", ""), k) {
			t.Errorf("missing %q in:\n%s", k, out)
		}
	}
	if code, _, _ := runCLI(t, "", "rbac", "lint", writeFile(t, "p, x\n")); code != 2 {
		t.Fatalf("malformed: code %d", code)
	}
	if code, _, _ := runCLI(t, "", "rbac", "lint"); code != 2 {
		t.Fatalf("no file: code %d", code)
	}
	if code, _, _ := runCLI(t, "", "rbac"); code != 2 {
		t.Fatalf("no subcommand: code %d", code)
	}
	if code, _, _ := runCLI(t, "", "rbac", "frob"); code != 2 {
		t.Fatalf("unknown subcommand: code %d", code)
	}
}

// TestRBACCheckHelp: the help shows no made-up default for --mfa-age
// (the flag used to default to -1ns to mean "unset").
func TestRBACCheckHelp(t *testing.T) {
	code, out, errOut := runCLI(t, "", "rbac", "check", "--help")
	if code != exitOK || errOut != "" || !strings.Contains(out, "-mfa-age DURATION") {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out, "-1ns") || strings.Contains(out, "(default -") {
		t.Fatalf("help shows a negative default: %q", out)
	}
}
