// Package section203 enforces "§ 203 mode" inside the application: the
// mode for clients bound by professional secrecy under § 203 StGB
// (lawyers, doctors, tax advisers), whose IT providers and their helpers
// are bound too since the 2017 reform (§ 203 Abs. 3 and 4 StGB).
//
// It keeps these promises of the EZTO TOM document (004, §1 and §6): in
// § 203 mode, a tenant separated from normal operation with its own
// isolated knowledge base; exclusively EU or EU-controlled AI models; web
// search deactivated; zero data retention; no use of customer content for
// training.
//
// # Threat model
//
// The adversary is the application's own code paths and configuration:
// a tool call that reaches a search engine, a model request routed to a
// global endpoint, a URL that looks allowlisted but is not
// ("eu.example.com@evil.example", "EU.EXAMPLE.COM.", a Cyrillic look-alike,
// "http://2130706433/"), a redirect or an HTTPS_PROXY that carries a
// request elsewhere, a DNS answer that changes between check and connect,
// a query for another tenant's documents, and a log or trace that
// swallows a client's secret. Infrastructure controls (Assured Workloads,
// EU Data Boundary, region-deny SCPs, egress gateways) remain useful, but
// several of them fail open for documented exceptions; this package fails
// closed and logs every decision. It does not protect against a
// compromised process, which can simply not call it.
//
// # Mode
//
// A tenant's [Mode] comes from configuration ([ModesConfig]) and is carried
// in the request context by [Modes.Bind], read by [ModeFrom]. The tenant
// is always the one in [audit.ActorFrom]. Unknown means on: a tenant that
// is not configured, a ctx without a binding, or a binding for another
// tenant all resolve to [On]. Once on, the mode is locked: a configuration
// reload cannot turn it off ([ErrModeLocked]); only [Modes.TurnOff] can, which
// needs an authorizer, a reason and an authenticated actor, and is audited
// with severity critical.
//
// # Guards
//
// A [Guard] takes the decisions: [Guard.Model] (provider and model
// registry: jurisdiction, EU endpoints, zero-data-retention attestation,
// § 203 commitment), [Guard.Tool] (default-deny tool list; web search, web
// fetch and connectors off in § 203 mode), [Guard.Transport] (egress
// allowlist as an [http.RoundTripper]), [Guard.Access] (no access across
// tenants), [Guard.ContentRetention] (zero in § 203 mode) and
// [Guard.Training] (always refused). [Guard.ModelClient] is the model
// call in one step: the registry check, then an [net/http.Client] that
// reaches only that model's endpoint. The registered endpoints are the
// egress allowlist, so a model API is named once. Every decision has an id, is written
// to the audit Logger, and is added to the current span when it records.
// A decision that cannot be audited is a refusal.
//
//	ctx = audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "kanzlei-meyer"})
//	ctx = modes.Bind(ctx)
//	if _, err := guard.Tool(ctx, "web_search"); errors.Is(err, section203.ErrTool) {
//		// refused in § 203 mode, and recorded
//	}
//
// # Storing tenant data
//
// A retention.Store over retention.NewEncrypted keeps every tenant in its
// own partition under its own keys. With retention.Config.ZDRFor set to a
// [ZeroRetention]'s ZDR method, the content of each tenant in § 203 mode
// follows that tenant's rule: refused with [ErrZeroRetention], or kept in
// memory only (retention.ZDRMemory), never written to storage or backups.
// Content of tenants in normal operation, and what is not content, is
// stored as usual.
//
// # Isolation
//
// [Guard.Isolation] composes the packages that keep a tenant apart: each
// tenant gets its own KEK (a scope of a crypto/kms Keyring, used through
// crypto/envelope) and its own storage namespace ([Namespace], a
// retention.Backend only it uses), with zero data retention for content
// forced in § 203 mode (retention.ZDRRefuse unless the configuration asks
// for retention.ZDRMemory). It is the building block for a separate
// backend per tenant; with one shared backend, use the store above.
// [Guard.Access] refuses knowledge-base and storage access across tenants
// in every mode.
//
// # Telemetry
//
// Audit events and span events carry decision ids, modes, reasons and
// resource names (provider/model, tool, scheme://host:port, tenant
// resource ids). They never carry request or response bodies, URL paths
// or queries. Callers must keep content out of resource names.
package section203
