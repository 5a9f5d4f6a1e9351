package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testpg"
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
// that audits its requests to a tamper-evident log, the way the reference
// service does: an X-Request-Id on every response, one record per request
// with the client address as a personal (pseudonymized) attribute, and a
// critical "fixture.alert" record once authentication failures exceed 5.
// It returns the server's URL, a CA file, the log directory, its verifier
// key file and a policy file. closeLog closes the log (it is closed at
// cleanup too).
func checkFixture(t *testing.T, legacy bool) (url, cafile, logDir, keyFile, policy string, closeLog func()) {
	return checkFixtureAlerts(t, legacy, true)
}

// checkFixtureAlerts is checkFixture with the alert on authentication
// failures switched on or off.
func checkFixtureAlerts(t *testing.T, legacy, alerts bool) (url, cafile, logDir, keyFile, policy string, closeLog func()) {
	t.Helper()
	dir := t.TempDir()
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
	ps, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "fixture-1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	logDir = filepath.Join(dir, "audit")
	ctx := context.Background()
	l, err := audit.Open(ctx, logDir, audit.FileConfig{Signer: signer, Pseudonymizer: ps, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeLog = func() {
		once.Do(func() {
			if err := l.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(closeLog)
	for range 5 {
		if err := l.Log(ctx, audit.Event{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "test.read", Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	failures := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		id := fmt.Sprintf("req-%x", time.Now().UnixNano())
		w.Header().Set("X-Request-Id", id)
		ctx := audit.WithRequestID(r.Context(), id)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ev := audit.Event{Actor: audit.Actor{Subject: "anonymous", Tenant: "-"}, Action: "fixture.request", Outcome: audit.OutcomeDeny,
			Resource: r.URL.Path, Attributes: []audit.Attr{audit.Personal("client.address", host)}}
		status := http.StatusForbidden
		if r.Header.Get("Authorization") == "" || strings.Contains(r.Header.Get("Authorization"), "invalid") {
			status = http.StatusUnauthorized
			mu.Lock()
			failures++
			alert := failures > 5 && alerts
			mu.Unlock()
			if alert {
				if err := l.Log(ctx, audit.Event{Actor: ev.Actor, Action: "fixture.alert", Outcome: audit.OutcomeAllow, Severity: audit.SeverityCritical, Reason: "authentication failures"}); err != nil {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}
		}
		if err := l.Log(ctx, ev); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(status)
		if status == http.StatusUnauthorized {
			w.Write([]byte(`{"error":{"code":"unauthenticated"}}`))
		}
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	if legacy {
		srv.TLS.MinVersion = tls.VersionTLS12
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cafile = filepath.Join(dir, "ca.pem")
	os.WriteFile(cafile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	policy = filepath.Join(dir, "policy.csv")
	os.WriteFile(policy, []byte(checkPolicy), 0o600)
	return srv.URL, cafile, logDir, keyFile, policy, closeLog
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
	url, ca, logDir, key, policy, _ := checkFixture(t, false)
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
		"audit-pseudonyms": tomtest.StatusPass, "auth-failure-alert": tomtest.StatusPass, "access-logged": tomtest.StatusNotCovered,
		"rate-limit-alert": tomtest.StatusNotCovered, "backup-retention": tomtest.StatusPass,
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
	// The verdict says no check failed, and counts partial clauses
	// apart from proven ones; stdout prints the same.
	n := rep.Counts()
	verdict := fmt.Sprintf("no check failed; %d clauses proven, %d partly, %d not covered", n.Pass, n.Partial, n.NotCovered)
	if !strings.Contains(string(md), "| 004-6.2 |") || !strings.Contains(string(md), "- Verdict: "+verdict+"\n") || strings.Contains(string(md), "PASS") {
		t.Errorf("markdown report incomplete:\n%s", md)
	}
	if n.Partial == 0 || n.Fail != 0 || n.Pass+n.Partial+n.Fail+n.NotCovered != len(tomtest.Clauses()) {
		t.Errorf("counts %+v", n)
	}
	for _, want := range []string{
		fmt.Sprintf("\nclauses: %d pass, %d partial, 0 fail, %d not covered; report in %s\n", n.Pass, n.Partial, n.NotCovered, out),
		"\nverdict: " + verdict + "\n",
		"\nPART TOM 000-6.3                not checked: rate-limit-alert, alert-counters, anomaly-alert\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, c := range rep.Clauses {
		if c.ID == "000-6.3" && c.Status != tomtest.StatusPartial {
			t.Errorf("000-6.3: %s, want partial (%s)", c.Status, c.Reason)
		}
		if c.ID == "004-1.5" && c.Status != tomtest.StatusPartial {
			t.Errorf("004-1.5: %s, want partial (%s)", c.Status, c.Reason)
		}
	}
	ju, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err := xml.Unmarshal(ju, new(struct{})); err != nil {
		t.Errorf("junit.xml: %v", err)
	}
}

func TestCheckFailsOnLegacyTLSAndTamperedLog(t *testing.T) {
	url, ca, logDir, key, _, closeLog := checkFixture(t, true)
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
	closeLog()
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

// TestCheckFailingPartFailsClause: against a service that refuses
// authentication failures but raises no alert, 000-6.3 fails (its
// auth-failures-detected part passed, its auth-failure-alert part failed):
// it is neither partial nor pass, and tomkit check exits 1.
func TestCheckFailingPartFailsClause(t *testing.T) {
	url, ca, logDir, key, _, _ := checkFixtureAlerts(t, false, false)
	out := t.TempDir()
	code, stdout, _ := runCLI(t, "", "check", "--url", url, "--cacert", ca, "--audit-log", logDir, "--audit-key", key, "--out", out, "--retention=false")
	if code != exitFailure || !strings.Contains(stdout, "FAIL auth-failure-alert") || !strings.Contains(stdout, "FAIL TOM 000-6.3                failed: auth-failure-alert\n") {
		t.Fatalf("code %d, stdout:\n%s", code, stdout)
	}
	var rep tomtest.Report
	b, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Clauses {
		if c.ID != "000-6.3" {
			continue
		}
		parts := map[string]tomtest.Status{}
		for _, p := range c.Parts {
			parts[p.ID] = p.Status
		}
		if c.Status != tomtest.StatusFail || parts["auth-failures-detected"] != tomtest.StatusPass || parts["auth-failure-alert"] != tomtest.StatusFail {
			t.Fatalf("000-6.3: %s, parts %v", c.Status, parts)
		}
	}
	if !strings.Contains(stdout, "\nverdict: FAIL: checks failed: auth-failure-alert; 1 clause failed, ") {
		t.Errorf("verdict:\n%s", stdout)
	}
}

// TestAuditTrail: the trail `tomkit check` gives its checks reads a file
// log and a PostgreSQL log from an index on, each record proven, and
// fails on a tampered log.
func TestAuditTrail(t *testing.T) {
	ctx := context.Background()
	_, signer, verifier := auditFixture(t)
	skey, _ := os.ReadFile(signer)
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	// exercise logs six events to l, closes it (which signs the final
	// checkpoint) and reads them back through a trail over at.
	exercise := func(t *testing.T, at string, l audit.Logger, closeLog func() error) {
		tr, err := newAuditTrail(at, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := tr.End(ctx); err != nil || n != 0 {
			t.Fatalf("empty log: End %d, %v", n, err)
		}
		for i := range 6 {
			if err := l.Log(ctx, audit.Event{Action: fmt.Sprintf("doc.read.%d", i), Outcome: audit.OutcomeAllow, Actor: audit.Actor{Subject: "alice", Tenant: "acme"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := closeLog(); err != nil {
			t.Fatal(err)
		}
		if n, err := tr.End(ctx); err != nil || n != 6 {
			t.Fatalf("End %d, %v; want 6", n, err)
		}
		evs, err := tr.Events(ctx, 2)
		if err != nil || len(evs) != 4 {
			t.Fatalf("Events(2): %d events, %v", len(evs), err)
		}
		for i, e := range evs {
			if e.Action != fmt.Sprintf("doc.read.%d", i+2) {
				t.Errorf("event %d: %s", i+2, e.Action)
			}
		}
	}
	t.Run("file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "audit")
		l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, dir, l, l.Close)
		// A flipped byte in a record: the trail refuses to read the log.
		seg, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
		b, _ := os.ReadFile(seg[0])
		b[len(b)/2] ^= 1
		os.WriteFile(seg[0], b, 0o600)
		tr, _ := newAuditTrail(dir, verifier)
		if _, err := tr.Events(ctx, 0); err == nil {
			t.Fatal("trail read a tampered log")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testpg.Schema(t)
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		l, err := pglog.Open(ctx, pool, pglog.Config{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, dsn, l, l.Close)
	})
}
