package main_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tomtest"
)

// expectation is what one request must have left in the audit log.
type expectation struct {
	what     string
	reqID    string
	action   string
	outcome  audit.Outcome
	subject  string
	severity audit.Severity // empty: any
}

// TestEndToEnd drives a real instance over HTTPS through every TOM promise
// the service makes, then stops it and checks each request's audit entry
// and the log's integrity.
func TestEndToEnd(t *testing.T) {
	r := startRefapp(t, "", "-traces", "stdout")
	c := r.client()
	var want []expectation
	call := func(what, method, path, who string, body any, status int, code string) reply {
		t.Helper()
		p, err := r.do(c, method, path, who, body)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p.Status != status || (code != "" && p.Code != code) {
			t.Fatalf("%s: %s %s: status %d code %q body %s, want %d %q", what, method, path, p.Status, p.Code, p.Body, status, code)
		}
		if p.RequestID == "" {
			t.Fatalf("%s: no X-Request-Id", what)
		}
		return p
	}
	expect := func(p reply, what, action string, outcome audit.Outcome, subject string, sev audit.Severity) {
		want = append(want, expectation{what, p.RequestID, action, outcome, subject, sev})
	}

	// TOM 000 §3, 004 §2: TLS 1.3 only, HSTS, HTTP→HTTPS redirect.
	h := call("health", "GET", "/healthz", "", nil, 200, "")
	if v := h.Header.Get("Strict-Transport-Security"); !strings.Contains(v, "max-age=63072000") {
		t.Fatalf("HSTS header %q", v)
	}
	host := strings.TrimPrefix(r.URL, "https://")
	if _, err := tls.Dial("tcp", host, &tls.Config{RootCAs: r.Roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a TLS 1.2 client completed a handshake")
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := hc.Get(r.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://") || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("plain HTTP: %d Location %q", resp.StatusCode, loc)
	}

	// Authentication: 401, audited as a warning.
	p := call("no token", "GET", "/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef", "", nil, 401, "unauthenticated")
	expect(p, "no token", "refapp.document.read", audit.OutcomeDeny, "anonymous", audit.SeverityWarning)
	p = call("bad token", "GET", "/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef", "tk_forged", nil, 401, "unauthenticated")
	expect(p, "bad token", "refapp.document.read", audit.OutcomeDeny, "anonymous", audit.SeverityWarning)

	// Documents: create and read back; access logging (004 §1).
	p = call("create", "POST", "/v1/tenants/acme/documents", "alice", "Mandantenakte 4711", 201, "")
	id := p.field("id")
	expect(p, "create", "refapp.document.create", audit.OutcomeAllow, "alice", "")
	p = call("read", "GET", "/v1/tenants/acme/documents/"+id, "alice", nil, 200, "")
	if string(p.Body) != "Mandantenakte 4711" {
		t.Fatalf("read back %q", p.Body)
	}
	expect(p, "read", "refapp.document.read", audit.OutcomeAllow, "alice", "")

	// Least privilege: a viewer may read but not write or delete.
	p = call("viewer reads", "GET", "/v1/tenants/acme/documents/"+id, "bob", nil, 200, "")
	expect(p, "viewer reads", "refapp.document.read", audit.OutcomeAllow, "bob", "")
	p = call("viewer creates", "POST", "/v1/tenants/acme/documents", "bob", "x", 403, "forbidden")
	expect(p, "viewer creates", "refapp.document.create", audit.OutcomeDeny, "bob", "")

	// Tenant separation (004 §1): the law firm's lawyer cannot read acme's document.
	p = call("cross-tenant read", "GET", "/v1/tenants/acme/documents/"+id, "lena", nil, 403, "forbidden")
	expect(p, "cross-tenant read", "refapp.document.read", audit.OutcomeDeny, "lena", "")
	p = call("cross-tenant write", "POST", "/v1/tenants/kanzlei-mueller/documents", "alice", "x", 403, "forbidden")
	expect(p, "cross-tenant write", "refapp.document.create", audit.OutcomeDeny, "alice", "")

	// § 203 (004 §6): web search off, non-EU model refused, EU model allowed.
	p = call("203 web search", "POST", "/v1/tenants/kanzlei-mueller/web-search", "lena", map[string]string{"query": "Mandant Müller"}, 403, "section203_refused")
	expect(p, "203 web search", "refapp.web.search", audit.OutcomeDeny, "lena", "")
	p = call("203 non-EU model", "POST", "/v1/tenants/kanzlei-mueller/model-calls", "lena", map[string]string{"model": "gpt-4o", "prompt": "summarise"}, 403, "section203_refused")
	expect(p, "203 non-EU model", "refapp.model.call", audit.OutcomeDeny, "lena", "")
	p = call("203 EU model", "POST", "/v1/tenants/kanzlei-mueller/model-calls", "lena", map[string]string{"model": "mistral-large-eu", "prompt": "summarise"}, 200, "")
	expect(p, "203 EU model", "refapp.model.call", audit.OutcomeAllow, "lena", "")
	p = call("ordinary web search", "POST", "/v1/tenants/acme/web-search", "alice", map[string]string{"query": "weather"}, 200, "")
	expect(p, "ordinary web search", "refapp.web.search", audit.OutcomeAllow, "alice", "")

	// Break-glass (000 §2): refused before, alert and access after.
	p = call("oncall before", "GET", "/v1/tenants/acme/documents/"+id, "oncall", nil, 403, "forbidden")
	expect(p, "oncall before", "refapp.document.read", audit.OutcomeDeny, "oncall", "")
	p = call("break-glass", "POST", "/v1/break-glass", "oncall", map[string]string{"tenant": "acme", "reason": "INC-1234 outage"}, 201, "")
	expect(p, "break-glass", "refapp.breakglass.open", audit.OutcomeAllow, "oncall", audit.SeverityCritical)
	p = call("oncall after", "GET", "/v1/tenants/acme/documents/"+id, "oncall", nil, 200, "")
	expect(p, "oncall after", "refapp.document.read", audit.OutcomeAllow, "oncall", audit.SeverityWarning)
	if !strings.Contains(r.Stderr(), `ALERT`) || !strings.Contains(r.Stderr(), `"break-glass"`) {
		t.Fatalf("break-glass raised no alert; stderr:\n%s", r.Stderr())
	}

	// MFA (000 §2): an approver without MFA is refused.
	p = call("erasure request", "POST", "/v1/tenants/acme/access-requests", "carol", map[string]string{"role": "eraser", "reason": "contract ended"}, 202, "")
	req := p.field("id")
	expect(p, "erasure request", "refapp.access.request", audit.OutcomeAllow, "carol", "")
	p = call("approve without MFA", "POST", "/v1/tenants/acme/access-requests/"+req+"/approve", "erin", nil, 403, "mfa_required")
	expect(p, "approve without MFA", "refapp.access.approve", audit.OutcomeDeny, "erin", "")
	// Four-eyes (000): no self-approval; erasure needs the grant.
	p = call("self-approval", "POST", "/v1/tenants/acme/access-requests/"+req+"/approve", "carol", nil, 403, "four_eyes_required")
	expect(p, "self-approval", "refapp.access.approve", audit.OutcomeDeny, "carol", "")
	p = call("erase without grant", "POST", "/v1/tenants/acme/erase", "dave", nil, 403, "")
	expect(p, "erase without grant", "refapp.tenant.erase", audit.OutcomeDeny, "dave", "")

	// The compliance kit against the running service, before erasure.
	tomtest.Require(t,
		tomtest.TLS13Only(r.URL, r.Roots),
		tomtest.HSTS(r.URL+"/healthz", r.Roots),
		tomtest.Service{BaseURL: r.URL, RootCAs: r.Roots}.HTTPAuthRequired(),
		tomtest.Service{BaseURL: r.URL, RootCAs: r.Roots}.HTTPTenantSeparation(r.Tokens["alice"], "acme", "kanzlei-mueller"),
		tomtest.Service{BaseURL: r.URL, RootCAs: r.Roots}.HTTPEncryptedAtRest(r.Tokens["lena"], "kanzlei-mueller", os.DirFS(filepath.Join(r.Data, "documents"))),
		tomtest.Service{BaseURL: r.URL, RootCAs: r.Roots}.HTTPSection203(r.Tokens["lena"], "kanzlei-mueller", "gpt-4o", "mistral-large-eu"),
	)

	// A "backup" of acme's documents, taken before the erasure.
	backup := t.TempDir()
	docs := filepath.Join(r.Data, "documents")
	if err := os.CopyFS(backup, os.DirFS(docs)); err != nil {
		t.Fatal(err)
	}

	p = call("approve", "POST", "/v1/tenants/acme/access-requests/"+req+"/approve", "dave", nil, 200, "")
	expect(p, "approve", "refapp.access.approve", audit.OutcomeAllow, "dave", "")
	p = call("erase", "POST", "/v1/tenants/acme/erase", "carol", nil, 200, "")
	expect(p, "erase", "refapp.tenant.erase", audit.OutcomeAllow, "carol", "")
	p = call("read after erasure", "GET", "/v1/tenants/acme/documents/"+id, "alice", nil, 404, "not_found")
	expect(p, "read after erasure", "refapp.document.read", audit.OutcomeDeny, "alice", "")

	// Restore the backup: the documents are back on disk, but their key
	// is shredded, so they stay unreadable.
	if err := os.CopyFS(docs, os.DirFS(backup)); err != nil && !os.IsExist(err) {
		// CopyFS refuses to overwrite; restore file by file instead.
		t.Logf("restore: %v", err)
	}
	restoreOver(t, backup, docs)
	p = call("read restored backup", "GET", "/v1/tenants/acme/documents/"+id, "alice", nil, 404, "not_found")
	expect(p, "read restored backup", "refapp.document.read", audit.OutcomeDeny, "alice", "")

	// Auth-failure alert (000 §6): a burst of bad tokens from one address.
	for range 8 {
		call("brute force", "GET", "/v1/tenants/acme/documents/"+id, "tk_guess", nil, 401, "unauthenticated")
	}
	if !strings.Contains(r.Stderr(), `"authentication failures"`) {
		t.Fatalf("no authentication-failure alert; stderr:\n%s", r.Stderr())
	}

	r.stop()
	if !strings.Contains(r.Stdout(), `"refapp.action"`) {
		t.Error("no OTel spans with the refapp.action attribute on stdout")
	}
	// Monitoring (000 §6): the counters, as exported at shutdown.
	// 2 above, 2 by tomtest.HTTPAuthRequired, 8 in the burst.
	if n, ok := metricSum(r.Stdout(), "refapp.auth.failures"); !ok || n != 12 {
		t.Errorf("refapp.auth.failures = %v (exported %v), want 12", n, ok)
	}
	if n, ok := metricSum(r.Stdout(), "refapp.alerts"); !ok || n < 2 {
		t.Errorf("refapp.alerts = %v (exported %v), want at least 2", n, ok)
	}

	// Every expectation has its audit entry.
	events := readEvents(t, filepath.Join(r.Data, "audit"))
	byReq := map[string][]audit.Event{}
	for _, e := range events {
		byReq[e.RequestID] = append(byReq[e.RequestID], e)
	}
	for _, w := range want {
		var got *audit.Event
		for i, e := range byReq[w.reqID] {
			if e.Action == w.action {
				got = &byReq[w.reqID][i]
			}
		}
		if got == nil {
			t.Errorf("%s: no %s audit entry for request %s", w.what, w.action, w.reqID)
			continue
		}
		if got.Outcome != w.outcome || got.Actor.Subject != w.subject || (w.severity != "" && got.Severity != w.severity) {
			t.Errorf("%s: audit entry %s/%s/%s, want %s/%s/%s", w.what, got.Outcome, got.Actor.Subject, got.Severity, w.outcome, w.subject, w.severity)
		}
		if addr := attr(*got, "client.address"); addr == "127.0.0.1" || addr == "" {
			t.Errorf("%s: client address %q not pseudonymized", w.what, addr)
		}
	}
	// The restored backup was found and refused for its shredded key, not
	// for being missing.
	shredded := false
	for _, e := range byReq[want[len(want)-1].reqID] {
		if strings.Contains(e.Reason, "destroyed") {
			shredded = true
		}
	}
	if !shredded {
		t.Errorf("reading the restored backup left no key-destroyed audit entry: %+v", byReq[want[len(want)-1].reqID])
	}
	// The § 203 tenant's knowledge base is guarded, and its decisions
	// audited; the guard refused web search and the non-EU model.
	var kb, s203deny int
	for _, e := range events {
		if e.Action == "section203.access" && e.Outcome == audit.OutcomeAllow && e.Actor.Tenant == "kanzlei-mueller" {
			kb++
		}
		if (e.Action == "section203.tool" || e.Action == "section203.model") && e.Outcome == audit.OutcomeDeny {
			s203deny++
		}
	}
	if kb == 0 || s203deny < 2 {
		t.Errorf("section203 audit entries: %d knowledge-base accesses, %d refusals", kb, s203deny)
	}
	// Break-glass left rbac's critical event and the alert's.
	var bgCritical, alerts int
	for _, e := range events {
		if e.Action == "refapp.alert" && e.Severity == audit.SeverityCritical {
			alerts++
		}
		if strings.Contains(e.Action, "break") && e.Severity == audit.SeverityCritical && e.Action != "refapp.breakglass.open" {
			bgCritical++
		}
	}
	if alerts < 2 || bgCritical == 0 {
		t.Errorf("alerts in audit log: %d refapp.alert, %d rbac break-glass critical events", alerts, bgCritical)
	}

	// `tomkit audit verify` passes, and detects a flipped byte.
	key := filepath.Join(r.Data, "audit.pub")
	logDir := filepath.Join(r.Data, "audit")
	if code, out := tomkit(t, "audit", "verify", "--key", key, logDir); code != 0 || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	segs, _ := filepath.Glob(filepath.Join(logDir, "seg-*.log"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0x20
	os.WriteFile(segs[0], b, 0o600)
	if code, out := tomkit(t, "audit", "verify", "--key", key, logDir); code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("tampered audit log: verify %d %s", code, out)
	}
}

// restoreOver copies every file of src over dst.
func restoreOver(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRateLimit checks the 429 answer, its audit entry and the alert.
func TestRateLimit(t *testing.T) {
	r := startRefapp(t, "", "-traces", "stdout", "-rate", "1", "-burst", "3")
	c := r.client()
	var limited int
	for range 10 {
		p, err := r.do(c, "GET", "/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == http.StatusTooManyRequests {
			if p.Code != "rate_limited" || p.Header.Get("Retry-After") == "" {
				t.Fatalf("429 with code %q", p.Code)
			}
			limited++
		}
	}
	if limited < 5 {
		t.Fatalf("%d of 10 requests limited, want at least 5", limited)
	}
	if !strings.Contains(r.Stderr(), `"rate limit exceeded"`) {
		t.Fatalf("no rate-limit alert; stderr:\n%s", r.Stderr())
	}
	r.stop()
	if v, ok := metricSum(r.Stdout(), "refapp.ratelimit.violations"); !ok || int(v) != limited {
		t.Errorf("refapp.ratelimit.violations = %v (exported %v), want %d", v, ok, limited)
	}
	n := 0
	for _, e := range readEvents(t, filepath.Join(r.Data, "audit")) {
		if e.Action == "refapp.document.read" && e.Reason == "rate_limited" && e.Outcome == audit.OutcomeDeny {
			n++
		}
	}
	if n != limited {
		t.Fatalf("%d rate-limited audit entries, %d limited requests", n, limited)
	}
}

// TestRestartKeepsState restarts on the same data directory: documents
// written before are readable after.
func TestRestartKeepsState(t *testing.T) {
	r := startRefapp(t, "", "-traces", "off")
	p, err := r.do(r.client(), "POST", "/v1/tenants/kanzlei-mueller/documents", "lena", "Schriftsatz")
	if err != nil || p.Status != 201 {
		t.Fatalf("create: %v %d", err, p.Status)
	}
	r.stop()
	r2 := startRefapp(t, r.Data, "-traces", "off")
	if !strings.Contains(r2.Stdout(), "using data directory") {
		t.Error("second start did not reuse the data directory")
	}
	q, err := r2.do(r2.client(), "GET", "/v1/tenants/kanzlei-mueller/documents/"+p.field("id"), "lena", nil)
	if err != nil || q.Status != 200 || string(q.Body) != "Schriftsatz" {
		t.Fatalf("after restart: %v %d %q", err, q.Status, q.Body)
	}
	// The data directory's secrets are private.
	for _, f := range []string{"master.key", "audit.key", "server-key.pem", "demo-tokens.json", "keysets/keyring.json"} {
		fi, err := os.Stat(filepath.Join(r.Data, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, err %v", f, fi.Mode(), err)
		}
	}
}
