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
// A [Modes] table holds each tenant's mode (on unless turned off, with an
// audited, authorized turn-off); a [Guard] ([New]) refuses non-EU or
// unregistered models, disallowed tools such as web search and cross-tenant
// access, and pins model calls to an egress allowlist ([Guard.Transport],
// [Guard.ModelClient]). [ZeroRetention] gives retention its per-tenant zero-
// data-retention rule, and [Isolation] a separate key and storage namespace
// per tenant. Every decision is audited.
//
// The guide, docs/SECTION203.md in the repository, has the sections "Threat
// model", "Mode", "Guards", "Storing tenant data", "Isolation", "Telemetry".
package section203
