// Package audit records who did what, to which resource, with which
// outcome, as tamper-evident evidence an auditor accepts.
//
// It enforces the TOM clauses "Protokollierung relevanter Aktionen"
// (logging of relevant actions), access logging, and break-glass use with
// logging. Every other tomkit package reports to a [Logger]; audit itself
// imports no other tomkit package, so it sits at the bottom of the package
// graph. [Actor] is the one place where identity and tenant are defined.
//
// # Events
//
// An [Event] is encoded as one JSON object with these fields, which are
// only ever added to, never renamed:
//
//	time         RFC 3339 timestamp in UTC, nanosecond precision
//	actor        {"subject": string, "tenant": string}
//	action       "package.verb", for example "rbac.decide"
//	resource     what was acted on (omitted when empty)
//	outcome      "allow", "deny" or "error"
//	reason       why (omitted when empty)
//	severity     "info", "notice", "warning" or "critical"
//	request_id   request correlation id (omitted when empty)
//	trace_id     OpenTelemetry trace id, hex (omitted when empty)
//	span_id      OpenTelemetry span id, hex (omitted when empty)
//	attributes   [{"key", "value", "personal"}] (omitted when empty)
//
// An event larger than [MaxEventSize] or not valid UTF-8 is refused with a
// typed error; it is never truncated or repaired.
//
// # Failing closed
//
// A [Logger] that returns an error has not recorded the event, and the
// caller must fail the audited action. A component constructed without a
// Logger refuses to start with [ErrNoLogger].
package audit
