package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMetricsFlag: --metrics is documented, and without --url the
// metrics check is listed as not covered, saying what it needs.
func TestCheckMetricsFlag(t *testing.T) {
	code, out, _ := runCLI(t, "", "check", "--help")
	if code != 0 || !strings.Contains(out, "-metrics URL") {
		t.Fatalf("check --help: exit %d, no --metrics in:\n%s", code, out)
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(policy, []byte(checkPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "check", "--policy", policy, "--retention=false",
		"--metrics", "http://127.0.0.1:9/metrics", "--out", filepath.Join(dir, "evidence"))
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "N/C  metrics-counters") || !strings.Contains(out, "give --url and --metrics") {
		t.Errorf("metrics check not listed as not covered:\n%s", out)
	}
}
