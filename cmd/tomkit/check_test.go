package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tomtest"
)

const checkPolicy = `p, editor, acme, /documents/*, read, allow
p, admin, acme, /tenant, erase, allow, mfa
p, editor, beta, /documents/*, read, allow
g, alice, editor, acme
g, carol, admin, acme
g, bob, editor, beta
`

// checkFixture starts a TLS server (TLS 1.3 only unless legacy) with HSTS
// and returns its URL and a CA file, and writes an audit log and a policy.
func checkFixture(t *testing.T, legacy bool) (url, cafile, logDir, keyFile, policy string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		if r.Header.Get("Authorization") == "" || strings.Contains(r.Header.Get("Authorization"), "invalid") {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthenticated"}}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	if legacy {
		srv.TLS.MinVersion = tls.VersionTLS12
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cafile = filepath.Join(dir, "ca.pem")
	os.WriteFile(cafile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	skey, vkey, err := audit.GenerateKey("tomkit.test/check")
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "audit.verifier")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	logDir = filepath.Join(dir, "audit")
	ctx := context.Background()
	l, err := audit.Open(ctx, logDir, audit.FileConfig{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := l.Log(ctx, audit.Event{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "test.read", Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	policy = filepath.Join(dir, "policy.csv")
	os.WriteFile(policy, []byte(checkPolicy), 0o600)
	return srv.URL, cafile, logDir, keyFile, policy
}

func TestCheckUsage(t *testing.T) {
	tests := [][]string{
		{"check"},
		{"check", "--retention=false"},
		{"check", "--audit-log", "x"},
		{"check", "--url", "https://x", "extra"},
		{"check", "--no-such-flag"},
	}
	for _, args := range tests {
		if code, _, _ := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%q: code %d, want %d", args, code, exitUsage)
		}
	}
}

func TestCheckReport(t *testing.T) {
	url, ca, logDir, key, policy := checkFixture(t, false)
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, "", "check", "--url", url, "--cacert", ca, "--audit-log", logDir, "--audit-key", key, "--policy", policy, "--out", out)
	if code != exitOK {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var rep tomtest.Report
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Clauses) != len(tomtest.Clauses()) {
		t.Fatalf("report maps %d clauses, want all %d", len(rep.Clauses), len(tomtest.Clauses()))
	}
	want := map[string]tomtest.Status{
		"tls13-only": tomtest.StatusPass, "hsts": tomtest.StatusPass, "authentication-required": tomtest.StatusPass,
		"audit-integrity": tomtest.StatusPass, "deny-by-default": tomtest.StatusPass, "mfa-for-privileged": tomtest.StatusPass,
		"retention-window": tomtest.StatusPass, "tenant-separation": tomtest.StatusNotCovered,
	}
	got := map[string]tomtest.Status{}
	for _, r := range rep.Checks {
		got[r.Check] = r.Status
	}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("check %s: %s, want %s", name, got[name], st)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "| 004-6.2 |") || !strings.Contains(string(md), "**PASS**") {
		t.Errorf("markdown report incomplete:\n%s", md)
	}
	ju, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err := xml.Unmarshal(ju, new(struct{})); err != nil {
		t.Errorf("junit.xml: %v", err)
	}
}

func TestCheckFailsOnLegacyTLSAndTamperedLog(t *testing.T) {
	url, ca, logDir, key, _ := checkFixture(t, true)
	out := t.TempDir()
	code, stdout, _ := runCLI(t, "", "check", "--url", url, "--cacert", ca, "--out", out, "--retention=false")
	if code != exitFailure || !strings.Contains(stdout, "FAIL tls13-only") {
		t.Fatalf("legacy TLS: code %d, stdout:\n%s", code, stdout)
	}
	ju, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
	if !strings.Contains(string(ju), "<failure") {
		t.Fatalf("junit has no failure:\n%s", ju)
	}

	// Tamper with the log: the check fails.
	seg, _ := filepath.Glob(filepath.Join(logDir, "seg-*"))
	if len(seg) == 0 {
		t.Fatal("no segment file")
	}
	b, _ := os.ReadFile(seg[0])
	b[len(b)/2] ^= 1
	os.WriteFile(seg[0], b, 0o600)
	code, stdout, _ = runCLI(t, "", "check", "--audit-log", logDir, "--audit-key", key, "--out", t.TempDir(), "--retention=false", "--timeout", "5s")
	if code != exitFailure || !strings.Contains(stdout, "FAIL audit-integrity") {
		t.Fatalf("tampered log: code %d, stdout:\n%s", code, stdout)
	}
}

// FuzzPolicyProbes: deriving probes from any policy text never panics, and
// every probe names an actor, an action and an object.
func FuzzPolicyProbes(f *testing.F) {
	f.Add([]byte(checkPolicy))
	f.Add([]byte("p,a,b,c,d,allow,mfa\ng,x,a,b\n# comment\n\n"))
	f.Add([]byte("g, , , \np, , , , , \n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		cross, mfa := policyProbes(text)
		for _, p := range append(cross, mfa...) {
			if p.Action == "" && p.Resource == "" && p.Actor == (audit.Actor{}) {
				t.Fatalf("empty probe from %q", text)
			}
		}
	})
}
