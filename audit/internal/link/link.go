// Package link gives audit's subpackages (audit/pglog) the unexported
// parts of package audit that they share with it: the signing key behind
// an audit.Signer, the record encoding, the audit.prune event and the
// construction of reports and proofs. Nothing is written twice, and
// audit's exported API stays what its users need.
//
// Package audit sets each variable in its init, to a function of the type
// named in the variable's comment. A subpackage imports audit, so the
// variables are set before any of its code runs; it asserts their types
// once, in its package variables.
package link

var (
	// NoteSigner is a func(*audit.Signer) note.Signer.
	NoteSigner any
	// VerifierKey is a func(*audit.Signer) string: the signer's verifier
	// key in the note text encoding.
	VerifierKey any
	// EncodeRecord is a func(context.Context, audit.Event, func()
	// time.Time, *audit.Pseudonymizer) ([]byte, error): the bytes a
	// tamper-evident log stores for an event.
	EncodeRecord any
	// PruneEvent is a func(min int64) audit.Event: the audit.prune event
	// recorded after deleting the records below min.
	PruneEvent any
	// Checkpoint is a func(*logfmt.Checkpoint) audit.Checkpoint.
	Checkpoint any
	// Report is a func(*logfmt.Result, *logfmt.Fault, error)
	// (audit.Report, error): the outcome of a verification, with
	// logfmt's errors and faults turned into audit's.
	Report any
	// Inclusion is a func(res *logfmt.Result, index int64, record
	// func() ([]byte, error)) (*audit.InclusionProof, error): the proof
	// for record index against res.Latest, with audit.ErrNotCovered for
	// a pruned or uncovered record.
	Inclusion any
	// Extends is a func(res *logfmt.Result, since []byte, v
	// note.Verifier) error: that the log res, read keeping every hash,
	// extends the checkpoint note since (audit.ErrNotConsistent if not).
	Extends any
)
