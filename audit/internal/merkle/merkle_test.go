package merkle_test

import (
	"fmt"
	"testing"

	"github.com/tomkit/tomkit/audit/internal/merkle"
	"golang.org/x/mod/sumdb/tlog"
)

// TestFrontierMatchesTlog checks the allocation-free frontier against
// tlog's stored-hash tree at every size up to 1100, and a tree started
// from a frontier against one built from scratch.
func TestFrontierMatchesTlog(t *testing.T) {
	fast := merkle.New(false)
	kept := merkle.New(true)
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var mid *merkle.Tree
	for n := int64(0); n < 1100; n++ {
		want, err := tlog.TreeHash(n, reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range []*merkle.Tree{fast, kept, mid} {
			if tr == nil {
				continue
			}
			got, err := tr.Root()
			if err != nil || got != want {
				t.Fatalf("size %d: root %v (%v), want %v", n, got, err, want)
			}
		}
		if n == 613 {
			mid, err = merkle.Start(n, fast.Frontier(), false)
			if err != nil {
				t.Fatal(err)
			}
		}
		data := []byte(fmt.Sprintf("record %d", n))
		hs, err := tlog.StoredHashes(n, data, reader)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		fast.Append(data)
		kept.Append(data)
		if mid != nil {
			mid.Append(data)
		}
	}
	if _, err := merkle.Start(5, nil, false); err == nil {
		t.Fatal("Start accepted a short frontier")
	}
}

func TestAppendSubtree(t *testing.T) {
	for _, level := range []int{0, 1, 4} {
		leafwise := merkle.New(false)
		grouped := merkle.New(false)
		g := 1 << level
		for n := 0; n < 40*g; n += g {
			sub := merkle.New(false)
			for i := n; i < n+g; i++ {
				d := []byte(fmt.Sprintf("r%d", i))
				leafwise.Append(d)
				sub.Append(d)
			}
			h, _ := sub.Root()
			if !grouped.CanAppendSubtree(level) {
				t.Fatalf("level %d size %d: cannot append", level, grouped.Size())
			}
			grouped.AppendSubtree(level, h)
			a, _ := leafwise.Root()
			b, _ := grouped.Root()
			if a != b || leafwise.Size() != grouped.Size() {
				t.Fatalf("level %d size %d: roots differ", level, leafwise.Size())
			}
		}
	}
	odd := merkle.New(false)
	odd.Append([]byte("x"))
	if odd.CanAppendSubtree(1) || merkle.New(true).CanAppendSubtree(0) {
		t.Fatal("misaligned or keeping tree accepts a subtree")
	}
}

func TestPerfectRoot(t *testing.T) {
	for _, n := range []int{1, 2, 16, 64} {
		tr := merkle.New(false)
		var leaves []tlog.Hash
		for i := 0; i < n; i++ {
			leaves = append(leaves, tlog.RecordHash([]byte{byte(i)}))
			tr.AppendHash(leaves[i])
		}
		if want, _ := tr.Root(); merkle.PerfectRoot(leaves) != want {
			t.Fatalf("n=%d: roots differ", n)
		}
	}
}
