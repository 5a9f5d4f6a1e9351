package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tomkit/tomkit/audit/internal/logfmt"
)

// ErrNotConsistent reports a log that does not extend a checkpoint it
// signed earlier: records were removed (a rollback or truncation) or
// rewritten, and the log was signed again. Only someone who holds the
// signer key can produce such a log, so it shows tampering by the
// log's operator.
var ErrNotConsistent = errors.New("audit: log does not extend the saved checkpoint")

// VerifySince is [Verify], and also proves that the log extends since:
// a signed checkpoint note of this log that an auditor saved earlier (the
// Note of a [Report.Checkpoint], or a line-for-line copy). The log must
// hold at least since's records, and its tree over the first of them must
// have since's root. A log rolled back or rewritten and signed again
// verifies on its own, but fails here with [ErrNotConsistent].
//
// A checkpoint below the log's prune point cannot be checked against the
// records that are left; VerifySince then fails with [ErrNotCovered].
func VerifySince(ctx context.Context, dir string, v note.Verifier, since []byte) (Report, error) {
	old, err := logfmt.OpenCheckpoint(since, v)
	if err != nil {
		return Report{}, fmt.Errorf("%w: saved checkpoint: %v", ErrBadProof, err)
	}
	res, err := verifyDir(ctx, dir, v, true)
	if err != nil {
		return Report{}, err
	}
	rep := res.report()
	if err := extends(res, old); err != nil {
		return rep, err
	}
	return rep, nil
}

// extends checks that the verified log res extends the checkpoint old.
func extends(res verified, old logfmt.Checkpoint) error {
	latest := res.Latest
	switch {
	case latest == nil || latest.Size < old.Size:
		var size int64
		if latest != nil {
			size = latest.Size
		}
		return fmt.Errorf("%w: saved checkpoint covers %d records, the log's latest only %d", ErrNotConsistent, old.Size, size)
	case res.Prune != nil && old.Size < res.Prune.Min:
		return fmt.Errorf("%w: saved checkpoint (size %d) is below the prune point %d", ErrNotCovered, old.Size, res.Prune.Min)
	}
	tree := res.State.Tree()
	p, err := tlog.ProveTree(latest.Size, old.Size, tree)
	if err != nil {
		return fmt.Errorf("audit: verify since: %w", err)
	}
	if err := tlog.CheckTree(p, latest.Size, latest.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("%w: the first %d records differ from the saved checkpoint's", ErrNotConsistent, old.Size)
	}
	return nil
}
