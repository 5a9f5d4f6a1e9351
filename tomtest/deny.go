package tomtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/tomkit/tomkit/audit"
)

// Probe is one request an enforcer must deny: the actor (carried in ctx
// with [audit.WithActor]), the action and the resource.
type Probe struct {
	Actor    audit.Actor
	Action   string
	Resource string
	// Why says what makes the request one nobody was granted, for the
	// report.
	Why string
}

// Decider is an enforcer's decision function: nil means allow. The
// caller's identity is in ctx ([audit.ActorFrom]).
type Decider func(ctx context.Context, action, resource string) error

// DenyByDefault checks that decide refuses requests nobody was granted.
// Besides the given probes (use them for cross-tenant access and for
// actions a role must not have), it always asks for: no actor at all; a
// subject without a tenant; a tenant without a subject; an unknown subject
// and an unknown action, both random. It covers TOM 000 §2 (least
// privilege), 000 §5 (deny by default) and 004 §1 (need-to-know).
func DenyByDefault(decide Decider, probes ...Probe) Check {
	return Check{
		Name:        "deny-by-default",
		Clauses:     []string{"000-0.2", "000-2.1", "000-5.3", "004-1.2", "004-1.3"},
		Description: "the enforcer refuses requests nobody was granted (no actor, no tenant, unknown subject, unknown action, and the given probes)",
		Run: func(ctx context.Context) error {
			if decide == nil {
				return fmt.Errorf("%w: no enforcer given", ErrNotCovered)
			}
			r := randomName()
			all := append([]Probe{
				{Action: "document.read", Resource: "/tomtest/" + r, Why: "no actor"},
				{Actor: audit.Actor{Subject: "tomtest-" + r}, Action: "document.read", Resource: "/tomtest/" + r, Why: "subject without tenant"},
				{Actor: audit.Actor{Tenant: "tomtest-" + r}, Action: "document.read", Resource: "/tomtest/" + r, Why: "tenant without subject"},
				{Actor: audit.Actor{Subject: "tomtest-unknown-" + r, Tenant: "tomtest-" + r}, Action: "document.read", Resource: "/tomtest/" + r, Why: "unknown subject"},
				{Actor: audit.Actor{Subject: "tomtest-unknown-" + r, Tenant: "tomtest-" + r}, Action: "tomtest.unknown-" + r, Resource: "/tomtest/" + r, Why: "unknown action"},
			}, probes...)
			for _, p := range all {
				ctx := ctx
				if p.Actor != (audit.Actor{}) {
					ctx = audit.WithActor(ctx, p.Actor)
				}
				if err := decide(ctx, p.Action, p.Resource); err == nil {
					return failf("allowed %s on %q for %+v (%s)", p.Action, p.Resource, p.Actor, p.Why)
				}
			}
			return nil
		},
	}
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MFARequired checks that privileged permissions need MFA: each probe names
// a request the actor is granted only with MFA, so decide must deny it as
// it is and allow it once withMFA has marked ctx as MFA-verified (the
// allow proves the denial was for want of MFA). It covers TOM 000 §2 and
// 004 §1 (MFA for administrative access, restriction of administrative
// access).
func MFARequired(decide Decider, withMFA func(context.Context) context.Context, probes ...Probe) Check {
	return Check{
		Name:        "mfa-for-privileged",
		Clauses:     []string{"000-2.2", "004-1.2", "004-1.3"},
		Description: "privileged permissions are refused without MFA and granted with it",
		Run: func(ctx context.Context) error {
			if decide == nil || withMFA == nil || len(probes) == 0 {
				return fmt.Errorf("%w: no enforcer or no privileged permission to probe", ErrNotCovered)
			}
			for _, p := range probes {
				actx := audit.WithActor(ctx, p.Actor)
				if err := decide(actx, p.Action, p.Resource); err == nil {
					return failf("allowed privileged %s on %q for %+v without MFA", p.Action, p.Resource, p.Actor)
				}
				if err := decide(withMFA(actx), p.Action, p.Resource); err != nil {
					return failf("refused %s on %q for %+v even with MFA (%v): the probe is not a granted privileged permission", p.Action, p.Resource, p.Actor, err)
				}
			}
			return nil
		},
	}
}
