// Package merkle keeps the state of an RFC 6962 tree as it grows, using
// golang.org/x/mod/sumdb/tlog for every hash. It holds only the tree's
// frontier (one hash per set bit of the size), unless asked to keep every
// stored hash for proofs.
package merkle

import (
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree is a growing tree. The zero Tree is empty.
type Tree struct {
	n        int64
	frontier [64]tlog.Hash // frontier[l] is valid when bit l of n is set

	keep bool
	base int64               // stored-hash index of all[0]
	all  []tlog.Hash         // every stored hash since base, when keep
	seed map[int64]tlog.Hash // frontier at a prune point, when keep
}

// ErrMissingHash is returned when a hash below the tree's start point is
// needed.
var ErrMissingHash = errors.New("merkle: hash not available")

// New returns an empty tree. If keep is set, every stored hash is kept so
// that proofs can be made.
func New(keep bool) *Tree { return &Tree{keep: keep} }

// Frontier returns the frontier hashes of t, highest level first.
func (t *Tree) Frontier() []tlog.Hash {
	var out []tlog.Hash
	for l := 63; l >= 0; l-- {
		if t.n&(1<<l) != 0 {
			out = append(out, t.frontier[l])
		}
	}
	return out
}

// Start returns a tree of size n whose records below n are known only by
// the frontier hashes f (highest level first), as returned by Frontier.
func Start(n int64, f []tlog.Hash, keep bool) (*Tree, error) {
	t := &Tree{n: n, keep: keep}
	i := 0
	for l := 63; l >= 0; l-- {
		if n&(1<<l) != 0 {
			if i >= len(f) {
				return nil, fmt.Errorf("merkle: %d frontier hashes for size %d", len(f), n)
			}
			t.frontier[l] = f[i]
			i++
		}
	}
	if i != len(f) {
		return nil, fmt.Errorf("merkle: %d frontier hashes for size %d", len(f), n)
	}
	if keep {
		t.base = tlog.StoredHashCount(n)
		t.seed = make(map[int64]tlog.Hash)
		for l := 0; l < 64; l++ {
			if n&(1<<l) != 0 {
				t.seed[tlog.StoredHashIndex(l, n>>l-1)] = t.frontier[l]
			}
		}
	}
	return t, nil
}

// Size returns the number of records in t.
func (t *Tree) Size() int64 { return t.n }

// Clone returns a copy of t that shares nothing mutable with it. A clone
// does not keep stored hashes.
func (t *Tree) Clone() *Tree {
	return &Tree{n: t.n, frontier: t.frontier}
}

// Append adds a record with the given data.
func (t *Tree) Append(data []byte) error {
	return t.AppendHash(tlog.RecordHash(data))
}

// AppendHash adds a record whose tlog.RecordHash is h.
//
// Without kept hashes it merges h into the frontier directly, combining
// with tlog.NodeHash exactly as tlog.StoredHashesForRecordHash does (each
// trailing 1 bit of the size completes a subtree), but without its
// allocations; TestFrontierMatchesTlog checks the two agree.
func (t *Tree) AppendHash(h tlog.Hash) error {
	if !t.keep {
		t.appendNode(0, h)
		return nil
	}
	hashes, err := tlog.StoredHashesForRecordHash(t.n, h, t)
	if err != nil {
		return err
	}
	m := len(hashes) - 1
	if t.keep {
		t.all = append(t.all, hashes...)
	}
	t.frontier[m] = hashes[m]
	t.n++
	return nil
}

// Root returns the tree hash of t.
func (t *Tree) Root() (tlog.Hash, error) { return tlog.TreeHash(t.n, t) }

// RootAt returns the tree hash at an earlier size n; only available when
// t keeps its hashes, or when n is t's size.
func (t *Tree) RootAt(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t) }

// ReadHashes implements tlog.HashReader.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		h, ok := t.read(idx)
		if !ok {
			return nil, fmt.Errorf("%w: stored hash %d", ErrMissingHash, idx)
		}
		out[i] = h
	}
	return out, nil
}

func (t *Tree) read(idx int64) (tlog.Hash, bool) {
	if t.keep {
		if idx >= t.base && idx-t.base < int64(len(t.all)) {
			return t.all[idx-t.base], true
		}
		if h, ok := t.seed[idx]; ok {
			return h, true
		}
	}
	level, k := tlog.SplitStoredHashIndex(idx)
	if level < 64 && t.n&(1<<level) != 0 && k == t.n>>level-1 {
		return t.frontier[level], true
	}
	return tlog.Hash{}, false
}

func (t *Tree) appendNode(level int, h tlog.Hash) {
	m := bits.TrailingZeros64(^uint64(t.n >> level))
	for i := level; i < level+m; i++ {
		h = tlog.NodeHash(t.frontier[i], h)
	}
	t.frontier[level+m] = h
	t.n += 1 << level
}

// CanAppendSubtree reports whether a complete subtree of 2^level records
// can be appended with [Tree.AppendSubtree]: t's size is a multiple of
// 2^level and t does not keep hashes.
func (t *Tree) CanAppendSubtree(level int) bool {
	return !t.keep && t.n&(1<<level-1) == 0
}

// AppendSubtree appends 2^level records at once, given the hash of the
// complete subtree they form (the root of a Tree of exactly those
// records). It panics unless [Tree.CanAppendSubtree] holds.
func (t *Tree) AppendSubtree(level int, h tlog.Hash) {
	if !t.CanAppendSubtree(level) {
		panic("merkle: misaligned subtree")
	}
	t.appendNode(level, h)
}

// PerfectRoot returns the hash of the complete subtree over leaves, whose
// length must be a power of two no larger than 64. It hashes in place.
func PerfectRoot(leaves []tlog.Hash) tlog.Hash {
	var buf [64]tlog.Hash
	n := copy(buf[:], leaves)
	for ; n > 1; n /= 2 {
		for i := 0; i < n/2; i++ {
			buf[i] = tlog.NodeHash(buf[2*i], buf[2*i+1])
		}
	}
	return buf[0]
}
