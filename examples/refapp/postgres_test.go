package main_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/internal/testpg"
)

// TestPostgres runs the service with -postgres: documents, the audit log
// and the policy live in PostgreSQL (a fresh schema). A document survives a
// restart, and `tomkit audit verify` checks the database log.
func TestPostgres(t *testing.T) {
	dsn := testpg.Schema(t)
	r := startRefapp(t, "", "-traces", "off", "-postgres", dsn)
	// The banner says where things live in this mode.
	if out := r.Stdout(); !strings.Contains(out, "audit/pglog") || !strings.Contains(out, "documents in PostgreSQL") || strings.Contains(out, "tamper-evident file log") {
		t.Errorf("banner in -postgres mode:\n%s", out)
	}
	p, err := r.do(r.client(), "POST", "/v1/tenants/acme/documents", "alice", "in postgres")
	if err != nil || p.Status != 201 {
		t.Fatalf("create: %v %d %s", err, p.Status, p.Body)
	}
	q, err := r.do(r.client(), "GET", "/v1/tenants/kanzlei-mueller/documents/"+p.field("id"), "alice", nil)
	if err != nil || q.Status != 403 {
		t.Fatalf("cross-tenant: %v %d", err, q.Status)
	}
	r.stop()
	r2 := startRefapp(t, r.Data, "-traces", "off", "-postgres", dsn)
	q, err = r2.do(r2.client(), "GET", "/v1/tenants/acme/documents/"+p.field("id"), "alice", nil)
	if err != nil || q.Status != 200 || string(q.Body) != "in postgres" {
		t.Fatalf("after restart: %v %d %q", err, q.Status, q.Body)
	}
	r2.stop()
	code, out := tomkit(t, "audit", "verify", "--key", r.Data+"/audit.pub", dsn)
	if code != 0 || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("audit verify of the PostgreSQL log: %d %s", code, out)
	}
	// Nothing but the keys and certificates is on disk: no documents, no
	// audit segments.
	if segs, _ := filepath.Glob(r.Data + "/audit/seg-*"); len(segs) != 0 {
		t.Fatalf("audit segments on disk in postgres mode: %v", segs)
	}
}
