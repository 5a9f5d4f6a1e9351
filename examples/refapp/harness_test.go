package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// Binaries built once by TestMain: the reference service and the tomkit
// CLI, both without the race detector so the load test measures the
// service rather than the instrumentation.
var refappBin, tomkitBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only the in-process fuzz target.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "refapp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	refappBin = filepath.Join(dir, "refapp")
	tomkitBin = filepath.Join(dir, "tomkit")
	for bin, pkg := range map[string]string{refappBin: ".", tomkitBin: "../../cmd/tomkit"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// refapp is one running instance of the service.
type refapp struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string // https://localhost:port
	HTTPURL string // the plain-HTTP redirect listener
	Metrics string // the Prometheus /metrics URL
	Data    string
	Roots   *x509.CertPool
	Tokens  map[string]string

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

// lockedWriter appends to a buffer under the instance's lock.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startRefapp runs the service on loopback ports with a fresh data
// directory (or dataDir, to restart on existing state) and waits until it
// is ready.
func startRefapp(t *testing.T, dataDir string, args ...string) *refapp {
	t.Helper()
	return startRefappEnv(t, nil, dataDir, args...)
}

// startRefappEnv is startRefapp with extra environment variables.
func startRefappEnv(t *testing.T, env []string, dataDir string, args ...string) *refapp {
	t.Helper()
	if dataDir == "" {
		dataDir = filepath.Join(t.TempDir(), "data")
	}
	r := &refapp{t: t, Data: dataDir, done: make(chan error, 1)}
	all := append([]string{"-data", dataDir, "-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"}, args...)
	r.cmd = exec.Command(refappBin, all...)
	r.cmd.Env = append(append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="), env...)
	pr, pw := io.Pipe()
	// The buffer first: by the time the reader sees a line, Stdout() has it.
	r.cmd.Stdout = io.MultiWriter(lockedWriter{&r.mu, &r.stdout}, pw)
	r.cmd.Stderr = lockedWriter{&r.mu, &r.stderr}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { r.stop() })

	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "refapp: listening on "); ok {
				r.URL = strings.TrimSpace(u)
			}
			if u, ok := strings.CutPrefix(line, "refapp: metrics on "); ok {
				r.Metrics = strings.TrimSpace(u)
			}
			if rest, ok := strings.CutPrefix(line, "refapp: redirecting "); ok {
				r.HTTPURL = strings.Fields(rest)[0]
			}
			if line == "refapp: ready" && !found {
				found = true
				ready <- nil
			}
		}
		if !found {
			ready <- fmt.Errorf("refapp exited before ready")
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v\nstderr:\n%s", err, r.Stderr())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("refapp not ready after 60s\nstderr:\n%s", r.Stderr())
	}
	ca, err := os.ReadFile(filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r.Roots = x509.NewCertPool()
	r.Roots.AppendCertsFromPEM(ca)
	var toks []struct{ Subject, Token string }
	b, err := os.ReadFile(filepath.Join(dataDir, "demo-tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &toks); err != nil {
		t.Fatal(err)
	}
	r.Tokens = map[string]string{}
	for _, tk := range toks {
		r.Tokens[tk.Subject] = tk.Token
	}
	return r
}

// stop sends SIGTERM and waits: the audit log writes its final checkpoint.
func (r *refapp) stop() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("refapp exited with %v\nstderr:\n%s", err, r.Stderr())
		}
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("refapp did not stop within 30s")
	}
}

func (r *refapp) Stderr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

func (r *refapp) Stdout() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdout.String()
}

// client is a TLS 1.3 client that trusts the instance's CA and does not
// follow redirects.
func (r *refapp) client() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: r.Roots, MinVersion: tls.VersionTLS13},
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type reply struct {
	Status    int
	Body      []byte
	Code      string // the JSON error code
	RequestID string
	Header    http.Header
}

func (p reply) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(p.Body, &m)
	s, _ := m[name].(string)
	return s
}

func (r *refapp) do(c *http.Client, method, path, who string, body any) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, r.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if who != "" {
		tok, ok := r.Tokens[who]
		if !ok {
			tok = who // a literal (invalid) token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	p := reply{Status: resp.StatusCode, Body: b, RequestID: resp.Header.Get("X-Request-Id"), Header: resp.Header}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		p.Code = e.Error.Code
	}
	return p, nil
}

// events reads every record of the stopped instance's audit log. The
// frame format is audit's (audit/internal/frame): u32 length, u64
// sequence, u32 header CRC, payload, u32 payload CRC. Integrity is
// checked separately with audit.Verify; this only reads.
func readEvents(t *testing.T, dir string) []audit.Event {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no audit segments in %s: %v", dir, err)
	}
	sort.Strings(segs)
	var out []audit.Event
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) >= 20 {
			n := int(binary.BigEndian.Uint32(b[0:4]))
			if len(b) < 16+n+4 {
				t.Fatalf("%s: torn frame", s)
			}
			e, err := audit.Unmarshal(b[16 : 16+n])
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			out = append(out, e)
			b = b[16+n+4:]
		}
	}
	return out
}

func attr(e audit.Event, key string) string {
	for _, a := range e.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// tomkit runs the tomkit CLI and returns its exit code and output.
func tomkit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(tomkitBin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// metricSum adds up the data points of the named metric in the JSON lines
// the stdout metric exporter wrote (the last export is at shutdown).
func metricSum(stdout, name string) (sum float64, found bool) {
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"ScopeMetrics"`) {
			continue
		}
		var rm struct {
			ScopeMetrics []struct {
				Metrics []struct {
					Name string
					Data struct {
						DataPoints []struct{ Value float64 }
					}
				}
			}
		}
		if json.Unmarshal([]byte(line), &rm) != nil {
			continue
		}
		last := 0.0
		seen := false
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == name {
					seen = true
					for _, dp := range m.Data.DataPoints {
						last += dp.Value
					}
				}
			}
		}
		if seen {
			// Cumulative temporality: the latest export holds the total.
			sum, found = last, true
		}
	}
	return sum, found
}
