package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

const examplePolicy = `
p, editor, acme, /data/*, write, allow
p, admin,  acme, /admin/*, manage, allow, mfa
g, alice, editor, acme
g, dave, approver, acme
`

func Example() {
	var log audit.Recorder
	e, err := rbac.New(context.Background(), rbac.Config{Logger: &log, Policy: []byte(examplePolicy)})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	for _, obj := range []string{"/data/report", "/data/../admin/users", "/admin/users"} {
		d, _ := e.Decide(ctx, rbac.Request{Object: obj, Action: "write"})
		fmt.Printf("%s: %v (%s)\n", obj, d.Allowed, d.Reason)
	}
	// Output:
	// /data/report: true (allowed by rule)
	// /data/../admin/users: false (object is not canonical (traversal, empty segment, wildcard or encoding))
	// /admin/users: false (no matching allow (implicit deny))
}

func ExampleEnforcer_Approve() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	e, _ := rbac.New(context.Background(), rbac.Config{
		Logger: &audit.Recorder{},
		Policy: []byte(examplePolicy),
		Clock:  audit.ClockFunc(func() time.Time { return now }),
	})
	defer e.Close()
	alice := rbac.WithMFA(audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"}), now)
	dave := rbac.WithMFA(audit.WithActor(context.Background(), audit.Actor{Subject: "dave", Tenant: "acme"}), now)

	q, _ := e.RequestAccess(alice, "admin", "INC-42: lock a compromised account")
	_, err := e.Approve(alice, q.ID, 0)
	fmt.Println("self-approval:", err)
	g, _ := e.Approve(dave, q.ID, 30*time.Minute)
	fmt.Println("grant for", g.Actor.Subject, "as", g.Role, "until", g.Expires.Format(time.Kitchen), "approved by", g.Note)
	fmt.Println("manage now:", e.Check(alice, "/admin/users", "manage") == nil)
	now = now.Add(30 * time.Minute)
	fmt.Println("manage later:", e.Check(rbac.WithMFA(alice, now), "/admin/users", "manage") == nil)
	// Output:
	// self-approval: rbac: self-approval refused
	// grant for alice as admin until 9:30AM approved by dave
	// manage now: true
	// manage later: false
}

func ExampleLint() {
	findings, _ := rbac.Lint([]byte(`p, admin, acme, /*, manage, allow
g, bob, admin, acme
`))
	for _, f := range findings {
		fmt.Println(f)
	}
	// Output:
	// line 1: wildcard: "admin" may manage every object in "acme"
	// line 1: privileged-no-mfa: privileged permission "manage" for "admin" lacks the mfa marker
	// line 2: standing-privileged: "bob" holds privileged role "admin" in "acme" permanently; use a time-bound four-eyes grant
}

func ExampleEnforcer_PruneExpired() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var log audit.Recorder
	e, _ := rbac.New(context.Background(), rbac.Config{
		Logger: &log,
		Policy: []byte(examplePolicy),
		Clock:  audit.ClockFunc(func() time.Time { return now }),
	})
	defer e.Close()
	alice := rbac.WithMFA(audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"}), now)
	dave := rbac.WithMFA(audit.WithActor(context.Background(), audit.Actor{Subject: "dave", Tenant: "acme"}), now)
	q, _ := e.RequestAccess(alice, "admin", "INC-42")
	e.Approve(dave, q.ID, 30*time.Minute)
	e.RequestAccess(alice, "admin", "INC-43, never approved")

	// A day later, from a ticker in one instance of the service:
	now = now.Add(24 * time.Hour)
	rep, err := e.PruneExpired(context.Background())
	fmt.Printf("%+v %v\n", rep, err)
	grants, _ := e.Grants("acme")
	fmt.Println("grants left:", len(grants))
	for _, ev := range log.Events() {
		if ev.Action == "rbac.grant.expire" || ev.Action == "rbac.access.expire" || ev.Action == "rbac.policy.prune" {
			fmt.Println(ev.Action)
		}
	}
	// Output:
	// {Grants:1 Requests:1 BreakGlassKept:0} <nil>
	// grants left: 0
	// rbac.grant.expire
	// rbac.access.expire
	// rbac.policy.prune
}

func ExampleEnforcer_Check() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	e, _ := rbac.New(context.Background(), rbac.Config{
		Logger: &audit.Recorder{},
		Policy: []byte(examplePolicy + "g, root, admin, acme\n"),
		Clock:  audit.ClockFunc(func() time.Time { return now }),
	})
	defer e.Close()
	root := audit.WithActor(context.Background(), audit.Actor{Subject: "root", Tenant: "acme"})
	err := e.Check(root, "/admin/users", "manage")
	fmt.Println("step-up needed:", errors.Is(err, rbac.ErrMFARequired))
	fmt.Println("with mfa:", e.Check(rbac.WithMFA(root, now), "/admin/users", "manage"))
	err = e.Check(root, "/admin/..;/data/x", "write")
	fmt.Println("path parameter:", errors.Is(err, rbac.ErrDenied), errors.Is(err, rbac.ErrObject))
	// Output:
	// step-up needed: true
	// with mfa: <nil>
	// path parameter: true true
}

func ExampleEnforcer_AssignRole() {
	e, _ := rbac.New(context.Background(), rbac.Config{Logger: &audit.Recorder{}, Policy: []byte(examplePolicy)})
	defer e.Close()
	admin := audit.WithActor(context.Background(), audit.Actor{Subject: "root", Tenant: "acme"})
	bob := audit.WithActor(context.Background(), audit.Actor{Subject: "bob", Tenant: "acme"})
	fmt.Println("before:", e.Check(bob, "/data/report", "write") == nil)
	_ = e.AssignRole(admin, rbac.Assignment{User: "bob", Role: "editor", Tenant: "acme"})
	fmt.Println("after:", e.Check(bob, "/data/report", "write") == nil)
	// A user named like a role is not that role.
	editor := audit.WithActor(context.Background(), audit.Actor{Subject: "editor", Tenant: "acme"})
	fmt.Println("user named editor:", e.Check(editor, "/data/report", "write") == nil)
	// Output:
	// before: false
	// after: true
	// user named editor: false
}
