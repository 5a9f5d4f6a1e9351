package retention

import (
	"context"
	"errors"
	"fmt"

	"github.com/tomkit/tomkit/audit"
)

// Errors about tenants and operators.
var (
	// ErrNoTenant reports a call that touches tenant data through a ctx
	// without a tenant: no [audit.Actor], or one with a subject but no
	// tenant. Nothing reaches the backend.
	ErrNoTenant = errors.New("retention: no tenant")
	// ErrInvalidTenant reports a tenant name that [CheckTenant] refuses,
	// or one reserved for tomkit's own partitions.
	ErrInvalidTenant = errors.New("retention: invalid tenant name")
	// ErrNotOperator reports a cross-tenant call (purge, backup,
	// migration) without the operator path: the ctx must come from
	// [WithOperator] and carry an [audit.Actor] with a subject and no
	// tenant.
	ErrNotOperator = errors.New("retention: cross-tenant operation needs an operator")
	// ErrUnpartitioned reports a store that still holds objects written
	// before tenant partitioning. Every tenant call fails with it until
	// an operator runs [Store.Migrate] (the command
	// `tomkit retention migrate`).
	ErrUnpartitioned = errors.New("retention: store holds objects from before tenant partitioning; run `tomkit retention migrate` (Store.Migrate) to move them to their tenants")
)

// MaxTenantLen is the longest tenant name, in bytes.
const MaxTenantLen = 63

// backupTenant is the partition of a backup target that keeps the
// snapshots. Its leading '_' makes it unreachable from an actor.
const backupTenant = "_backups"

// CheckTenant returns [ErrInvalidTenant] unless tenant can name a
// partition: 1 to [MaxTenantLen] bytes of lowercase ASCII letters,
// digits, '-' and '_', not starting with '-'. There are no separators,
// dots, upper case or other characters a file system or an object store
// might interpret or fold, so no name can reach outside its partition or
// share one with another name. Backends call it in [Backend.Partition].
//
// Names starting with '_' are reserved for tomkit's own partitions (the
// snapshots of [Backups]); [Store] refuses them for an actor.
func CheckTenant(tenant string) error {
	if len(tenant) == 0 || len(tenant) > MaxTenantLen || tenant[0] == '-' {
		return fmt.Errorf("%w: %q", ErrInvalidTenant, tenant)
	}
	for i := 0; i < len(tenant); i++ {
		c := tenant[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("%w: %q", ErrInvalidTenant, tenant)
		}
	}
	return nil
}

func checkActorTenant(tenant string) error {
	if tenant == "" {
		return fmt.Errorf("%w in context", ErrNoTenant)
	}
	if tenant[0] == '_' {
		return fmt.Errorf("%w: %q is reserved", ErrInvalidTenant, tenant)
	}
	return CheckTenant(tenant)
}

type operatorKey struct{}

// WithOperator returns a copy of ctx that asks for the operator path for
// the reason given: [Store.Purge], [Store.Migrate] and the [Backups]
// methods work across every tenant, and accept only such a ctx whose
// [audit.Actor] has a subject (the operator, named in every audit event)
// and no tenant. An ordinary tenant actor can therefore never take the
// operator path, even through a ctx marked by mistake; and the operator
// cannot read or write a tenant's objects through the tenant methods,
// which refuse an actor without a tenant ([ErrNoTenant]).
func WithOperator(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, operatorKey{}, reason)
}

// operator returns the operator's actor and reason, or [ErrNotOperator].
func operator(ctx context.Context) (audit.Actor, string, error) {
	reason, _ := ctx.Value(operatorKey{}).(string)
	a := audit.ActorFrom(ctx)
	switch {
	case reason == "":
		return a, "", fmt.Errorf("%w: context not marked with WithOperator", ErrNotOperator)
	case a.Subject == "":
		return a, "", fmt.Errorf("%w: no subject in context", ErrNotOperator)
	case a.Tenant != "":
		return a, "", fmt.Errorf("%w: actor acts for tenant %q", ErrNotOperator, a.Tenant)
	}
	return a, reason, nil
}

// operatorAttrs are the attributes that mark an audit event of the
// operator path.
func operatorAttrs(a audit.Actor, reason string) []audit.Attr {
	return []audit.Attr{audit.String("operator", a.Subject), audit.String("cross_tenant", "true"),
		audit.String("operator_reason", reason)}
}

// qualified is the name of a tenant's key in cross-tenant evidence
// (purge digests, snapshots): tenant, '/', key. A tenant name holds no
// '/', so the first one separates. Objects of the unpartitioned key
// space keep their bare key.
func qualified(tenant, key string) string {
	if tenant == "" {
		return key
	}
	return tenant + "/" + key
}
