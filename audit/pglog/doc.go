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
// # One log, one key
//
// Open records the signer's verifier key when it creates the log, and
// refuses any other signer with [audit.ErrWrongSigner], so a second
// instance started with a fresh key cannot append records that verify
// under neither key. [Log.Rotate] changes the key with a note signed by
// the old key; [Verify] follows it. Open also refuses a log whose
// append-only triggers were disabled ([ErrNotAppendOnly]).
//
// # Threat model
//
// As for the file log: an attacker with write access to the database can
// destroy records, but cannot change, delete, reorder or insert records
// covered by a checkpoint without [Verify] naming the first affected
// record. Triggers make the tables append-only for everyone who cannot
// disable them; a superuser who can is still caught by verification.
// Keep the signer key out of the database.
package pglog
