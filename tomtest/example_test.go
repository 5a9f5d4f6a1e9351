package tomtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tomtest"
)

// A downstream service checks its enforcer. In a test, pass the checks to
// tomtest.Require(t, ...) instead of tomtest.Run.
func ExampleDenyByDefault() {
	// An enforcer that forgot the tenant: it allows alice everywhere.
	leaky := func(ctx context.Context, action, resource string) error {
		if audit.ActorFrom(ctx).Subject == "alice" {
			return nil
		}
		return errors.New("denied")
	}
	cross := tomtest.Probe{
		Actor:    audit.Actor{Subject: "alice", Tenant: "other-tenant"},
		Action:   "read",
		Resource: "/documents/1",
		Why:      "alice holds no role in other-tenant",
	}
	for _, r := range tomtest.Run(context.Background(), tomtest.DenyByDefault(leaky, cross)) {
		fmt.Println(r.Check, r.Clauses, r.Status)
	}
	// Output: deny-by-default [000-0.2 000-2.1 000-5.3 004-1.2 004-1.3] fail
}
