package section203

import (
	"context"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// Scope names what a tenant-owned resource is, for [Guard.Access].
type Scope string

// The scopes.
const (
	// KnowledgeBase is a tenant's knowledge base: documents, embeddings,
	// retrieval indexes.
	KnowledgeBase Scope = "knowledge_base"
	// Storage is a tenant's stored objects and records.
	Storage Scope = "storage"
)

// Access decides whether the actor in ctx may access a resource in scope
// that belongs to owner, a tenant. Access across tenants is refused in
// every mode, and so is access without a tenant or to a resource without
// an owner. The resource name is recorded in the audit event; it must not
// contain content.
func (g *Guard) Access(ctx context.Context, scope Scope, owner, resource string) (Decision, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.access", Mode: mode}
	switch {
	case actor.Tenant == "":
		d.Reason = "no tenant"
	case owner == "":
		d.Reason = "resource has no owner"
	case scope != KnowledgeBase && scope != Storage:
		d.Reason = "unknown scope"
	case owner != actor.Tenant:
		d.Reason = "resource belongs to another tenant"
	default:
		d.Allowed, d.Reason = true, "own tenant"
	}
	return g.decide(ctx, actor, d, string(scope)+"/"+owner+"/"+resource, ErrCrossTenant, audit.String("owner", owner))
}

// ContentRetention returns how long content (prompts, completions,
// uploaded documents) of the tenant in ctx may be kept, given the
// retention the caller asks for. In § 203 mode it is always zero: content
// is processed and dropped, and excluded from backups. In normal operation
// it is requested, never more; a negative request counts as zero.
//
// The decision is always allowed (a shorter retention is never refused),
// except without a tenant, which is refused with [ErrNoTenant].
func (g *Guard) ContentRetention(ctx context.Context, requested time.Duration) (time.Duration, Decision, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.retention", Mode: mode, Allowed: true}
	ttl := max(requested, 0)
	switch {
	case actor.Tenant == "":
		d.Allowed, d.Reason, ttl = false, "no tenant", 0
	case mode == On:
		d.Reason, ttl = "zero data retention in § 203 mode", 0
	default:
		d.Reason = "requested retention"
	}
	d, err := g.decide(ctx, actor, d, "content", ErrNoTenant, audit.String("ttl", ttl.String()))
	if err != nil {
		return 0, d, err
	}
	return ttl, d, nil
}

// Training decides whether customer content of the tenant in ctx may be
// used to train or fine-tune a model. It is refused in every mode: the TOM
// promises "no use of customer content for training" without exception.
// The decision is audited all the same, so that attempts show up.
func (g *Guard) Training(ctx context.Context, purpose string) (Decision, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.training", Mode: mode, Reason: "customer content is never used for training"}
	return g.decide(ctx, actor, d, "training/"+purpose, ErrTraining)
}
