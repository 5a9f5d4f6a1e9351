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
// # Threat model
//
// The caller's identity and tenant are authenticated before rbac sees
// them and arrive as an [audit.Actor], in the ctx (audit.WithActor) or in
// a [Request]. rbac defends against: a principal using a role of one
// tenant in another; a user named like a role (users and roles live
// apart); a request object that walks out of a granted path
// ("/data/../secret", "/data//x", "%2e%2e", "/data/..;/secret"); a policy
// that grants more than it appears to (wildcards, case variants such as
// "Admin" beside "admin", unbounded role chains); administrative access with a stolen
// password only (MFA); one insider granting themselves a privileged role
// (four-eyes, no self-approval); privileged access that outlives its need
// (grants expire, checked at every decision against the clock, even after
// a reload); stale decisions after a revoke (there is no decision cache to
// go stale: every change updates the index before it returns, and other
// instances apply it when notified); and silent use (every deny, every
// privileged allow and every change is audited, and an access that cannot
// be logged is refused). It does not defend against a compromised store
// or host, or a forged Actor.
//
// # Model and policy format
//
// The model is [Model]: RBAC with domains, where the domain is the tenant
// and the matcher requires the tenant of the rule to equal the request's,
// with a deny-override effect (some allow and no deny). A policy is
// Casbin CSV text, one rule per line:
//
//	# role,   tenant, object,     action, effect[, mfa]
//	p, editor,  acme, /data/*,    write,  allow
//	p, admin,   acme, /admin/*,   manage, allow, mfa
//	p, auditor, acme, /audit/*,   write,  deny
//	# user, role, tenant
//	g, alice, editor, acme
//
// The subject of a p line is always a role, and users get permissions
// only through roles: g lines and four-eyes or break-glass grants. Users
// and roles live apart: a request's subject is always a user, so a user
// named "admin" gets none of role admin's rules. A g line whose first
// name is a role of the tenant (the subject of a p line or the role of a
// g line) is role inheritance; any other gives a user a role.
//
// An "mfa" rule is a privileged permission: it allows only a principal
// whose MFA was verified within Config.MFAMaxAge (12 hours by default);
// a missing MFA time means deny. A deny rule applies whatever the MFA.
//
// # Least privilege by construction
//
//   - No request passes without a matching allow, and any matching deny
//     wins.
//   - Subjects, roles, tenants and actions are printable ASCII without
//     spaces, commas, quotes, '#', '\' or '*': a wildcard in any of them is
//     refused at load ([ErrWildcard]), so is a name that differs from
//     another only in case ([ErrCase]): "Admin" and "admin" cannot both
//     exist, and requests are compared exactly, so "Admin" never matches
//     "admin".
//   - Objects are plain names or absolute, clean paths. A rule's object
//     may end in "/*", anchored: "/data/*" matches "/data/x" and
//     "/data/x/y", never "/data" or "/database". No other pattern (no
//     regexMatch, no "*" in the middle) exists. A request object that is
//     not canonical — ".", ".." or empty segments, a trailing slash, or a
//     byte that a server or proxy treats as a path boundary or decodes:
//     ';' (path parameters: servlet containers turn "/docs/..;/admin"
//     into "/admin"), '?', '%', '\', '*', control bytes — is denied
//     before the policy is consulted, and [Enforcer.Check] returns an
//     error wrapping [ErrObject]. Rules with such objects do not load.
//   - The role hierarchy is bounded (Config.MaxRoleDepth, 4 by default);
//     cycles are refused.
//   - Casbin is never exposed, so EnableEnforce(false), custom matchers
//     and function maps are unreachable.
//   - Empty subjects or tenants, unknown actions (no rule of the tenant
//     mentions them) and a tenant mismatch between ctx and request deny.
//
// [BuiltinRoles] returns the minimal built-in roles viewer, editor, admin
// and auditor (read-only on /audit/*). [Lint] (and `tomkit rbac lint`)
// flags wildcard grants, privileged permissions without mfa, cross-tenant
// grants, roles nobody holds and standing grants of privileged roles.
//
// # Where tomkit is stricter than Casbin
//
// For a policy that loads, a decision equals plain casbin.Enforcer's on
// [Model] (with r.mfa "fresh" when the MFA is fresh) for the same policy
// with the role names kept apart from user names (each role name written
// with a prefix such as "role:"), except that tomkit denies where Casbin
// may allow in these documented cases:
//
//  1. a non-canonical request object (Casbin's keyMatch lets
//     "/data/../secret" match "/data/*");
//  2. a request subject, tenant or action that is empty or not a valid
//     name;
//  3. an MFA time in the future (more than a minute of clock skew);
//  4. a ctx actor that differs from the request's actor.
//
// And the loader refuses policies Casbin would accept: wildcards, case
// variants, cycles, chains deeper than MaxRoleDepth, patterns other than a
// final "/*", non-canonical objects.
//
// # Four-eyes and break-glass
//
// A principal asks for a privileged role (one with an mfa rule) in its
// tenant with [Enforcer.RequestAccess] and a reason. Another principal
// holding the approver role in that tenant, with fresh MFA, approves it
// with [Enforcer.Approve]; self-approval is refused. An approval deletes
// the request and inserts the grant in one store transaction, and fails
// with [ErrNoSuchRequest] if the request was already gone: concurrent
// approvals of one request, on one instance or on several sharing a
// store, yield at most one grant. The approval creates
// a [Grant] for Config.GrantTTL (1 hour, at most Config.MaxGrantTTL);
// requests expire after Config.RequestTTL. Grants are not Casbin temporal
// roles (those fail open after LoadPolicy): they are stored beside the
// policy and their expiry is checked at every decision with Config.Now.
//
// [Enforcer.BreakGlass] elevates at once, without approval, a principal
// holding the breakglass role, with fresh MFA and a justification, for
// Config.BreakGlassTTL (15 minutes, at most an hour). It writes a critical
// audit event and calls Config.Alert; the grant stays listed by
// [Enforcer.BreakGlassReview] until [Enforcer.CloseReview].
//
// Expired grants and requests deny at once but stay in the store until
// [Enforcer.PruneExpired] removes them. Call it periodically, for example
// from a ticker in one instance of the service (hourly is plenty; it is
// idempotent and safe beside decisions), so that the store and policy
// dumps do not fill with dead rows. Each removal is audited before it
// happens ("rbac.grant.expire", "rbac.access.expire", then one
// "rbac.policy.prune" with the counts), and a failed audit write stops
// the run, leaving the rest in place. Expired break-glass grants are
// kept: they are the evidence for the post-incident review, and only
// CloseReview removes them.
//
// # Decision log
//
// Every deny and every privileged allow is written to the audit Logger as
// action "rbac.decide", with the deciding rule in the attribute "rule"
// (the line Casbin's EnforceEx would explain), the reason, and the grant
// if one supplied the role. Non-privileged allows are not logged.
//
// # Storage and several instances
//
// By default the policy is the text in Config.Policy, typically embedded
// with go:embed, held in memory. With Config.Store (rbac/pgstore for
// PostgreSQL; importing rbac alone links no database driver), it is
// persisted. A change is written to the store first, in one transaction
// that deletes only exact rows, and applied in memory only after it
// committed; the audit event says what the store did ("removed 1 row",
// "no such rule"). Every change is numbered, logged and announced to the
// other instances, which apply the change itself from the log, and reload
// the whole policy only when they find a gap (after missing more changes
// than the log keeps). There is no decision cache: each change
// re-indexes its tenant under a lock and swaps the new index in
// atomically, so a revoke or an added deny takes effect on the instance
// that made it before the call returns (Casbin's CachedEnforcer kept
// answering allow after RemoveGroupingPolicy and after an added deny), and
// on the others as soon as the announcement arrives. A stored policy that
// fails validation on reload makes every decision deny until it is fixed.
//
// # Performance
//
// A decision does not scan the rules: per tenant, the index hashes
// (subject or role, object, action) and looks up the request object's
// path prefixes for "/*" rules; role closures are precomputed. With
// 200,000 rules a decision takes a few microseconds, against hundreds of
// milliseconds for casbin.Enforcer, whose matcher scans every rule. A
// change is validated against, and re-indexes, only its own tenant (the
// case-variant check uses counts kept for the whole policy), so its cost
// grows with the size of that tenant, not of the policy: about a
// millisecond of CPU for a tenant of 2,000 rules, whether the policy
// holds 2,000 or 200,000. A reload rebuilds the whole index.
package rbac
