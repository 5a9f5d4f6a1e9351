// Package rbac enforces role-based access control on least privilege, with
// tenants, MFA for privileged permissions, four-eyes approval of
// privileged roles, break-glass elevation and a decision log. Casbin
// (github.com/casbin/casbin/v2) is the engine; tomkit adds the fail-closed
// defaults and the glue.
//
// It enforces the TOM clauses "role-based access control on least
// privilege and need-to-know", "MFA for administrative access", "access
// logging", and, for production access, "four-eyes principle" and
// "break-glass mechanisms with logging".
//
// [New] loads a policy (Casbin CSV over [Model]: RBAC with domains, the
// domain being the tenant, deny overrides allow) and refuses one that
// grants more than it appears to; [Lint] explains why. The caller's
// identity and tenant arrive as an [audit.Actor] in the ctx, its MFA time
// through [WithMFA]. [Enforcer.Check] and [Enforcer.Decide] answer a
// request, [Enforcer.Middleware] guards HTTP handlers. A rule marked "mfa"
// is privileged: it allows only a principal whose MFA is fresh
// ([Config.MFAMaxAge]). [Enforcer.RequestAccess] and [Enforcer.Approve]
// grant a privileged role with a second person's approval,
// [Enforcer.BreakGlass] elevates on-call staff with a critical audit event;
// both expire. Every deny, every privileged allow and every change is
// audited, and an access that cannot be logged is refused. A [Store]
// (rbac/pgstore for PostgreSQL) shares the policy between instances.
//
// The guide, docs/RBAC.md in the repository, has the threat model, the
// policy format, where tomkit is stricter than Casbin, four-eyes and
// break-glass, the decision log, storage and performance.
package rbac
