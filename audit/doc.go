// Package audit records who did what, to which resource, with which
// outcome, as tamper-evident evidence an auditor accepts.
//
// It enforces the TOM clauses "Protokollierung relevanter Aktionen"
// (logging of relevant actions), access logging, and break-glass use with
// logging. Every other tomkit package reports to a [Logger]; audit itself
// imports no other tomkit package, so it sits at the bottom of the package
// graph. [Actor] is the one place where identity and tenant are defined
// ([WithActor], [ActorFrom]), and [Clock] the one clock option of every
// tomkit config.
//
// An [Event] has a stable JSON encoding whose fields are only ever added.
// A Logger that returns an error has not recorded the event, and the
// caller must fail the audited action; a component built without a
// Logger refuses to start ([ErrNoLogger]).
//
// [Open] returns a [FileLog], the embedded default: records form one
// RFC 6962 Merkle tree across segment files, with signed C2SP checkpoints
// ([GenerateKey], [NewSigner]); [FileLog.Log] returns once the record is
// on disk (group commit), a crash tears at most the unacknowledged tail,
// and [FileLog.Prune] deletes old segments under a signed note. [Verify]
// names the first bad record; [Prove] and [ProveConsistency] give proofs
// that [CheckInclusion] and [CheckConsistency] check with the public key
// alone. Attributes made with [Personal] are stored only as keyed
// pseudonyms ([Pseudonymizer]) or [Redacted]. audit/pglog keeps the same
// log in PostgreSQL; [SlogSink], [OTelSink] and [Fanout] forward events.
//
// The guide, docs/AUDIT.md in the repository, has the event fields, the
// file log, verification, personal data, the sinks and the threat model.
package audit
