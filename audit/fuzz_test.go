package audit_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
)

// FuzzRecordReader checks that the frame reader never panics, never reads
// past its input, and that whatever it accepts re-encodes to the same
// bytes.
func FuzzRecordReader(f *testing.F) {
	f.Add(frame.Append(nil, 0, []byte(`{"action":"a.b"}`)))
	f.Add(frame.Append(frame.Append(nil, 7, nil), 8, []byte("x")))
	f.Add([]byte{0, 0, 0, 1})
	f.Add(make([]byte, 64)) // zero fill, which Find skips without a checksum
	f.Fuzz(func(t *testing.T, b []byte) {
		// Find, the resynchronisation after a bad frame, agrees with
		// Next tried at every offset.
		if len(b) > 0 {
			minSeq := uint64(b[0] % 16)
			p, seq, err := frame.Find(b, audit.MaxEventSize, minSeq, len(b)+4*audit.MaxEventSize)
			want := -1
			for q := range b {
				if s, _, _, err := frame.Next(b[q:], audit.MaxEventSize); err == nil && s >= minSeq {
					want = q
					break
				}
			}
			if err == nil && p != want {
				t.Fatalf("Find = %d, want %d", p, want)
			}
			if p >= 0 {
				if s, _, _, err := frame.Next(b[p:], audit.MaxEventSize); err != nil || s != seq {
					t.Fatalf("Find returned a bad frame at %d", p)
				}
			}
		}
		for off := 0; off < len(b); {
			seq, p, n, err := frame.Next(b[off:], audit.MaxEventSize)
			if err != nil {
				if n != 0 {
					t.Fatalf("error with n=%d", n)
				}
				return
			}
			if n <= 0 || off+n > len(b) {
				t.Fatalf("bad frame size %d at %d of %d", n, off, len(b))
			}
			if got := frame.Append(nil, seq, p); string(got) != string(b[off:off+n]) {
				t.Fatalf("re-encoding differs")
			}
			off += n
		}
	})
}

// FuzzVerify feeds arbitrary segment and checkpoint bytes to the verifier:
// it must return (never panic or hang), and whatever it accepts must be a
// log whose every checkpoint it could check.
func FuzzVerify(f *testing.F) {
	k := newKeys(f, "fuzz.example/log")
	dir := f.TempDir()
	l := openLog(f, dir, k, audit.FileConfig{})
	for i := 0; i < 5; i++ {
		l.Log(context.Background(), testEvent(i))
	}
	l.Close()
	seg, _ := os.ReadFile(filepath.Join(dir, "seg-00000000000000000000.log"))
	cps, _ := os.ReadFile(filepath.Join(dir, "checkpoints"))
	f.Add(seg, cps, []byte(nil))
	f.Add(seg[:len(seg)/2], cps, []byte(nil))
	f.Add([]byte(nil), []byte(nil), []byte("garbage"))
	// Garbage, then an intact unsigned record: tampering, not residue.
	tail := append(append([]byte(nil), seg...), 0xff, 0, 0, 0, 1, 2, 3)
	f.Add(frame.Append(tail, 5, []byte(`{"action":"a.b"}`)), cps, []byte(nil))
	f.Fuzz(func(t *testing.T, seg, cps, prune []byte) {
		fsys := fstest.MapFS{
			"seg-00000000000000000000.log": {Data: seg},
			"checkpoints":                  {Data: cps},
		}
		if prune != nil {
			fsys["prune"] = &fstest.MapFile{Data: prune}
		}
		res, fault, err := logfmt.VerifyFS(context.Background(), fsys, k.verifier, false, audit.MaxEventSize)
		if err != nil || fault != nil {
			return
		}
		// Crash residue holds no intact record that follows the last
		// good one: cutting it loses nothing acknowledged.
		if r := res.State.Residue; r > 0 {
			size := uint64(res.State.Tree().Size())
			for q := len(seg) - r + 1; q < len(seg); q++ {
				if s, _, _, err := frame.Next(seg[q:], audit.MaxEventSize); err == nil && s >= size {
					t.Fatalf("residue at %d hides intact record %d at %d", len(seg)-r, s, q)
				}
			}
		}
		// Accepted: the latest checkpoint must match the records.
		if res.Latest != nil && res.Prune == nil {
			tr := merkle.New(false)
			for off := 0; off < len(seg)-res.State.Residue; {
				_, p, n, err := frame.Next(seg[off:], audit.MaxEventSize)
				if err != nil {
					t.Fatalf("accepted log has a bad frame at %d: %v", off, err)
				}
				if tr.Size() < res.Latest.Size {
					tr.Append(p)
				}
				off += n
			}
			if tr.Size() != res.Latest.Size {
				t.Fatalf("accepted log of %d records under a checkpoint of %d", tr.Size(), res.Latest.Size)
			}
			if root, _ := tr.Root(); root != res.Latest.Root {
				t.Fatal("accepted log does not match its checkpoint")
			}
		}
	})
}

// FuzzCheckInclusion feeds arbitrary proofs (what `tomkit audit
// check-proof` reads from strangers) to the checker.
func FuzzCheckInclusion(f *testing.F) {
	k := newKeys(f, "fuzz.example/log")
	dir := f.TempDir()
	l := openLog(f, dir, k, audit.FileConfig{})
	for i := 0; i < 3; i++ {
		l.Log(context.Background(), testEvent(i))
	}
	l.Close()
	p, err := audit.Prove(context.Background(), dir, 1)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(p)
	f.Add(good)
	f.Add([]byte(`{"index":-1,"proof":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p audit.InclusionProof
		if json.Unmarshal(b, &p) != nil {
			return
		}
		e, _, err := audit.CheckInclusion(k.verifier, &p)
		if err == nil && string(b) != string(good) {
			// Only the genuine record may pass.
			want, _ := audit.Prove(context.Background(), dir, p.Index)
			if want == nil || want.Record != p.Record {
				t.Fatalf("forged proof accepted: %+v", e)
			}
		}
	})
}
