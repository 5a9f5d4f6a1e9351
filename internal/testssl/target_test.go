package testssl_test

import (
	"os"
	"testing"

	"github.com/tomkit/tomkit/internal/testssl"
)

// TestScanTarget scans the running server named by TOMKIT_TESTSSL_TARGET
// (host:port on this machine) and checks it like every tomkit server:
// .ci/gates/testssl.sh points it at examples/hellotls. It skips when the
// variable is unset.
func TestScanTarget(t *testing.T) {
	target := os.Getenv(testssl.EnvTarget)
	if target == "" {
		t.Skip("testssl scan: " + testssl.EnvTarget + " is not set")
	}
	findings := testssl.Scan(t, target)
	if err := testssl.Check(findings, testssl.SelfSigned); err != nil {
		t.Fatalf("testssl findings for %s:\n%v", target, err)
	}
}
