package audit

import (
	"context"
	"time"

	"github.com/tomkit/tomkit/audit/internal/link"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"golang.org/x/mod/sumdb/note"
)

// init hands audit's subpackages (audit/pglog) what they share with this
// package; see audit/internal/link.
func init() {
	link.NoteSigner = func(s *Signer) note.Signer { return s.s }
	link.VerifierKey = func(s *Signer) string { return s.vkey }
	link.EncodeRecord = encodeRecord
	link.PruneEvent = pruneEvent
	link.Checkpoint = publicCheckpoint
	link.Report = func(res *logfmt.Result, fault *logfmt.Fault, err error) (Report, error) {
		v, err := convert(res, fault, err)
		if err != nil {
			return Report{}, err
		}
		return v.report(), nil
	}
	link.Inclusion = inclusion
	link.Extends = extends
}

// Compile-time checks that the functions keep the types link documents.
var (
	_ func(context.Context, Event, func() time.Time, *Pseudonymizer) ([]byte, error) = encodeRecord
	_ func(int64) Event                                                              = pruneEvent
	_ func(*logfmt.Checkpoint) Checkpoint                                            = publicCheckpoint
	_ func(*logfmt.Result, int64, func() ([]byte, error)) (*InclusionProof, error)   = inclusion
	_ func(*logfmt.Result, []byte, note.Verifier) error                              = extends
)
