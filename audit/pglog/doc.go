// Package pglog keeps a tamper-evident audit log in PostgreSQL: the same
// RFC 6962 Merkle tree, C2SP checkpoints and signed prune notes as the
// [audit.FileLog], written by any number of processes at once as one
// totally ordered log. It enforces the TOM clause "Protokollierung
// relevanter Aktionen" (logging of relevant actions) for services that
// run as several instances on one database.
//
// Every entry point takes a [*pgxpool.Pool] that the caller owns; the
// tables live in the pool's search_path:
//
//	pool, err := pgxpool.New(ctx, dsn)
//	...
//	log, err := pglog.Open(ctx, pool, pglog.Config{Signer: signer})
//	...
//	defer log.Close() // a final checkpoint; the pool stays open
//	err = log.Log(ctx, audit.Event{Action: "invoice.read", Outcome: audit.OutcomeAllow})
//
// [Verify] checks a log with the verifier key alone, as [audit.Verify]
// checks a directory, and [Prove] gives an inclusion proof that
// [audit.CheckInclusion] checks. [Log.Prune] deletes old records under a
// signed prune note. Errors, reports and proofs are package audit's
// types.
//
// The guide, docs/PGLOG.md in the repository, has the sections "One log, one
// key", "Threat model".
package pglog
