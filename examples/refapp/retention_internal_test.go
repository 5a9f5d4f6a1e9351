package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// TestRetentionWindow runs the service in-process on an injected clock: a
// document is readable for 30 days and gone after, and the refused read is
// audited. (The subprocess tests cannot move the clock.)
func TestRetentionWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	dir := filepath.Join(t.TempDir(), "data")
	d, _, err := openDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-data", dir, "-traces", "off"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.now = clock
	a, err := newApp(context.Background(), o, d, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.routes()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = a.tls
	srv.StartTLS()
	defer srv.Close()
	toks, err := d.demoTokens()
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	do := func(method, path, body string) (int, string, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+toks["alice"])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")
	}
	status, body, _ := do("POST", "/v1/tenants/acme/documents", "kept for 30 days")
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:][:32]
	tests := []struct {
		advance time.Duration
		want    int
	}{
		{0, 200},
		{29 * 24 * time.Hour, 200},
		{24*time.Hour + time.Minute, 404}, // 30 days and a minute
	}
	var lastReq string
	for _, tt := range tests {
		advance(tt.advance)
		status, _, lastReq = do("GET", "/v1/tenants/acme/documents/"+id, "")
		if status != tt.want {
			t.Fatalf("after %v more: status %d, want %d", tt.advance, status, tt.want)
		}
	}
	a.close()

	// The refused read is in the audit log, next to retention's own
	// record of the expired object.
	key, _ := d.auditVerifier()
	rep, err := audit.Verify(context.Background(), d.path(dirAudit), key)
	if err != nil {
		t.Fatal(err)
	}
	var read, expired bool
	for i := rep.Size - 1; i >= 0 && i >= rep.Size-10; i-- {
		p, err := audit.Prove(context.Background(), d.path(dirAudit), i)
		if err != nil {
			t.Fatal(err)
		}
		e, err := audit.Unmarshal([]byte(p.Record))
		if err != nil {
			t.Fatal(err)
		}
		if e.RequestID == lastReq && e.Action == "refapp.document.read" && e.Outcome == audit.OutcomeDeny {
			read = true
		}
		if e.RequestID == lastReq && strings.HasPrefix(e.Action, "retention.") {
			expired = true
		}
	}
	if !read || !expired {
		t.Fatalf("audit: refused read %v, retention record %v", read, expired)
	}
}
