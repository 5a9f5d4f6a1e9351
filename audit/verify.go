package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/internal/errtext"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Kind is what verification found wrong with a record. Values are only
// ever added.
type Kind int

// The kinds of tampering [Verify] reports.
const (
	// KindModified: a record's bytes, or a record covered by a
	// checkpoint, changed.
	KindModified Kind = 1 + iota
	// KindMissing: a record was deleted.
	KindMissing
	// KindReordered: records were swapped or moved.
	KindReordered
	// KindTruncated: the log is shorter than a signed checkpoint says.
	KindTruncated
	// KindBadSignature: a checkpoint or prune note does not verify.
	KindBadSignature
)

// The kinds mirror the internal format's, value for value.
var _ = [1]struct{}{}[KindModified-Kind(logfmt.KindModified)+KindBadSignature-Kind(logfmt.KindBadSignature)]

// String returns the kind as the CLI prints it: "modified", "missing",
// "reordered", "truncated" or "bad signature".
func (k Kind) String() string { return logfmt.Kind(k).String() }

// VerifyError reports tampering: the first bad record's Index and what was
// found there. Match it with errors.As.
//
// For a change that the per-record checksums do not reveal (a forger who
// recomputed them), Index is the first record after the last checkpoint
// that still matched: the tree proves that something in the signed range
// changed, not which record.
type VerifyError struct {
	Index int64
	Kind  Kind
	Err   error // detail, may be nil
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("audit: log tampered: record %d: %s: %v", e.Index, e.Kind, e.Err)
	}
	return fmt.Sprintf("audit: log tampered: record %d: %s", e.Index, e.Kind)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Errors returned by [Verify], [Open] and the proof functions.
var (
	// ErrEmptyLog reports a log with neither records nor checkpoints.
	ErrEmptyLog = errors.New("audit: empty log")
	// ErrWrongKey reports a log none of whose checkpoints is signed by
	// the verifier key given.
	ErrWrongKey = errors.New("audit: log not signed by this verifier key")
)

// Checkpoint is a signed statement of the log's size and Merkle tree root
// (a C2SP tlog-checkpoint).
type Checkpoint struct {
	// Origin names the log; it is the signer key's name.
	Origin string
	// Size is the number of records the checkpoint covers.
	Size int64
	// Root is the RFC 6962 tree hash of those records.
	Root tlog.Hash
	// Time is when it was signed.
	Time time.Time
	// Note is the signed note, as stored.
	Note []byte
}

func publicCheckpoint(c *logfmt.Checkpoint) Checkpoint {
	if c == nil {
		return Checkpoint{}
	}
	return Checkpoint{Origin: c.Origin, Size: c.Size, Root: c.Root, Time: c.Time, Note: c.Note}
}

// Report describes an intact log.
type Report struct {
	// Size is the number of records, counting pruned ones.
	Size int64
	// Pruned is the number of records deleted by [FileLog.Prune] or
	// by the PostgreSQL log's Prune (package audit/pglog).
	Pruned int64
	// Checkpoint is the latest signed checkpoint. Records at or above
	// Checkpoint.Size are not yet covered by a signature.
	Checkpoint Checkpoint
	// Residue is the number of bytes of crash residue: a torn,
	// never-acknowledged tail left by a crash, which [Open] removes.
	// It is not tampering. Only a suffix of the last segment, beyond
	// the latest checkpoint and followed by no intact record, counts as
	// residue; a damaged record followed by an intact one is a
	// [*VerifyError].
	Residue int64
}

// Verify checks the file log in dir against the verifier key v: every
// record's framing and position, every checkpoint's signature, and that the
// Merkle tree over the records matches every checkpoint. It returns a
// [*VerifyError] for tampering, [ErrEmptyLog], [ErrWrongKey], or an I/O
// error. It takes no lock and can run while a [FileLog] appends.
func Verify(ctx context.Context, dir string, v note.Verifier) (Report, error) {
	res, err := verifyDir(ctx, dir, v, false)
	if err != nil {
		return Report{}, err
	}
	return res.report(), nil
}

// VerifyFS is [Verify] for a log directory in any file system: an
// archived copy, an fs.FS over a blob store, or bytes in memory
// (testing/fstest.MapFS).
func VerifyFS(ctx context.Context, fsys fs.FS, v note.Verifier) (Report, error) {
	if v == nil {
		return Report{}, fmt.Errorf("%w: no verifier", ErrBadKey)
	}
	res, err := convert(logfmt.VerifyFS(ctx, fsys, v, false, MaxEventSize))
	if err != nil {
		return Report{}, err
	}
	return res.report(), nil
}

type verified struct{ *logfmt.Result }

func (r verified) report() Report {
	rep := Report{Size: r.State.Tree().Size(), Checkpoint: publicCheckpoint(r.Latest), Residue: int64(r.State.Residue + r.CheckpointResidue)}
	if r.Prune != nil {
		rep.Pruned = r.Prune.Min
	}
	return rep
}

func verifyDir(ctx context.Context, dir string, v note.Verifier, keep bool) (verified, error) {
	if v == nil {
		return verified{}, fmt.Errorf("%w: no verifier", ErrBadKey)
	}
	if _, err := os.Stat(dir); err != nil {
		return verified{}, errtext.Errorf("audit: verify: %w", err)
	}
	res, fault, err := logfmt.VerifyFS(ctx, os.DirFS(dir), v, keep, MaxEventSize)
	return convert(res, fault, err)
}

func convert(res *logfmt.Result, fault *logfmt.Fault, err error) (verified, error) {
	switch {
	case errors.Is(err, logfmt.ErrEmpty):
		return verified{}, ErrEmptyLog
	case errors.Is(err, logfmt.ErrWrongKey):
		return verified{}, ErrWrongKey
	case err != nil:
		return verified{}, errtext.Errorf("audit: verify: %w", err)
	case fault != nil:
		return verified{res}, &VerifyError{Index: fault.Index, Kind: Kind(fault.Kind), Err: fault.Err}
	}
	return verified{res}, nil
}
