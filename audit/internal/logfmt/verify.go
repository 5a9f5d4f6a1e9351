package logfmt

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Kind classifies a verification fault. Values are only ever added.
type Kind int

// The fault kinds.
const (
	KindModified Kind = 1 + iota
	KindMissing
	KindReordered
	KindTruncated
	KindBadSignature
)

func (k Kind) String() string {
	switch k {
	case KindModified:
		return "modified"
	case KindMissing:
		return "missing"
	case KindReordered:
		return "reordered"
	case KindTruncated:
		return "truncated"
	case KindBadSignature:
		return "bad signature"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Fault is the first problem found, at record Index.
type Fault struct {
	Index int64
	Kind  Kind
	Err   error
}

func (f *Fault) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("record %d: %s: %v", f.Index, f.Kind, f.Err)
	}
	return fmt.Sprintf("record %d: %s", f.Index, f.Kind)
}

func earlier(a, b *Fault) *Fault {
	if a == nil || (b != nil && b.Index < a.Index) {
		return b
	}
	return a
}

// ReadCheckpoints parses the framed checkpoints file. It returns the
// verified checkpoints in file order, the first fault found among them
// (indexed by the size of the last good checkpoint before it), and the
// number of bytes of crash residue at the end (an incomplete last frame
// or a zero tail), which starts at len(data)-residue. err is ErrWrongKey
// when there are checkpoints and none verifies under v.
func ReadCheckpoints(data []byte, v note.Verifier) (cps []Checkpoint, fault *Fault, residue int, err error) {
	return ReadCheckpointsWith(data, func(msg []byte) (Checkpoint, error) { return OpenCheckpoint(msg, v) })
}

// ReadCheckpointsWith is [ReadCheckpoints] with open verifying and parsing
// each checkpoint, for a log whose key changed (see [Rotation]). open
// returns ErrWrongKey for a checkpoint that no key it accepts signed.
func ReadCheckpointsWith(data []byte, open func([]byte) (Checkpoint, error)) (cps []Checkpoint, fault *Fault, residue int, err error) {
	var good int64
	wrong, frames := 0, 0
	for off, seq := 0, uint64(0); off < len(data); seq++ {
		s, msg, n, ferr := frame.Next(data[off:], MaxNote)
		if ferr != nil {
			if errors.Is(ferr, frame.ErrShort) || allZero(data[off:]) {
				// Residue only if no intact checkpoint follows: a
				// crash tears a suffix, never the middle.
				rest := data[off+1:]
				p, _, serr := frame.Find(rest, MaxNote, seq, len(rest)+4*MaxNote)
				if p < 0 && serr == nil {
					residue = len(data) - off
					break
				}
			}
			fault = earlier(fault, &Fault{Index: good, Kind: KindBadSignature, Err: fmt.Errorf("checkpoint %d: %w", seq, ferr)})
			break
		}
		off += n
		frames++
		if s != seq {
			k := KindMissing
			if s < seq {
				k = KindReordered
			}
			fault = earlier(fault, &Fault{Index: good, Kind: k, Err: fmt.Errorf("checkpoint %d found at position %d", s, seq)})
			seq = s
		}
		c, cerr := open(msg)
		if cerr != nil {
			if cerr == ErrWrongKey {
				wrong++
			}
			fault = earlier(fault, &Fault{Index: good, Kind: KindBadSignature, Err: fmt.Errorf("checkpoint %d: %w", seq, cerr)})
			continue
		}
		if c.Size < good {
			fault = earlier(fault, &Fault{Index: c.Size, Kind: KindReordered, Err: fmt.Errorf("checkpoint %d: size %d after size %d", seq, c.Size, good)})
			continue
		}
		good = c.Size
		cps = append(cps, c)
	}
	if frames > 0 && wrong == frames {
		return nil, nil, residue, ErrWrongKey
	}
	return cps, fault, residue, nil
}

// State verifies records as they are fed, segment by segment. It stops
// at the first fault.
type State struct {
	tree    *merkle.Tree
	cps     []Checkpoint // sorted by size, all with Size >= the start
	ci      int
	signed  int64 // largest checkpoint size
	matched int64 // size of the last checkpoint whose root matched
	maxLen  int

	fault   *Fault
	pend    bool
	pendIdx int64
	cpFault *Fault

	// ResidueOffset and Residue locate crash residue in the last
	// segment fed: Residue bytes from ResidueOffset.
	ResidueOffset int
	Residue       int
}

// NewState starts verification at tree (empty, or started at a prune
// point) against the checkpoints cps. cpFault is a fault already found
// among the checkpoints. maxLen bounds a record.
func NewState(tree *merkle.Tree, cps []Checkpoint, cpFault *Fault, maxLen int) *State {
	s := &State{tree: tree, cpFault: cpFault, maxLen: maxLen, matched: tree.Size()}
	for _, c := range cps {
		if c.Size >= tree.Size() {
			s.cps = append(s.cps, c)
		}
	}
	sort.SliceStable(s.cps, func(i, j int) bool { return s.cps[i].Size < s.cps[j].Size })
	if n := len(s.cps); n > 0 {
		s.signed = s.cps[n-1].Size
	}
	s.check()
	return s
}

// Clone returns an independent copy of s (without kept hashes).
func (s *State) Clone() *State {
	c := *s
	c.tree = s.tree.Clone()
	return &c
}

// Tree returns the tree built so far.
func (s *State) Tree() *merkle.Tree { return s.tree }

// Signed returns the largest checkpointed size.
func (s *State) Signed() int64 { return s.signed }

// Done reports whether a fault has been found.
func (s *State) Done() bool { return s.fault != nil }

// check compares the root with every checkpoint at the current size.
func (s *State) check() {
	n := s.tree.Size()
	ok := false
	for s.ci < len(s.cps) && s.cps[s.ci].Size == n {
		root, err := s.tree.Root()
		if err != nil {
			s.fault = &Fault{Index: s.matched, Kind: KindModified, Err: err}
			return
		}
		if root != s.cps[s.ci].Root {
			s.fault = &Fault{Index: s.matched, Kind: KindModified, Err: fmt.Errorf("tree of size %d does not match its signed checkpoint", n)}
			return
		}
		s.ci++
		ok = true
	}
	if ok {
		s.matched = n
	}
}

// groupLevel sets the size of the record groups (2^groupLevel) whose
// subtree hashes Feed computes in parallel.
const groupLevel = 4

// Feed verifies the frames of one segment. last reports whether it is the
// last segment, where a bad frame beyond the last checkpoint is crash
// residue rather than tampering.
//
// Feed works in windows of records: it parses a window's frame headers,
// checks the payload checksums and computes the leaf hashes and the
// subtree hashes of aligned groups of consecutive records in parallel, then
// folds them into the tree in order, record by record wherever a fault or
// a checkpoint needs it. So verification is bound by hashing.
func (s *State) Feed(data []byte, last bool) {
	off := 0
	// Windows start small, so that a fault near the start of data costs
	// little, and double up to window.
	w := 16
	for s.fault == nil {
		var ferr error
		off, ferr = s.feedWindow(data, off, w)
		w = min(2*w, window)
		if ferr == nil && off < len(data) {
			continue
		}
		if ferr == nil || s.fault != nil {
			return
		}
		if s.pend {
			s.fault = &Fault{Index: s.pendIdx, Kind: KindMissing}
			return
		}
		i := s.tree.Size()
		if last && i >= s.signed {
			if s.fault = tornTail(data, off, i, ferr, s.maxLen); s.fault == nil {
				s.ResidueOffset, s.Residue = off, len(data)-off
			}
			return
		}
		k := KindModified
		if errors.Is(ferr, frame.ErrShort) {
			k = KindTruncated
		}
		s.fault = &Fault{Index: i, Kind: k, Err: ferr}
	}
}

// tornTail decides whether the bad frame for record i at data[off:], the
// last segment, is crash residue (it returns nil) or tampering.
//
// A crash tears only a suffix of the file: the unacknowledged tail of the
// last write, possibly zero-filled or garbage after a power loss. So a bad
// frame is residue only if no intact frame for record i or later follows
// it anywhere in the rest of the segment; otherwise cutting it would drop
// acknowledged records. The length of a bad frame cannot be trusted, so
// the rest is searched at every byte offset.
func tornTail(data []byte, off int, i int64, ferr error, maxLen int) *Fault {
	rest := data[off+1:]
	p, seq, err := frame.Find(rest, maxLen, uint64(i), len(rest)+4*maxLen)
	switch {
	case err != nil:
		return &Fault{Index: i, Kind: KindModified, Err: fmt.Errorf("%w; cannot tell the rest from crash residue: %w", ferr, err)}
	case p >= 0:
		return &Fault{Index: i, Kind: KindModified, Err: fmt.Errorf("%w, yet intact record %d follows at byte %d", ferr, seq, off+1+p)}
	}
	return nil
}

// window is the most records Feed handles at a time, so that the bytes it
// hashes are still in the CPU cache from the header walk.
const window = 2048

type rec struct {
	seq     uint64
	payload []byte
	crc     uint32
	off     int
}

// feedWindow verifies up to w records starting at data[off:]. It
// returns the offset after the last record folded in, and the frame error
// found there, if any.
func (s *State) feedWindow(data []byte, off, w int) (int, error) {
	recs := make([]rec, 0, 16)
	var ferr error
	for off < len(data) && len(recs) < w {
		seq, payload, crc, n, err := frame.Header(data[off:], s.maxLen)
		if err != nil {
			ferr = err
			break
		}
		recs = append(recs, rec{seq, payload, crc, off})
		off += n
	}

	// Groups of G records starting at index o+k*G whose sequence numbers
	// are consecutive and start at a multiple of G.
	const G = 1 << groupLevel
	o := 0
	if len(recs) > 0 {
		o = int((G - recs[0].seq%G) % G)
	}
	ngroups := 0
	if len(recs) > o {
		ngroups = (len(recs) - o) / G
	}
	leaves := make([]tlog.Hash, len(recs))
	crcOK := make([]bool, len(recs))
	groups := make([]tlog.Hash, ngroups)
	groupOK := make([]bool, ngroups)
	hashAll(len(recs), func(i int) {
		crcOK[i] = frame.PayloadOK(recs[i].payload, recs[i].crc)
		leaves[i] = tlog.RecordHash(recs[i].payload)
	})
	hashAll(ngroups, func(k int) {
		lo := o + k*G
		if recs[lo].seq%G != 0 {
			return
		}
		for i := lo; i < lo+G; i++ {
			if !crcOK[i] || recs[i].seq != recs[lo].seq+uint64(i-lo) {
				return
			}
		}
		groups[k] = merkle.PerfectRoot(leaves[lo : lo+G])
		groupOK[k] = true
	})

	for j := 0; j < len(recs); j++ {
		r := recs[j]
		if !crcOK[j] {
			return r.off, frame.ErrPayload
		}
		if s.pend {
			k := KindMissing
			if int64(r.seq) == s.pendIdx {
				k = KindReordered
			}
			s.fault = &Fault{Index: s.pendIdx, Kind: k}
			return r.off, nil
		}
		i := s.tree.Size()
		if int64(r.seq) != i || r.seq > 1<<62 {
			switch {
			case int64(r.seq) == i+1:
				s.pend, s.pendIdx = true, i
				continue
			case int64(r.seq) > i:
				s.fault = &Fault{Index: i, Kind: KindMissing}
			default:
				s.fault = &Fault{Index: i, Kind: KindReordered}
			}
			return r.off, nil
		}
		// A whole group at once, when no checkpoint falls inside it.
		if k := (j - o) / G; j >= o && (j-o)%G == 0 && k < ngroups && groupOK[k] &&
			s.tree.CanAppendSubtree(groupLevel) && (s.ci >= len(s.cps) || s.cps[s.ci].Size >= i+G) {
			s.tree.AppendSubtree(groupLevel, groups[k])
			j += G - 1
			if s.check(); s.fault != nil {
				return r.off, nil
			}
			continue
		}
		if err := s.tree.AppendHash(leaves[j]); err != nil {
			s.fault = &Fault{Index: i, Kind: KindModified, Err: err}
			return r.off, nil
		}
		if s.check(); s.fault != nil {
			return r.off, nil
		}
	}
	return off, ferr
}

// hashAll runs f(0..n-1), spread over the available CPUs when n is large.
func hashAll(n int, f func(int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 512 || workers < 2 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Finish ends verification and returns the first fault, or nil.
func (s *State) Finish() *Fault {
	if s.fault == nil && s.pend {
		s.fault = &Fault{Index: s.pendIdx, Kind: KindMissing}
	}
	if s.fault == nil && s.tree.Size() < s.signed {
		s.fault = &Fault{Index: s.tree.Size(), Kind: KindTruncated, Err: fmt.Errorf("log has %d records, checkpoint signs %d", s.tree.Size(), s.signed)}
	}
	return earlier(s.fault, s.cpFault)
}
