// Package testssl runs Debian's testssl.sh against a TLS server on this
// machine and checks its findings against tomkit's TLS policy: SSLv2 to
// TLS 1.2 not offered, TLS 1.3 offered, HSTS of at least a year, and no
// finding of severity MEDIUM or above (or a scan warning) except the ones a
// self-signed test certificate causes by itself, which are listed by id
// and finding text, never filtered by severity.
//
// Tests call [Scan] and then [Check]. When testssl is not installed, Scan
// skips the test with a message naming the package to install; when
// TOMKIT_REQUIRE_TESTSSL=1 is set, it fails instead, so CI cannot pass by
// skipping.
package testssl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvRequire names the variable that turns a missing testssl into a test
// failure.
const EnvRequire = "TOMKIT_REQUIRE_TESTSSL"

// EnvTarget names the variable that tells TestScanTarget which running
// server (host:port) to scan, for CI gates that scan a whole service.
const EnvTarget = "TOMKIT_TESTSSL_TARGET"

// Binary is the name of Debian's testssl.sh command (package testssl.sh).
const Binary = "testssl"

// Timeout bounds one scan. A scan of a TLS 1.3-only server on loopback
// takes one to two minutes.
const Timeout = 8 * time.Minute

// MinHSTS is the lowest HSTS max-age accepted, in seconds: one year, the
// HSTS preload list's minimum.
const MinHSTS = 31536000

// Finding is one entry of testssl's JSON output (--jsonfile).
type Finding struct {
	ID       string `json:"id"`
	IP       string `json:"ip"`
	Port     string `json:"port"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
	CVE      string `json:"cve,omitempty"`
	CWE      string `json:"cwe,omitempty"`
}

// Exception excuses one finding of MEDIUM or above: the finding with this
// ID whose text contains Finding. Reason says why it is acceptable.
type Exception struct {
	ID, Finding, Reason string
}

// SelfSigned lists the findings a self-signed test certificate causes by
// itself. They say nothing about the TLS configuration under test, and a
// production certificate from a public CA does not cause them.
var SelfSigned = []Exception{
	{ID: "cert_chain_of_trust", Finding: "self signed", Reason: "the test certificate is self-signed; no public CA is involved"},
	{ID: "cert_revocation", Finding: "Neither CRL nor OCSP URI provided", Reason: "a self-signed test certificate has no CRL distribution point or OCSP responder"},
}

// failing are the severities that fail a scan unless excused. WARN means
// testssl could not test something, which is not a pass.
var failing = map[string]bool{"MEDIUM": true, "HIGH": true, "CRITICAL": true, "WARN": true, "FATAL": true}

// Args returns the testssl arguments used by [Scan] for hostport: protocols
// (-p), standard cipher lists (-s), forward secrecy (-f), server defaults
// and certificate (-S), HTTP headers (-h) and vulnerabilities (-U).
//
// The issue named --severity LOW as well; it is left out on purpose,
// because it also drops the OK and INFO entries ("TLS1_2 not offered",
// "HSTS_time 730 days") that [Check] needs to prove the positive
// requirements. Check applies the severity rule itself.
func Args(jsonFile, hostport string) []string {
	return []string{
		"--quiet", "--color", "0", "--warnings", "off",
		"--jsonfile", jsonFile,
		"-p", "-s", "-f", "-S", "-h", "-U",
		hostport,
	}
}

// Scan runs testssl against hostport (a loopback address and port) and
// returns its findings. It skips t when testssl is not installed, or fails
// it under TOMKIT_REQUIRE_TESTSSL=1. A scan that does not finish within
// [Timeout] or writes no JSON fails t.
func Scan(t testing.TB, hostport string) []Finding {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		msg := "testssl scan: " + Binary + " is not on PATH (apt-get install testssl.sh)"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s, and %s=1", msg, EnvRequire)
		}
		t.Skip(msg + "; set " + EnvRequire + "=1 to make this a failure")
	}
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, Args(jsonFile, hostport)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl scan of %s did not finish within %s:\n%s", hostport, Timeout, tail(out))
	}
	data, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Fatalf("testssl scan of %s wrote no JSON (exit %v): %v\n%s", hostport, err, rerr, tail(out))
	}
	findings, perr := Parse(data)
	if perr != nil {
		t.Fatalf("testssl scan of %s: %v\n%s", hostport, perr, tail(out))
	}
	t.Logf("testssl scan of %s: %d entries, exit %v", hostport, len(findings), err)
	return findings
}

// Parse decodes testssl's JSON output (the flat array written by
// --jsonfile).
func Parse(data []byte) ([]Finding, error) {
	var f []Finding
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("testssl: parse json: %w", err)
	}
	return f, nil
}

var hstsSeconds = regexp.MustCompile(`\(=(\d+) seconds\)`)

// Check checks findings against the policy described in the package
// documentation, excusing only the listed exceptions. It returns nil or an
// error that names every violation.
func Check(findings []Finding, exceptions []Exception) error {
	byID := map[string][]Finding{}
	for _, f := range findings {
		byID[f.ID] = append(byID[f.ID], f)
	}
	var errs []error
	one := func(id string) (Finding, bool) {
		fs := byID[id]
		if len(fs) != 1 {
			errs = append(errs, fmt.Errorf("%s: want exactly one entry, got %d", id, len(fs)))
			return Finding{}, false
		}
		return fs[0], true
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"} {
		if f, ok := one(id); ok && !strings.HasPrefix(f.Finding, "not offered") {
			errs = append(errs, fmt.Errorf("%s: %q, want not offered", id, f.Finding))
		}
	}
	if f, ok := one("TLS1_3"); ok && !strings.HasPrefix(f.Finding, "offered") {
		errs = append(errs, fmt.Errorf("TLS1_3: %q, want offered", f.Finding))
	}
	if f, ok := one("HSTS_time"); ok {
		m := hstsSeconds.FindStringSubmatch(f.Finding)
		if m == nil {
			errs = append(errs, fmt.Errorf("HSTS_time: %q, want a max-age", f.Finding))
		} else if n, err := strconv.Atoi(m[1]); err != nil || n < MinHSTS {
			errs = append(errs, fmt.Errorf("HSTS_time: max-age %s, want at least %d", m[1], MinHSTS))
		}
	}
	for _, f := range findings {
		if !failing[f.Severity] || excused(f, exceptions) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s %s: %s", f.Severity, f.ID, f.Finding))
	}
	return errors.Join(errs...)
}

func excused(f Finding, exceptions []Exception) bool {
	for _, e := range exceptions {
		if f.ID == e.ID && strings.Contains(f.Finding, e.Finding) {
			return true
		}
	}
	return false
}

// tail returns the end of testssl's console output for a failure message.
func tail(out []byte) string {
	const n = 4000
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return string(out)
}
