package logfmt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// File names inside a log directory.
const (
	LockName        = "lock"
	CheckpointsName = "checkpoints"
	PruneName       = "prune"
	segPrefix       = "seg-"
	segSuffix       = ".log"
)

// ErrEmpty is returned for a directory with neither records nor
// checkpoints.
var ErrEmpty = errors.New("empty log")

// SegmentName returns the file name of the segment whose first record is
// first.
func SegmentName(first int64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// Segment is one segment file.
type Segment struct {
	First int64
	Name  string
}

// ListSegments returns the segments of fsys, ordered by first index.
func ListSegments(fsys fs.FS) ([]Segment, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var segs []Segment
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, segPrefix)
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, segSuffix)
		if !ok || len(num) != 20 {
			continue
		}
		first, err := strconv.ParseInt(num, 10, 64)
		if err != nil || first < 0 {
			continue
		}
		segs = append(segs, Segment{First: first, Name: name})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].First < segs[j].First })
	return segs, nil
}

// Result is what [VerifyFS] learnt about a log.
type Result struct {
	State       *State
	Checkpoints []Checkpoint // verified, in file order
	Latest      *Checkpoint  // the largest checkpoint, nil if none
	Prune       *Prune
	Segments    []Segment // the live segments (at or above the prune point)
	// Frontiers holds the tree frontier at the start of each live segment,
	// by first index.
	Frontiers map[int64][]tlog.Hash
	// CheckpointsLen and CheckpointResidue describe the checkpoints file
	// and the crash residue at its end.
	CheckpointsLen    int
	CheckpointResidue int
}

// VerifyFS verifies the log in fsys against v. keep makes the returned
// tree keep every hash, for proofs. A non-nil fault means tampering; err
// is for everything else (I/O, ErrEmpty, ErrWrongKey).
func VerifyFS(ctx context.Context, fsys fs.FS, v note.Verifier, keep bool, maxLen int) (*Result, *Fault, error) {
	res := &Result{Frontiers: map[int64][]tlog.Hash{}}
	cpData, err := fs.ReadFile(fsys, CheckpointsName)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	res.CheckpointsLen = len(cpData)
	cps, cpFault, residue, err := ReadCheckpoints(cpData, v)
	if err != nil {
		return nil, nil, err
	}
	res.Checkpoints, res.CheckpointResidue = cps, residue
	for i := range cps {
		if res.Latest == nil || cps[i].Size >= res.Latest.Size {
			res.Latest = &cps[i]
		}
	}

	tree := merkle.New(keep)
	var min int64
	pdata, err := fs.ReadFile(fsys, PruneName)
	switch {
	case err == nil:
		p, perr := OpenPrune(pdata, v)
		if perr != nil {
			return res, &Fault{Index: 0, Kind: KindBadSignature, Err: fmt.Errorf("prune note: %w", perr)}, nil
		}
		t, terr := merkle.Start(p.Min, p.Frontier, keep)
		if terr != nil {
			return res, &Fault{Index: 0, Kind: KindBadSignature, Err: terr}, nil
		}
		res.Prune, tree, min = &p, t, p.Min
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, err
	}

	segs, err := ListSegments(fsys)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range segs {
		if s.First >= min {
			res.Segments = append(res.Segments, s)
		}
	}
	if len(cps) == 0 && cpFault == nil && res.Prune == nil {
		empty := true
		for _, s := range res.Segments {
			if fi, err := fs.Stat(fsys, s.Name); err != nil || fi.Size() > 0 {
				empty = false
			}
		}
		if empty {
			return nil, nil, ErrEmpty
		}
		cpFault = &Fault{Index: 0, Kind: KindBadSignature, Err: errors.New("no signed checkpoint")}
	}

	st := NewState(tree, cps, cpFault, maxLen)
	res.State = st
	var buf []byte // reused for every segment
	for i, s := range res.Segments {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		res.Frontiers[s.First] = st.Tree().Frontier()
		data, err := readInto(fsys, s.Name, buf)
		if err != nil {
			return nil, nil, err
		}
		buf = data
		st.Feed(data, i == len(res.Segments)-1)
		if st.Done() {
			break
		}
	}
	if f := st.Finish(); f != nil {
		return res, f, nil
	}
	return res, nil, nil
}

// readInto reads the file name into buf, growing it as needed.
func readInto(fsys fs.FS, name string, buf []byte) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := int(fi.Size())
	if cap(buf) < n+1 {
		buf = make([]byte, 0, n+n/8+512)
	}
	buf = buf[:cap(buf)]
	total := 0
	for {
		if total == len(buf) {
			buf = append(buf, 0)[:total] // grow; the file grew meanwhile
			buf = buf[:cap(buf)]
		}
		m, err := f.Read(buf[total:])
		total += m
		if err == io.EOF {
			return buf[:total], nil
		}
		if err != nil {
			return nil, err
		}
	}
}
