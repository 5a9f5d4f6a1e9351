package rbac_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDatabaseDriver checks that importing rbac links no database
// driver: the PostgreSQL store lives in rbac/pgstore. Packages that rbac
// reaches only through audit are audit's concern and are left out.
func TestNoDatabaseDriver(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	deps := func(pkg string) map[string]bool {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		m := map[string]bool{}
		for _, p := range strings.Fields(string(out)) {
			m[p] = true
		}
		return m
	}
	viaAudit := deps("github.com/tomkit/tomkit/audit")
	for p := range deps("github.com/tomkit/tomkit/rbac") {
		if viaAudit[p] {
			continue
		}
		for _, bad := range []string{"gorm", "pgx", "sqlite", "mysql", "mssql", "database/sql", "google.golang.org/grpc"} {
			if strings.Contains(p, bad) {
				t.Errorf("rbac links %s", p)
			}
		}
	}
}
