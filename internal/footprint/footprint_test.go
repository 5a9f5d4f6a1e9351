// Package footprint keeps what tomkit's library packages link from
// growing unnoticed: what a library links is part of its users' security
// review. A core package that starts linking a database driver or gRPC
// fails this test; drivers and heavy backends live in their own
// subpackages (retention/pgstore, audit/pglog, rbac/pgstore, ...), which
// may link exactly the backend they exist for.
package footprint

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// heavy names the import-path prefixes that no library package may link
// unless it is allowed below: database drivers (and the ORMs that bring
// them) and gRPC.
var heavy = map[string][]string{
	"database driver": {
		"github.com/jackc/pgx", "github.com/lib/pq", "gorm.io/",
		"github.com/glebarez/", "modernc.org/sqlite", "github.com/mattn/go-sqlite3",
		"github.com/go-sql-driver/mysql", "github.com/microsoft/go-mssqldb",
		"github.com/denisenkom/go-mssqldb",
	},
	"gRPC": {"google.golang.org/grpc"},
}

// allowed lists, per backend subpackage (relative to the module), the
// kinds of heavy dependency it exists to wrap.
var allowed = map[string][]string{
	"retention/pgstore":   {"database driver"},
	"retention/blobstore": {"gRPC"}, // gocloud.dev/blob's cloud drivers
	"audit/pglog":         {"database driver"},
	"rbac/pgstore":        {"database driver"},
	"crypto/kms/pgstore":  {"database driver"},
}

const module = "github.com/tomkit/tomkit"

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// libraries returns the module's library packages: everything but
// commands, examples and internal packages (which are checked through
// the libraries that import them).
func libraries(t *testing.T) []string {
	var libs []string
	for _, p := range goList(t, "-f", "{{if ne .Name \"main\"}}{{.ImportPath}}{{end}}", module+"/...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
		if rel == "" || strings.HasPrefix(rel, "examples/") || strings.HasPrefix(rel, "cmd/") ||
			strings.HasPrefix(rel, "internal/") || strings.Contains(rel, "/internal/") {
			continue
		}
		libs = append(libs, rel)
	}
	return libs
}

func TestLibrariesLinkNoDriverOrGRPC(t *testing.T) {
	libs := libraries(t)
	for _, core := range []string{"audit", "rbac", "crypto/kms", "crypto/envelope", "retention", "tlsconfig", "section203", "tomtest"} {
		if !slices.Contains(libs, core) {
			t.Errorf("library package %s not found among %v", core, libs)
		}
	}
	for _, rel := range libs {
		deps := goList(t, "-deps", module+"/"+rel)
		for kind, prefixes := range heavy {
			if slices.Contains(allowed[rel], kind) {
				continue
			}
		found:
			for _, d := range deps {
				for _, pre := range prefixes {
					if strings.HasPrefix(d, pre) {
						t.Errorf("%s links a %s (%s); move the code that needs it into a backend subpackage", rel, kind, d)
						break found
					}
				}
			}
		}
	}
}
