package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/internal/errtext"
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
	if _, err := logfmt.OpenCheckpoint(since, v); err != nil {
		return Report{}, fmt.Errorf("%w: saved checkpoint: %v", ErrBadProof, err)
	}
	res, err := verifyDir(ctx, dir, v, true)
	if err != nil {
		return Report{}, err
	}
	return res.report(), extends(res.Result, since, v)
}

// extends checks that the verified log res (read keeping every hash)
// extends the checkpoint note since, signed by v.
func extends(res *logfmt.Result, since []byte, v note.Verifier) error {
	old, err := logfmt.OpenCheckpoint(since, v)
	if err != nil {
		return fmt.Errorf("%w: saved checkpoint: %v", ErrBadProof, err)
	}
	err = logfmt.Extends(res, old)
	switch {
	case errors.Is(err, logfmt.ErrNotExtended):
		return fmt.Errorf("%w: %s", ErrNotConsistent, strings.TrimPrefix(err.Error(), logfmt.ErrNotExtended.Error()+": "))
	case errors.Is(err, logfmt.ErrBelowPrune):
		return fmt.Errorf("%w: %v", ErrNotCovered, err)
	case err != nil:
		return errtext.Errorf("audit: verify since: %w", err)
	}
	return nil
}
