// Package httpguard is the HTTP front door of a tomkit service: one
// [http.Handler] that authenticates, rate-limits, binds tenant and § 203
// mode, authorizes with rbac, maps errors to JSON, and writes exactly one
// durable access-log event per request before any byte of the response
// leaves.
//
// It enforces the TOM clauses "access logging" and "logging of relevant
// actions" (every request, including 4xx, redirects, 404, 405, 413 and
// panics), "role-based access control", "MFA for administrative access",
// tenant separation, and "alerting on authentication failures and
// rate-limit violations".
//
// [New] builds a [Guard] from a [Config] (an [Authenticator], an
// rbac.Enforcer, an audit.Logger); [Guard.Handle] registers a [HandlerFunc]
// under a [Route] naming its rbac action and object. Handlers return errors,
// which [Mapping] and [Error] turn into JSON with stable codes, and add to
// their request's event through [AuditEvent]. Authentication failures and
// rate-limit violations are OTel counters and [Alert]s.
//
// The guide, docs/HTTPGUARD.md in the repository, has the sections "The
// chain", "Handlers and errors", "Threat model".
package httpguard
