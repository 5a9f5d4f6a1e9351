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
