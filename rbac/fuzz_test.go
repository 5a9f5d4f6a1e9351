package rbac_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

// FuzzDecide feeds arbitrary subjects, tenants, objects and actions to
// tomkit and to plain Casbin on the same policy: tomkit must never allow
// what Casbin denies, and must never panic.
func FuzzDecide(f *testing.F) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	e, err := rbac.New(context.Background(), rbac.Config{Logger: nopLogger{}, Policy: []byte(testPolicy), Clock: audit.ClockFunc(func() time.Time { return now })})
	if err != nil {
		f.Fatal(err)
	}
	p, _ := policyRows(testPolicy)
	sr, sl := separated(p.rules, p.links)
	ce := plainCasbin(f, sr, sl)
	f.Add("alice", "acme", "/data/x", "write", true)
	f.Add("bob", "acme", "/data/../admin/x", "read", false)
	f.Add("carol", "globex", "/admin/users", "manage", true)
	f.Add("Alice", "acme", "/data/x", "write", false)
	f.Add("ann", "acme", "/audit/../data/x", "write", false)
	f.Add("admin", "globex", "/admin/users", "manage", true)
	f.Add("alice", "acme", "/data/..;/admin/x", "write", false)
	f.Add("alice", "acme", "/data/.;/x", "write", false)
	f.Add("alice", "acme", "/data/x;jsessionid=1", "write", false)
	f.Add("alice", "acme", "/data/%2e%2e/admin", "write", false)
	f.Add("alice", "acme", `/data/x\..\y`, "write", false)
	f.Add("editor", "acme", "/data/x", "write", false)
	f.Fuzz(func(t *testing.T, sub, dom, obj, act string, fresh bool) {
		var at time.Time
		mfa := ""
		if fresh {
			at, mfa = now.Add(-time.Minute), "fresh"
		}
		d, err := e.Decide(context.Background(), rbac.Request{Actor: audit.Actor{Subject: sub, Tenant: dom}, Object: obj, Action: act, MFAVerifiedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			return
		}
		// An allowed object has no byte a server or proxy would read as a
		// path boundary or decode, and no dot or empty segment.
		if strings.ContainsAny(obj, ";?%\\\x00") || strings.Contains(obj, "//") || obj != "/" && strings.HasSuffix(obj, "/") {
			t.Fatalf("tomkit allows the non-canonical object %q", obj)
		}
		for _, seg := range strings.Split(obj, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("tomkit allows %q with a dot segment", obj)
			}
		}
		want, err := ce.Enforce(sub, dom, obj, act, mfa)
		if err != nil || !want {
			t.Fatalf("tomkit allows %q %q %q %q (mfa %v) by %q; casbin: %v, %v", sub, dom, obj, act, fresh, d.Rule, want, err)
		}
	})
}
