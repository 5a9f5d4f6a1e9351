package tomtest_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tomtest"
)

func run1(t *testing.T, c tomtest.Check) tomtest.Result {
	t.Helper()
	return tomtest.Run(context.Background(), c)[0]
}

func tlsServer(t *testing.T, minV, maxV uint16, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: minV, MaxVersion: maxV}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func hsts(v string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v != "" {
			w.Header().Set("Strict-Transport-Security", v)
		}
		w.Write([]byte("ok"))
	})
}

func TestTLS13Only(t *testing.T) {
	strict := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, hsts(""))
	legacy := tlsServer(t, tls.VersionTLS12, tls.VersionTLS13, hsts(""))
	closed := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, hsts(""))
	closedURL := closed.URL
	closed.Close()
	pool := strict.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tests := []struct {
		name string
		url  string
		want tomtest.Status
	}{
		{"tls13 only", strict.URL, tomtest.StatusPass},
		{"tls12 accepted", legacy.URL, tomtest.StatusFail},
		{"unreachable", closedURL, tomtest.StatusFail},
		{"plain http url", strings.Replace(strict.URL, "https", "http", 1), tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each httptest server has its own certificate; verify
			// against the right pool.
			roots := pool
			if tt.url == legacy.URL {
				roots = legacy.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			}
			got := run1(t, tomtest.TLS13Only(tt.url, roots))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		got := run1(t, tomtest.TLS13Only(strict.URL, nil))
		if got.Status != tomtest.StatusFail {
			t.Fatalf("status %s, want fail for an unverifiable certificate", got.Status)
		}
	})
}

func TestHSTS(t *testing.T) {
	tests := []struct {
		header string
		want   tomtest.Status
	}{
		{"max-age=63072000; includeSubDomains", tomtest.StatusPass},
		{"max-age=31536000", tomtest.StatusPass},
		{`max-age="31536000"; preload`, tomtest.StatusPass},
		{"", tomtest.StatusFail},
		{"max-age=300", tomtest.StatusFail},
		{"includeSubDomains", tomtest.StatusFail},
		{"max-age=abc", tomtest.StatusFail},
		{"max-age=31536000; max-age=31536000", tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			srv := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, hsts(tt.header))
			roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			got := run1(t, tomtest.HSTS(srv.URL, roots))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
}

// fileStore writes each value to its own file in dir, through encode.
type fileStore struct {
	dir    string
	encode func([]byte) []byte
	n      int
}

func (s *fileStore) put(_ context.Context, b []byte) error {
	s.n++
	return os.WriteFile(filepath.Join(s.dir, fmt.Sprint(s.n)), s.encode(b), 0o600)
}

func gcm(t *testing.T) func([]byte) []byte {
	key := make([]byte, 32)
	rand.Read(key)
	blk, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(blk)
	return func(b []byte) []byte {
		nonce := make([]byte, a.NonceSize())
		rand.Read(nonce)
		return a.Seal(nonce, nonce, b, nil)
	}
}

func TestEncryptedAtRest(t *testing.T) {
	tests := []struct {
		name   string
		encode func([]byte) []byte
		want   tomtest.Status
	}{
		{"aes-256-gcm", gcm(t), tomtest.StatusPass},
		{"plaintext", func(b []byte) []byte { return b }, tomtest.StatusFail},
		{"plaintext with framing", func(b []byte) []byte { return append([]byte("HDR\x00"), append(b, "\x00TRL"...)...) }, tomtest.StatusFail},
		{"base64", func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }, tomtest.StatusFail},
		{"hex", func(b []byte) []byte { return []byte(hex.EncodeToString(b)) }, tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := &fileStore{dir: dir, encode: tt.encode}
			got := run1(t, tomtest.EncryptedAtRest(s.put, os.DirFS(dir)))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
	t.Run("store writes elsewhere", func(t *testing.T) {
		s := &fileStore{dir: t.TempDir(), encode: gcm(t)}
		got := run1(t, tomtest.EncryptedAtRest(s.put, os.DirFS(t.TempDir())))
		if got.Status != tomtest.StatusFail || !strings.Contains(got.Detail, "wrote nothing") {
			t.Fatalf("got %s %q, want a failure for an unobserved store", got.Status, got.Detail)
		}
	})
	t.Run("put fails", func(t *testing.T) {
		put := func(context.Context, []byte) error { return errors.New("disk full") }
		if got := run1(t, tomtest.EncryptedAtRest(put, os.DirFS(t.TempDir()))); got.Status != tomtest.StatusFail {
			t.Fatalf("status %s, want fail", got.Status)
		}
	})
	t.Run("nothing given", func(t *testing.T) {
		if got := run1(t, tomtest.EncryptedAtRest(nil, nil)); got.Status != tomtest.StatusNotCovered {
			t.Fatalf("status %s, want not covered", got.Status)
		}
	})
}

// grants is a toy enforcer: subject@tenant may do the listed actions in
// its own tenant.
func grants(g map[string][]string) tomtest.Decider {
	return func(ctx context.Context, action, resource string) error {
		a := audit.ActorFrom(ctx)
		if a.Subject == "" || a.Tenant == "" || resource != a.Tenant {
			return errors.New("deny")
		}
		for _, x := range g[a.Subject+"@"+a.Tenant] {
			if x == action {
				return nil
			}
		}
		return errors.New("deny")
	}
}

func TestDenyByDefault(t *testing.T) {
	good := grants(map[string][]string{"alice@acme": {"document.read"}})
	cross := tomtest.Probe{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "document.read", Resource: "other", Why: "cross-tenant"}
	tests := []struct {
		name   string
		decide tomtest.Decider
		probes []tomtest.Probe
		want   tomtest.Status
	}{
		{"least privilege", good, []tomtest.Probe{cross}, tomtest.StatusPass},
		{"allow all", func(context.Context, string, string) error { return nil }, nil, tomtest.StatusFail},
		{"allows anonymous", func(ctx context.Context, a, r string) error {
			if audit.ActorFrom(ctx).Subject == "" {
				return nil
			}
			return errors.New("deny")
		}, nil, tomtest.StatusFail},
		{"allows unknown action", func(ctx context.Context, a, r string) error {
			if strings.HasPrefix(a, "tomtest.") {
				return nil
			}
			return errors.New("deny")
		}, nil, tomtest.StatusFail},
		{"cross-tenant probe allowed", func(ctx context.Context, a, r string) error {
			if audit.ActorFrom(ctx).Subject == "alice" {
				return nil
			}
			return errors.New("deny")
		}, []tomtest.Probe{cross}, tomtest.StatusFail},
		{"no enforcer", nil, nil, tomtest.StatusNotCovered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run1(t, tomtest.DenyByDefault(tt.decide, tt.probes...))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
}

// macLog is a toy tamper-evident log: entries in log.jsonl, an HMAC of the
// whole file in log.mac.
var macKey = []byte("tomtest key")

func writeMacLog(t *testing.T, dir string, lines int) {
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, `{"n":%d,"action":"document.read"}`+"\n", i)
	}
	m := hmac.New(sha256.New, macKey)
	m.Write(b.Bytes())
	os.WriteFile(filepath.Join(dir, "log.jsonl"), b.Bytes(), 0o600)
	os.WriteFile(filepath.Join(dir, "log.mac"), []byte(hex.EncodeToString(m.Sum(nil))), 0o600)
}

func verifyMacLog(_ context.Context, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		return err
	}
	want, err := os.ReadFile(filepath.Join(dir, "log.mac"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, macKey)
	m.Write(b)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), want) {
		return errors.New("mac mismatch")
	}
	return nil
}

func TestAuditIntegrity(t *testing.T) {
	// A verifier that only checks the first line: tampering later in
	// the file goes unnoticed.
	partial := func(ctx context.Context, dir string) error {
		b, err := os.ReadFile(filepath.Join(dir, "log.jsonl"))
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(b, []byte(`{"n":0,`)) {
			return errors.New("bad first line")
		}
		return nil
	}
	tests := []struct {
		name   string
		verify func(context.Context, string) error
		want   tomtest.Status
	}{
		{"hmac", verifyMacLog, tomtest.StatusPass},
		{"accepts anything", func(context.Context, string) error { return nil }, tomtest.StatusFail},
		{"checks only the head", partial, tomtest.StatusFail},
		{"rejects everything", func(context.Context, string) error { return errors.New("nope") }, tomtest.StatusFail},
		{"no verifier", nil, tomtest.StatusNotCovered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMacLog(t, dir, 20)
			got := run1(t, tomtest.AuditIntegrity(dir, tt.verify))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
	t.Run("empty log", func(t *testing.T) {
		got := run1(t, tomtest.AuditIntegrity(t.TempDir(), func(context.Context, string) error { return nil }))
		if got.Status != tomtest.StatusFail {
			t.Fatalf("status %s, want fail for an empty log", got.Status)
		}
	})
}

// agingStore is a toy store with an injected clock and a purge.
type agingStore struct {
	mu      sync.Mutex
	now     time.Time
	created map[string]time.Time
	window  time.Duration // 0: never purges
}

func (s *agingStore) probe(ctx context.Context, age time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created == nil {
		s.created = map[string]time.Time{}
		s.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	key := fmt.Sprint(len(s.created))
	s.created[key] = s.now
	s.now = s.now.Add(age)
	for k, c := range s.created {
		if s.window > 0 && s.now.Sub(c) > s.window {
			delete(s.created, k)
		}
	}
	_, held := s.created[key]
	return held, nil
}

func TestRetentionWindow(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		max    time.Duration
		want   tomtest.Status
	}{
		{"30 days under 30", 30 * 24 * time.Hour, tomtest.MaxRetention000, tomtest.StatusPass},
		{"7 days under 30", 7 * 24 * time.Hour, tomtest.MaxRetention000, tomtest.StatusPass},
		{"90 days under 30", 90 * 24 * time.Hour, tomtest.MaxRetention000, tomtest.StatusFail},
		{"never purges", 0, tomtest.MaxRetention004, tomtest.StatusFail},
		{"loses everything", time.Second, tomtest.MaxRetention004, tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &agingStore{window: tt.window}
			got := run1(t, tomtest.RetentionWindow(tt.max, s.probe))
			if got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
	if c := tomtest.RetentionWindow(tomtest.MaxRetention004, nil); strings.Contains(strings.Join(c.Clauses, ","), "000-7.2") {
		t.Fatalf("a 90-day window must not claim TOM 000's 30 days: %v", c.Clauses)
	}
}

// TestBackupRetention: the same window rules for a backup set's
// snapshots, under a name of its own.
func TestBackupRetention(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		max    time.Duration
		want   tomtest.Status
	}{
		{"30 days under 30", 30 * 24 * time.Hour, tomtest.MaxRetention000, tomtest.StatusPass},
		{"90 days under 30", 90 * 24 * time.Hour, tomtest.MaxRetention000, tomtest.StatusFail},
		{"90 days under 90", 90 * 24 * time.Hour, tomtest.MaxRetention004, tomtest.StatusPass},
		{"never rotates", 0, tomtest.MaxRetention004, tomtest.StatusFail},
		{"loses everything", time.Second, tomtest.MaxRetention004, tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &agingStore{window: tt.window}
			got := run1(t, tomtest.BackupRetention(tt.max, s.probe))
			if got.Status != tt.want || got.Check != "backup-retention" {
				t.Fatalf("%s: status %s (%s), want %s", got.Check, got.Status, got.Detail, tt.want)
			}
		})
	}
	if c := tomtest.BackupRetention(tomtest.MaxRetention004, nil); strings.Join(c.Clauses, ",") != "004-3.1" {
		t.Fatalf("a 90-day backup window claims %v, want only 004-3.1", c.Clauses)
	}
	if got := run1(t, tomtest.BackupRetention(tomtest.MaxRetention000, nil)); got.Status != tomtest.StatusNotCovered {
		t.Fatalf("no probe: %s", got.Status)
	}
}

func TestSection203(t *testing.T) {
	eu := map[string]bool{"mistral-large-eu": true}
	guard := tomtest.Guard203{
		WebSearch: func(context.Context) error { return errors.New("web search off") },
		Model: func(_ context.Context, m string) error {
			return map[bool]error{true: nil, false: errors.New("non-EU")}[eu[m]]
		},
		NonEUModel: "gpt-4o",
		EUModel:    "mistral-large-eu",
	}
	open := guard
	open.WebSearch = func(context.Context) error { return nil }
	anyModel := guard
	anyModel.Model = func(context.Context, string) error { return nil }
	refuseAll := guard
	refuseAll.Model = func(context.Context, string) error { return errors.New("no") }
	tests := []struct {
		name string
		g    tomtest.Guard203
		want tomtest.Status
	}{
		{"guarded", guard, tomtest.StatusPass},
		{"web search open", open, tomtest.StatusFail},
		{"any model", anyModel, tomtest.StatusFail},
		{"refuses every model", refuseAll, tomtest.StatusFail},
		{"nothing", tomtest.Guard203{}, tomtest.StatusNotCovered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run1(t, tomtest.Section203(tt.g)); got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
}

func TestRunPanicAndNil(t *testing.T) {
	res := tomtest.Run(context.Background(),
		tomtest.Check{Name: "nil"},
		tomtest.Check{Name: "panics", Run: func(context.Context) error { panic("boom") }},
		tomtest.Check{Name: "plain error", Run: func(context.Context) error { return errors.New("x") }},
	)
	for _, r := range res {
		if r.Status != tomtest.StatusFail {
			t.Errorf("%s: status %s, want fail", r.Check, r.Status)
		}
	}
}

// fakeTB records Errorf calls.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func TestRequire(t *testing.T) {
	tb := &fakeTB{TB: t}
	tomtest.Require(tb,
		tomtest.Check{Name: "ok", Clauses: []string{"000-3.1"}, Run: func(context.Context) error { return nil }},
		tomtest.Check{Name: "bad", Clauses: []string{"000-3.1"}, Run: func(context.Context) error { return tomtest.ErrFailed }},
		tomtest.Check{Name: "skipped", Run: func(context.Context) error { return tomtest.ErrNotCovered }},
	)
	if len(tb.errs) != 2 || !strings.Contains(tb.errs[0], "bad") || !strings.Contains(tb.errs[0], "000-3.1") || !strings.Contains(tb.errs[1], "skipped") {
		t.Fatalf("Require reported %q", tb.errs)
	}
}

type mfaKey struct{}

func TestMFARequired(t *testing.T) {
	withMFA := func(ctx context.Context) context.Context { return context.WithValue(ctx, mfaKey{}, true) }
	probe := tomtest.Probe{Actor: audit.Actor{Subject: "carol", Tenant: "acme"}, Action: "erase", Resource: "/tenant"}
	tests := []struct {
		name   string
		decide tomtest.Decider
		want   tomtest.Status
	}{
		{"needs mfa", func(ctx context.Context, a, r string) error {
			if ctx.Value(mfaKey{}) == true {
				return nil
			}
			return errors.New("mfa required")
		}, tomtest.StatusPass},
		{"ignores mfa", func(context.Context, string, string) error { return nil }, tomtest.StatusFail},
		{"denies always", func(context.Context, string, string) error { return errors.New("no") }, tomtest.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run1(t, tomtest.MFARequired(tt.decide, withMFA, probe)); got.Status != tt.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Detail, tt.want)
			}
		})
	}
	if got := run1(t, tomtest.MFARequired(nil, withMFA)); got.Status != tomtest.StatusNotCovered {
		t.Fatalf("no probes: %s, want not covered", got.Status)
	}
}
