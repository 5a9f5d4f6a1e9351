package audit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDatabaseDriver keeps package audit free of database drivers: the
// PostgreSQL log lives in audit/pglog.
func TestNoDatabaseDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "pgx") || strings.Contains(p, "lib/pq") || strings.HasPrefix(p, "gorm.io/") {
			t.Errorf("package audit links %s", p)
		}
	}
}
