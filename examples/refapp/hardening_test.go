package main_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// TestEveryResponseAudited sends, through the real HTTPS server, the
// requests whose responses do not come from a route's handler (the mux's
// path-cleaning redirects and 404s, the body and header limits) and
// paths that are not valid UTF-8: each response has exactly one request
// event, and none is an audit outage.
func TestEveryResponseAudited(t *testing.T) {
	r := startRefapp(t, "", "-traces", "off")
	c := r.client()
	type sent struct {
		what   string
		status int
		reqID  string
	}
	var all []sent
	const redirect = -1 // the mux's path-cleaning redirect: 301 or 307, by Go version
	send := func(what, method, path string, hdr http.Header, body []byte, status int) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, r.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if body == nil {
			req.Body = nil
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		resp.Body.Close()
		if status == redirect && (resp.StatusCode == 301 || resp.StatusCode == 307) {
			status = resp.StatusCode
		}
		if resp.StatusCode != status {
			t.Fatalf("%s: %s %.60s: status %d, want %d", what, method, path, resp.StatusCode, status)
		}
		id := resp.Header.Get("X-Request-Id")
		if id == "" {
			t.Fatalf("%s: no X-Request-Id", what)
		}
		all = append(all, sent{what, status, id})
		return resp
	}
	bearer := func(who string) http.Header { return http.Header{"Authorization": {"Bearer " + r.Tokens[who]}} }

	send("invalid UTF-8 path", "GET", "/%ff", nil, nil, 401)
	send("overlong UTF-8 id", "GET", "/v1/tenants/acme/documents/%c0%af", bearer("alice"), nil, 403)
	resp := send("dot-dot", "GET", "/v1/tenants/acme/../acme/documents/x", nil, nil, redirect)
	if loc := resp.Header.Get("Location"); loc != "/v1/tenants/acme/documents/x" {
		t.Errorf("dot-dot redirect to %q", loc)
	}
	send("double slash", "GET", "//healthz", nil, nil, redirect)
	send("dot segment", "POST", "/v1/./break-glass", bearer("oncall"), []byte("{}"), redirect)
	send("no route", "GET", "/nope", bearer("alice"), nil, 404)
	send("wrong method", "PUT", "/v1/tenants/acme/documents", bearer("alice"), []byte("x"), 404)
	send("body too large", "POST", "/v1/tenants/acme/documents", bearer("alice"), bytes.Repeat([]byte("x"), 1<<20+1), 413)
	big := http.Header{"X-Padding": {strings.Repeat("p", 100<<10)}}
	send("headers too large", "GET", "/v1/tenants/acme/documents/x", big, nil, 431)
	// The health check is the one request that is not audited.
	h := send("health", "GET", "/healthz", nil, nil, 200)
	// The plain-HTTP listener's redirects to HTTPS.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	presp, err := hc.Get(r.HTTPURL + "/v1/tenants/acme/documents/x")
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusMovedPermanently || presp.Header.Get("X-Request-Id") == "" || presp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("plain HTTP: %d, headers %v", presp.StatusCode, presp.Header)
	}
	all = append(all, sent{"plain-HTTP redirect", presp.StatusCode, presp.Header.Get("X-Request-Id")})

	r.stop()
	byID := map[string][]audit.Event{}
	for _, e := range readEvents(t, filepath.Join(r.Data, "audit")) {
		if strings.HasPrefix(e.Action, "refapp.") && e.Action != "refapp.alert" {
			byID[e.RequestID] = append(byID[e.RequestID], e)
		}
	}
	for _, s := range all {
		evs := byID[s.reqID]
		if s.reqID == h.Header.Get("X-Request-Id") {
			if len(evs) != 0 {
				t.Errorf("health check audited: %+v", evs)
			}
			continue
		}
		if len(evs) != 1 {
			t.Errorf("%s: %d request events, want 1", s.what, len(evs))
			continue
		}
		if got := attr(evs[0], "http.status"); got != strconv.Itoa(s.status) {
			t.Errorf("%s: event status %q, want %d", s.what, got, s.status)
		}
	}
	if evs := byID[all[0].reqID]; len(evs) == 1 && (evs[0].Resource != `/\xFF` || len(evs[0].Escaped) != 1) {
		t.Errorf("GET /%%ff recorded as %q escaped %q", evs[0].Resource, evs[0].Escaped)
	}
}

// TestStartupFailureExits starts the service where its audit log cannot
// be opened: it must print the real error and exit 1, never panic.
func TestStartupFailureExits(t *testing.T) {
	r := startRefapp(t, "", "-traces", "off")
	run := func(what, want string, args ...string) {
		t.Helper()
		cmd := exec.Command(refappBin, append([]string{"-addr", "127.0.0.1:0", "-http-addr", "", "-traces", "off"}, args...)...)
		cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: still running after 60s", what)
		}
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: exit %v, want 1\nstderr:\n%s", what, err, stderr.String())
		}
		if s := stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") || !strings.Contains(s, want) {
			t.Errorf("%s: stderr does not name the error %q, or panicked:\n%s", what, want, s)
		}
	}

	// A second instance on the same data directory: the log is locked.
	run("second instance", "refapp: audit log: audit: log directory is locked", "-data", r.Data)
	r.stop()

	// A tampered log.
	segs, err := filepath.Glob(filepath.Join(r.Data, "audit", "seg-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment: %v", err)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	run("tampered log", "refapp: audit log: ", "-data", r.Data)

	// Unreachable PostgreSQL (nothing listens on port 1).
	run("unreachable postgres", "refapp: audit log: ", "-data", filepath.Join(t.TempDir(), "pg"), "-postgres", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
}

// TestStrictParsing checks, through the real server, that requests two
// parsers could read differently are refused: two Authorization fields,
// a JSON body followed by more JSON or by garbage, a repeated member.
func TestStrictParsing(t *testing.T) {
	r := startRefapp(t, "", "-traces", "off")
	c := r.client()
	do := func(what string, hdr http.Header, path, body string, status int) {
		t.Helper()
		req, err := http.NewRequest("POST", r.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
	}
	alice := "Bearer " + r.Tokens["alice"]
	one := http.Header{"Authorization": {alice}}
	do("one token", one, "/v1/tenants/acme/web-search", `{"query":"q"}`, 200)
	do("two tokens", http.Header{"Authorization": {alice, "Bearer tk_forged"}}, "/v1/tenants/acme/web-search", `{"query":"q"}`, 401)
	do("two tokens, both valid", http.Header{"Authorization": {alice, alice}}, "/v1/tenants/acme/web-search", `{"query":"q"}`, 401)
	do("second JSON value", one, "/v1/tenants/acme/model-calls", `{"model":"mistral-large-eu","prompt":"p"}{"model":"gpt-4o"}`, 400)
	do("trailing garbage", one, "/v1/tenants/acme/web-search", `{"query":"q"} x`, 400)
	do("repeated member", one, "/v1/tenants/acme/model-calls", `{"model":"mistral-large-eu","Model":"gpt-4o","prompt":"p"}`, 400)
	do("invalid UTF-8", one, "/v1/tenants/acme/web-search", "{\"query\":\"\xff\"}", 400)
}
