package retention_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/retention"
)

// FuzzCheckTenant checks that every tenant name CheckTenant accepts names
// exactly one directory, key prefix or column value of its own: nothing
// a file system or an object store would interpret (separators, dots),
// nothing it might fold (upper case), and nothing empty or over-long.
func FuzzCheckTenant(f *testing.F) {
	for _, s := range []string{"acme", "a", "_backups", "../acme", "a/b", "Acme", ".", "", "t-1", "x_y", "-a", "ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := retention.CheckTenant(s)
		if err != nil {
			if !errors.Is(err, retention.ErrInvalidTenant) {
				t.Fatalf("CheckTenant(%q) = %v, untyped", s, err)
			}
			return
		}
		if len(s) == 0 || len(s) > retention.MaxTenantLen || strings.ToLower(s) != s || strings.ToUpper(s) == s && strings.Trim(s, "-_0123456789") != "" {
			t.Fatalf("CheckTenant accepted %q", s)
		}
		if strings.ContainsAny(s, "/\\.:%\x00 ") || s[0] == '-' {
			t.Fatalf("CheckTenant accepted %q with a special character", s)
		}
		root := filepath.Join("/data", "tenants")
		if p := filepath.Join(root, s); filepath.Dir(p) != root || filepath.Base(p) != s {
			t.Fatalf("tenant %q escapes its directory: %s", s, p)
		}
	})
}
