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
//	escaped      names of the fields escaped because their text was not
//	             valid UTF-8, e.g. ["resource", "attributes.2.value"]
//	             (omitted when none)
//
// Text that is not valid UTF-8 (often request-derived: a path, a header)
// is recorded faithfully rather than refused: [EscapeText] writes each
// invalid byte as \xHH and each backslash as \\, and the field is listed
// in "escaped", so that [UnescapeText] gives back the original bytes. An
// encoding problem is never an audit outage. An event larger than
// [MaxEventSize] is refused with a typed error; it is never truncated.
//
// # Failing closed
//
// A [Logger] that returns an error has not recorded the event, and the
// caller must fail the audited action. A component constructed without a
// Logger refuses to start with [ErrNoLogger].
//
// # The tamper-evident file log
//
// [Open] returns a [FileLog], the embedded default sink. Records are
// appended to segment files and form one RFC 6962 Merkle tree (hashed by
// golang.org/x/mod/sumdb/tlog) across segments and restarts. Checkpoints,
// C2SP tlog-checkpoint notes signed with Ed25519, are written every
// [FileConfig.CheckpointInterval] even when idle, on [FileLog.Checkpoint],
// and on [FileLog.Close]. The format is in docs/AUDIT-FORMAT.md.
//
//	skey, vkey, _ := audit.GenerateKey("audit.example.com/billing")
//	signer, _ := audit.NewSigner(skey)
//	log, err := audit.Open(ctx, "/var/lib/app/audit", audit.FileConfig{Signer: signer})
//	...
//	err = log.Log(ctx, audit.Event{Action: "invoice.read", Outcome: audit.OutcomeAllow})
//
// [FileLog.Log] returns only once the record is on disk: a single writer
// goroutine batches concurrent callers, writes once and fsyncs once for
// the whole batch (group commit), then answers them all. A crash can only
// tear the unacknowledged tail, a suffix of the last segment; [Verify]
// reports it as [Report.Residue], not as tampering, and the next [Open]
// cuts it off and records an "audit.recover" event. A damaged record
// followed by any intact record of the same or a later index is no torn
// write: it is tampering, and Open refuses the log instead of cutting
// acknowledged records off. A directory is held by one FileLog at a time
// ([ErrLogLocked]) and has one key: Open with a signer whose key did not sign
// the log is refused ([ErrWrongSigner]). [FileLog.Prune] deletes old segments under a signed prune
// note, so that the audit log obeys its own retention period and what
// remains still verifies.
//
// # Verification and proofs
//
// [Verify] needs only the directory and the verifier key. It returns a
// [*VerifyError] naming the first bad record and the [Kind] of damage:
// modified, missing, reordered, truncated (shorter than a signed
// checkpoint) or bad signature. [Prove] and [CheckInclusion] give and check
// a proof that one event is in the log; [ProveConsistency] and
// [CheckConsistency] prove that a later checkpoint extends an earlier one.
// Checking needs the checkpoint and the public key alone. The command
// `tomkit audit` wraps all of this (keygen, verify, prove, check-proof).
//
// # Personal data
//
// Attributes made with [Personal] never reach a sink's storage in
// plaintext. With a [Pseudonymizer] they become keyed HMAC-SHA256
// pseudonyms "hmac-sha256:<key id>:<hex>", which the key holder can
// recompute to search for a known value, across key rotations; without one
// they are replaced by [Redacted].
//
// # Other sinks
//
// Package audit/pglog keeps the same tree in PostgreSQL, on a pgx pool
// the caller owns: several processes may write one totally ordered log,
// concurrent Log calls of one process share one transaction (group
// commit, as FileLog shares an fsync), triggers refuse UPDATE and DELETE,
// its Prune deletes old records under a signed prune note, and its Verify
// checks it. Importing audit alone links no database driver. [SlogSink] and [OTelSink] forward events to
// slog and OpenTelemetry (span events and log records with the same trace
// and span ids). [Fanout] combines sinks: durable ones fail closed, as in
// Kubernetes' blocking-strict mode; best-effort ones cannot fail the
// caller.
//
// # Threat model
//
// The log detects, it does not prevent: an attacker with write access to
// the log directory or database can destroy records, but cannot change,
// delete, reorder or insert records covered by a checkpoint without
// verification naming the first affected record, because checkpoints are
// signed with a key the attacker does not hold. Keep the signer key away
// from the log's storage (a secret store, a separate account), and give
// auditors the verifier key. Records appended after the last checkpoint
// are protected only by checksums until the next checkpoint, at most
// CheckpointInterval later. Among them, a damaged record followed by an
// intact one is reported as tampering at the damaged record, but damage
// confined to the very last record, and truncating the unsigned tail, are
// indistinguishable from a crash's torn write: Verify reports crash
// residue and Open drops it. An attacker who also deletes the latest
// checkpoints can roll the log back to an earlier checkpoint, which is
// why auditors should keep (or witness) the latest checkpoint they saw.
package audit
