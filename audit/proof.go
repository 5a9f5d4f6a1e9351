package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/internal/errtext"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrBadProof reports a proof that does not verify.
var ErrBadProof = errors.New("audit: proof does not verify")

// ErrNotCovered reports a record index that no checkpoint covers yet, or
// that was pruned.
var ErrNotCovered = errors.New("audit: record not covered by a checkpoint")

// InclusionProof proves that one record is in the log as signed by a
// checkpoint. It is checked with [CheckInclusion] and the verifier key
// alone, without the log. Its JSON encoding is what `tomkit audit prove`
// prints.
type InclusionProof struct {
	// Index is the record's position in the log.
	Index int64 `json:"index"`
	// Record is the event's JSON encoding, exactly as logged.
	Record string `json:"record"`
	// Checkpoint is the signed checkpoint note the proof leads to.
	Checkpoint string `json:"checkpoint"`
	// Proof is the RFC 6962 audit path.
	Proof []tlog.Hash `json:"proof"`
}

// ConsistencyProof proves that the log signed by New extends the log
// signed by Old: nothing in the first Old.Size records changed. Check it
// with [CheckConsistency].
type ConsistencyProof struct {
	Old   string      `json:"old"`
	New   string      `json:"new"`
	Proof []tlog.Hash `json:"proof"`
}

// proveTree reads the log in dir keeping every hash. It checks framing,
// order and roots but not signatures: the checker of a proof does that.
func proveTree(ctx context.Context, dir string) (verified, error) {
	if _, err := os.Stat(dir); err != nil {
		return verified{}, errtext.Errorf("audit: prove: %w", err)
	}
	res, fault, err := logfmt.VerifyFS(ctx, os.DirFS(dir), nil, true, MaxEventSize)
	return convert(res, fault, err)
}

// Prove returns an inclusion proof for record index of the file log in
// dir, against the latest checkpoint. It can run while a [FileLog]
// appends.
func Prove(ctx context.Context, dir string, index int64) (*InclusionProof, error) {
	res, err := proveTree(ctx, dir)
	if err != nil {
		return nil, err
	}
	return inclusion(res.Result, index, func() ([]byte, error) { return readRecord(dir, res.Segments, index) })
}

// inclusion returns the proof for record index against res.Latest; record
// reads the record's bytes. A pruned record, or one no checkpoint covers,
// gives ErrNotCovered.
func inclusion(res *logfmt.Result, index int64, record func() ([]byte, error)) (*InclusionProof, error) {
	cp := res.Latest
	min := int64(0)
	if res.Prune != nil {
		min = res.Prune.Min
	}
	if cp == nil || index < min || index >= cp.Size {
		return nil, fmt.Errorf("%w: record %d", ErrNotCovered, index)
	}
	p, err := tlog.ProveRecord(cp.Size, index, res.State.Tree())
	if err != nil {
		return nil, errtext.Errorf("audit: prove: %w", err)
	}
	rec, err := record()
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Index: index, Record: string(rec), Checkpoint: string(cp.Note), Proof: p}, nil
}

func readRecord(dir string, segs []logfmt.Segment, index int64) ([]byte, error) {
	var seg *logfmt.Segment
	for i := range segs {
		if segs[i].First <= index {
			seg = &segs[i]
		}
	}
	if seg == nil {
		return nil, fmt.Errorf("%w: record %d", ErrNotCovered, index)
	}
	data, err := os.ReadFile(filepath.Join(dir, seg.Name))
	if err != nil {
		return nil, errtext.Errorf("audit: prove: %w", err)
	}
	for off := 0; off < len(data); {
		seq, payload, n, err := frame.Next(data[off:], MaxEventSize)
		if err != nil {
			break
		}
		if int64(seq) == index {
			return payload, nil
		}
		off += n
	}
	return nil, fmt.Errorf("%w: record %d", ErrNotCovered, index)
}

// CheckInclusion verifies p with the verifier key v alone and returns the
// proven event, with the checkpoint it was proven against.
func CheckInclusion(v note.Verifier, p *InclusionProof) (Event, Checkpoint, error) {
	if v == nil || p == nil {
		return Event{}, Checkpoint{}, fmt.Errorf("%w: missing key or proof", ErrBadProof)
	}
	c, err := logfmt.OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return Event{}, Checkpoint{}, fmt.Errorf("%w: checkpoint: %v", ErrBadProof, err)
	}
	if p.Index < 0 || p.Index >= c.Size {
		return Event{}, Checkpoint{}, fmt.Errorf("%w: index %d outside checkpoint of size %d", ErrBadProof, p.Index, c.Size)
	}
	if err := tlog.CheckRecord(p.Proof, c.Size, c.Root, p.Index, tlog.RecordHash([]byte(p.Record))); err != nil {
		return Event{}, Checkpoint{}, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	e, err := Unmarshal([]byte(p.Record))
	if err != nil {
		return Event{}, Checkpoint{}, fmt.Errorf("%w: record: %v", ErrBadProof, err)
	}
	return e, publicCheckpoint(&c), nil
}

// ProveConsistency returns a proof that the log's latest checkpoint
// extends the checkpoint of size oldSize.
func ProveConsistency(ctx context.Context, dir string, oldSize int64) (*ConsistencyProof, error) {
	res, err := proveTree(ctx, dir)
	if err != nil {
		return nil, err
	}
	var old *logfmt.Checkpoint
	for i := range res.Checkpoints {
		if res.Checkpoints[i].Size == oldSize {
			old = &res.Checkpoints[i]
		}
	}
	if old == nil || res.Latest == nil {
		return nil, fmt.Errorf("%w: no checkpoint of size %d", ErrNotCovered, oldSize)
	}
	p, err := tlog.ProveTree(res.Latest.Size, oldSize, res.State.Tree())
	if err != nil {
		return nil, errtext.Errorf("audit: prove: %w", err)
	}
	return &ConsistencyProof{Old: string(old.Note), New: string(res.Latest.Note), Proof: p}, nil
}

// CheckConsistency verifies p with the verifier key v alone.
func CheckConsistency(v note.Verifier, p *ConsistencyProof) error {
	if v == nil || p == nil {
		return fmt.Errorf("%w: missing key or proof", ErrBadProof)
	}
	o, err := logfmt.OpenCheckpoint([]byte(p.Old), v)
	if err != nil {
		return fmt.Errorf("%w: old checkpoint: %v", ErrBadProof, err)
	}
	n, err := logfmt.OpenCheckpoint([]byte(p.New), v)
	if err != nil {
		return fmt.Errorf("%w: new checkpoint: %v", ErrBadProof, err)
	}
	if o.Size > n.Size {
		return fmt.Errorf("%w: old checkpoint is larger", ErrBadProof)
	}
	if err := tlog.CheckTree(p.Proof, n.Size, n.Root, o.Size, o.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return nil
}
