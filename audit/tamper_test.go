package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"github.com/tomkit/tomkit/internal/testclock"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// tamperLog is a closed 1,000-event log loaded into memory: its segments,
// the byte offset of every record, and the checkpoints file.
// logBytes is a closed log directory read into memory.
type logBytes struct {
	dir   string
	keys  testKeys
	segs  [][]byte
	names []string
	// rec[i] locates record i: segment, offset, length.
	rec []struct{ seg, off, n int }
	cps []byte
}

// readLog reads the segments and checkpoints of the log in dir and locates
// every record.
func readLog(t *testing.T, dir string, k testKeys) logBytes {
	t.Helper()
	lb := logBytes{dir: dir, keys: k}
	segs, _ := logfmt.ListSegments(os.DirFS(dir))
	for si, s := range segs {
		b, err := os.ReadFile(filepath.Join(dir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		lb.segs = append(lb.segs, b)
		lb.names = append(lb.names, s.Name)
		for off := 0; off < len(b); {
			_, _, n, err := frame.Next(b[off:], audit.MaxEventSize)
			if err != nil {
				t.Fatal(err)
			}
			lb.rec = append(lb.rec, struct{ seg, off, n int }{si, off, n})
			off += n
		}
	}
	lb.cps, _ = os.ReadFile(filepath.Join(dir, "checkpoints"))
	return lb
}

type tamperLog struct {
	logBytes
	// sizes of the checkpoints, in file order
	cpSizes []int64
}

const tamperN = 1000

func buildTamperLog(t *testing.T) *tamperLog {
	t.Helper()
	ctx := context.Background()
	k := newKeys(t, "tamper.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{SegmentSize: 16 << 10})
	// Checkpoints at 0 (creation), every 250 records, and on Close.
	for c := 0; c < tamperN/250; c++ {
		var wg sync.WaitGroup
		for g := 0; g < 10; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					if err := l.Log(ctx, testEvent(c*250+g*25+i)); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if c < 3 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tl := &tamperLog{logBytes: readLog(t, dir, k), cpSizes: []int64{0, 250, 500, 750, 1000}}
	if len(tl.rec) != tamperN || len(tl.segs) < 4 {
		t.Fatalf("%d records in %d segments", len(tl.rec), len(tl.segs))
	}
	return tl
}

// states returns the verification state before each record 0..N, reusing
// the prefix: verifying record i costs one frame, not i.
func (tl *tamperLog) states(t *testing.T, cps []byte) []*logfmt.State {
	t.Helper()
	list, cpFault, _, err := logfmt.ReadCheckpoints(cps, tl.keys.verifier)
	if err != nil || cpFault != nil || len(list) != len(tl.cpSizes) {
		t.Fatalf("checkpoints: %d, %v, %v", len(list), cpFault, err)
	}
	st := logfmt.NewState(merkle.New(false), list, nil, audit.MaxEventSize)
	out := make([]*logfmt.State, 0, tamperN+1)
	for _, r := range tl.rec {
		out = append(out, st.Clone())
		st.Feed(tl.segs[r.seg][r.off:r.off+r.n], false)
	}
	out = append(out, st)
	if f := st.Clone().Finish(); f != nil {
		t.Fatalf("intact log: %v", f)
	}
	return out
}

// finish feeds the rest of the log from record i's segment, with that
// segment's remaining bytes replaced by rest and later segments by later,
// and returns the fault.
func (tl *tamperLog) finish(st *logfmt.State, seg int, rest []byte, later [][]byte) *logfmt.Fault {
	st = st.Clone()
	st.Feed(rest, len(later) == 0)
	for i, s := range later {
		if st.Done() {
			break
		}
		st.Feed(s, i == len(later)-1)
	}
	return st.Finish()
}

func wantFault(t *testing.T, what string, f *logfmt.Fault, index int64, kinds ...logfmt.Kind) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: not detected", what)
	}
	for _, k := range kinds {
		if f.Index == index && f.Kind == k {
			return
		}
	}
	t.Fatalf("%s: got %v, want record %d %v", what, f, index, kinds)
}

func TestTamperExhaustive(t *testing.T) {
	t.Parallel()
	tl := buildTamperLog(t)
	states := tl.states(t, tl.cps)

	t.Run("flip every byte of every record", func(t *testing.T) {
		n := 0
		for i, r := range tl.rec {
			seg := tl.segs[r.seg]
			rest := seg[r.off:]
			for b := r.off; b < r.off+r.n; b++ {
				seg[b] ^= 0x01
				f := tl.finish(states[i], r.seg, rest, tl.segs[r.seg+1:])
				seg[b] ^= 0x01
				if f == nil || f.Index != int64(i) || f.Kind != logfmt.KindModified {
					wantFault(t, "flip", f, int64(i), logfmt.KindModified)
				}
				n++
			}
		}
		t.Logf("%d byte flips in %d segments detected", n, len(tl.segs))
	})

	t.Run("flip every byte of the checkpoints file", func(t *testing.T) {
		// Offsets of each checkpoint frame.
		var starts []int
		for off := 0; off < len(tl.cps); {
			_, _, n, err := frame.Next(tl.cps[off:], logfmt.MaxNote)
			if err != nil {
				t.Fatal(err)
			}
			starts = append(starts, off)
			off += n
		}
		cps := append([]byte(nil), tl.cps...)
		memo := map[string]*logfmt.Fault{}
		for b := range cps {
			c := sort.Search(len(starts), func(j int) bool { return starts[j] > b }) - 1
			want := int64(0)
			if c > 0 {
				want = tl.cpSizes[c-1]
			}
			cps[b] ^= 0x01
			list, cpFault, _, err := logfmt.ReadCheckpoints(cps, tl.keys.verifier)
			cps[b] ^= 0x01
			if err != nil {
				t.Fatalf("byte %d: %v", b, err)
			}
			// The records are intact, so the outcome depends only on
			// the checkpoints that survived and the checkpoint fault:
			// feed the records once per distinct outcome of
			// ReadCheckpoints.
			key := fmt.Sprint(cpFault)
			for _, c := range list {
				key += fmt.Sprintf(" %d:%x", c.Size, c.Root)
			}
			f, ok := memo[key]
			if !ok {
				st := logfmt.NewState(merkle.New(false), list, cpFault, audit.MaxEventSize)
				for _, s := range tl.segs {
					st.Feed(s, false)
				}
				f = st.Finish()
				memo[key] = f
			}
			wantFault(t, fmt.Sprintf("checkpoint flip at byte %d", b), f, want, logfmt.KindBadSignature)
		}
	})

	t.Run("delete each record", func(t *testing.T) {
		for i, r := range tl.rec {
			seg := tl.segs[r.seg]
			rest := append(append([]byte(nil), seg[r.off:r.off]...), seg[r.off+r.n:]...)
			f := tl.finish(states[i], r.seg, rest, tl.segs[r.seg+1:])
			if i == tamperN-1 {
				wantFault(t, "delete last", f, int64(i), logfmt.KindTruncated)
				continue
			}
			wantFault(t, "delete", f, int64(i), logfmt.KindMissing)
		}
	})

	t.Run("swap adjacent records", func(t *testing.T) {
		for i := 0; i < tamperN-1; i++ {
			a, b := tl.rec[i], tl.rec[i+1]
			fa := tl.segs[a.seg][a.off : a.off+a.n]
			fb := tl.segs[b.seg][b.off : b.off+b.n]
			var f *logfmt.Fault
			if a.seg == b.seg {
				rest := append(append(append([]byte(nil), fb...), fa...), tl.segs[a.seg][b.off+b.n:]...)
				f = tl.finish(states[i], a.seg, rest, tl.segs[a.seg+1:])
			} else {
				// Across a segment boundary.
				later := append([][]byte{append(append([]byte(nil), fa...), tl.segs[b.seg][b.off+b.n:]...)}, tl.segs[b.seg+1:]...)
				f = tl.finish(states[i], a.seg, fb, later)
			}
			wantFault(t, "swap", f, int64(i), logfmt.KindReordered)
		}
	})

	t.Run("truncate at every record boundary", func(t *testing.T) {
		for i, r := range tl.rec {
			f := tl.finish(states[i], r.seg, nil, nil)
			wantFault(t, "truncate", f, int64(i), logfmt.KindTruncated)
		}
	})

	t.Run("truncate inside every record", func(t *testing.T) {
		for i, r := range tl.rec {
			seg := tl.segs[r.seg]
			f := tl.finish(states[i], r.seg, seg[r.off:r.off+r.n/2], nil)
			wantFault(t, "torn record inside signed range", f, int64(i), logfmt.KindTruncated)
		}
	})
}

// TestTamperOnDisk runs a sample of the exhaustive cases through the
// public API on real files, so that the in-memory shortcut above cannot
// drift from what Verify does.
func TestTamperOnDisk(t *testing.T) {
	t.Parallel()
	tl := buildTamperLog(t)
	ctx := context.Background()
	restore := func() {
		for i, n := range tl.names {
			os.WriteFile(filepath.Join(tl.dir, n), tl.segs[i], 0o600)
		}
		os.WriteFile(filepath.Join(tl.dir, "checkpoints"), tl.cps, 0o600)
		ents, _ := os.ReadDir(tl.dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "seg-") && !contains(tl.names, e.Name()) {
				os.Remove(filepath.Join(tl.dir, e.Name()))
			}
		}
	}
	check := func(what string, index int64, kind audit.Kind) {
		t.Helper()
		_, err := audit.Verify(ctx, tl.dir, tl.keys.verifier)
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.Index != index || ve.Kind != kind {
			t.Fatalf("%s: got %v, want record %d %v", what, err, index, kind)
		}
		restore()
	}
	if _, err := audit.Verify(ctx, tl.dir, tl.keys.verifier); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 137, 499, 500, 998} {
		r := tl.rec[i]
		p := filepath.Join(tl.dir, tl.names[r.seg])
		b := append([]byte(nil), tl.segs[r.seg]...)
		b[r.off+r.n/2] ^= 0x80
		os.WriteFile(p, b, 0o600)
		check("flip", int64(i), audit.KindModified)

		b = append(append([]byte(nil), tl.segs[r.seg][:r.off]...), tl.segs[r.seg][r.off+r.n:]...)
		os.WriteFile(p, b, 0o600)
		check("delete", int64(i), audit.KindMissing)

		os.WriteFile(p, tl.segs[r.seg][:r.off], 0o600)
		for _, n := range tl.names[r.seg+1:] {
			os.Remove(filepath.Join(tl.dir, n))
		}
		check("truncate", int64(i), audit.KindTruncated)

		if n := tl.rec[i+1]; n.seg == r.seg {
			b = append([]byte(nil), tl.segs[r.seg][:r.off]...)
			b = append(b, tl.segs[r.seg][n.off:n.off+n.n]...)
			b = append(b, tl.segs[r.seg][r.off:r.off+r.n]...)
			b = append(b, tl.segs[r.seg][n.off+n.n:]...)
			os.WriteFile(p, b, 0o600)
			check("swap", int64(i), audit.KindReordered)
		}
	}
	cps := append([]byte(nil), tl.cps...)
	cps[len(cps)-10] ^= 0x01
	os.WriteFile(filepath.Join(tl.dir, "checkpoints"), cps, 0o600)
	check("last checkpoint", 750, audit.KindBadSignature)

	// A forger who rewrites a record and its checksums is caught by the
	// tree: the fault points at the first record after the last matching
	// checkpoint.
	r := tl.rec[600]
	_, payload, _, _ := frame.Next(tl.segs[r.seg][r.off:], audit.MaxEventSize)
	forged := frame.Append(nil, 600, []byte(strings.Replace(string(payload), "doc/", "dox/", 1)))
	b := append(append(append([]byte(nil), tl.segs[r.seg][:r.off]...), forged...), tl.segs[r.seg][r.off+r.n:]...)
	os.WriteFile(filepath.Join(tl.dir, tl.names[r.seg]), b, 0o600)
	check("forged record", 500, audit.KindModified)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// crashedLog is a log whose writer was never closed, as after a crash:
// its last records are acknowledged (fsynced) but not covered by any
// checkpoint.
type crashedLog struct {
	logBytes
}

const (
	crashedN        = 200
	crashedUnsigned = 50
)

func buildCrashedLog(t *testing.T) *crashedLog {
	t.Helper()
	ctx := context.Background()
	k := newKeys(t, "tail.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{SegmentSize: 2 << 10})
	for i := 0; i < crashedN; i++ {
		if i == crashedN-crashedUnsigned {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Log(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every Log returned: the files now hold what a crash would leave.
	crashed := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o600)
	}
	l.Close()
	cl := &crashedLog{readLog(t, crashed, k)}
	tail := cl.rec[crashedN-crashedUnsigned:]
	if len(cl.rec) != crashedN || tail[0].seg == tail[len(tail)-1].seg {
		t.Fatalf("%d records; the unsigned tail must span segments", len(cl.rec))
	}
	rep, err := audit.Verify(ctx, crashed, k.verifier)
	if err != nil || rep.Size != crashedN || rep.Checkpoint.Size != crashedN-crashedUnsigned || rep.Residue != 0 {
		t.Fatalf("crashed log: %+v %v", rep, err)
	}
	return cl
}

// TestTamperUnsignedTail flips every byte of every record after the last
// checkpoint. Only checksums protect those records, and a crash can leave
// a torn last write there, yet a damaged record followed by an intact one
// is no torn write: it must be reported as tampering at that record, and
// Open must refuse the log rather than cut acknowledged records off. A
// flip inside the very last record is indistinguishable from a torn
// write, and is crash residue.
func TestTamperUnsignedTail(t *testing.T) {
	t.Parallel()
	cl := buildCrashedLog(t)
	list, cpFault, _, err := logfmt.ReadCheckpoints(cl.cps, cl.keys.verifier)
	if err != nil || cpFault != nil {
		t.Fatalf("checkpoints: %v %v", cpFault, err)
	}
	st := logfmt.NewState(merkle.New(false), list, nil, audit.MaxEventSize)
	states := make([]*logfmt.State, 0, crashedN)
	for _, r := range cl.rec {
		states = append(states, st.Clone())
		st.Feed(cl.segs[r.seg][r.off:r.off+r.n], false)
	}
	lastSeg := len(cl.segs) - 1
	finish := func(i int) *logfmt.State {
		r := cl.rec[i]
		st := states[i].Clone()
		st.Feed(cl.segs[r.seg][r.off:], r.seg == lastSeg)
		for s := r.seg + 1; s <= lastSeg && !st.Done(); s++ {
			st.Feed(cl.segs[s], s == lastSeg)
		}
		return st
	}

	t.Run("flip every byte", func(t *testing.T) {
		n := 0
		for i := crashedN - crashedUnsigned; i < crashedN; i++ {
			r := cl.rec[i]
			seg := cl.segs[r.seg]
			for b := r.off; b < r.off+r.n; b++ {
				seg[b] ^= 0x01
				st := finish(i)
				seg[b] ^= 0x01
				f := st.Finish()
				if i < crashedN-1 {
					if f == nil || f.Index != int64(i) || f.Kind != logfmt.KindModified {
						wantFault(t, fmt.Sprintf("flip record %d byte %d", i, b-r.off), f, int64(i), logfmt.KindModified)
					}
					n++
					continue
				}
				// The last record: a torn write, not tampering. (The
				// residue offset is relative to the bytes fed, which
				// start at the record.)
				if f != nil || st.Tree().Size() != crashedN-1 || st.Residue != r.n || st.ResidueOffset != 0 {
					t.Fatalf("flip in last record byte %d: %v, size %d, residue %d at %d", b-r.off, f, st.Tree().Size(), st.Residue, st.ResidueOffset)
				}
			}
		}
		t.Logf("%d byte flips in the unsigned tail detected", n)
	})

	t.Run("zero or garbage instead of a record", func(t *testing.T) {
		for i := crashedN - crashedUnsigned; i < crashedN-1; i++ {
			r := cl.rec[i]
			seg := cl.segs[r.seg]
			saved := append([]byte(nil), seg[r.off:r.off+r.n]...)
			for _, fill := range []byte{0x00, 0xff, 0x5a} {
				for b := r.off; b < r.off+r.n; b++ {
					seg[b] = fill
				}
				f := finish(i).Finish()
				copy(seg[r.off:], saved)
				wantFault(t, fmt.Sprintf("record %d filled with %#x", i, fill), f, int64(i), logfmt.KindModified)
			}
		}
	})

	t.Run("torn end of a segment that is not the last", func(t *testing.T) {
		n := 0
		for i := crashedN - crashedUnsigned; i < crashedN-1; i++ {
			r := cl.rec[i]
			if cl.rec[i+1].seg == r.seg {
				continue // not the last record of its segment
			}
			seg := cl.segs[r.seg]
			st := states[i].Clone()
			st.Feed(seg[r.off:r.off+r.n/2], false)
			for s := r.seg + 1; s <= lastSeg && !st.Done(); s++ {
				st.Feed(cl.segs[s], s == lastSeg)
			}
			wantFault(t, fmt.Sprintf("record %d torn at the end of segment %d", i, r.seg), st.Finish(), int64(i), logfmt.KindTruncated)
			n++
		}
		if n == 0 {
			t.Fatal("no segment boundary in the unsigned tail")
		}
	})

	t.Run("Open refuses and loses nothing", func(t *testing.T) {
		ctx := context.Background()
		for i := crashedN - crashedUnsigned; i < crashedN-1; i++ {
			r := cl.rec[i]
			// A payload byte and a length byte (header checksum).
			for _, at := range []int{r.off + r.n/2, r.off + 2} {
				p := filepath.Join(cl.dir, cl.names[r.seg])
				b := append([]byte(nil), cl.segs[r.seg]...)
				b[at] ^= 0x10
				os.WriteFile(p, b, 0o600)
				_, err := audit.Verify(ctx, cl.dir, cl.keys.verifier)
				var ve *audit.VerifyError
				if !errors.As(err, &ve) || ve.Index != int64(i) || ve.Kind != audit.KindModified {
					t.Fatalf("verify record %d byte %d: %v", i, at-r.off, err)
				}
				l, err := audit.Open(ctx, cl.dir, audit.FileConfig{Signer: cl.keys.signer, Clock: testclock.New(nil, nil)})
				if !errors.As(err, &ve) || ve.Index != int64(i) {
					if l != nil {
						l.Close()
					}
					t.Fatalf("open record %d byte %d: %v", i, at-r.off, err)
				}
				for s, name := range cl.names {
					got, _ := os.ReadFile(filepath.Join(cl.dir, name))
					want := cl.segs[s]
					if s == r.seg {
						want = b
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("record %d byte %d: Open changed %s", i, at-r.off, name)
					}
				}
				os.WriteFile(p, cl.segs[r.seg], 0o600)
			}
		}

		// A flip in the last record: residue, cut by Open, and every
		// other record kept.
		r := cl.rec[crashedN-1]
		p := filepath.Join(cl.dir, cl.names[r.seg])
		b := append([]byte(nil), cl.segs[r.seg]...)
		b[r.off+r.n/2] ^= 0x10
		os.WriteFile(p, b, 0o600)
		rep, err := audit.Verify(ctx, cl.dir, cl.keys.verifier)
		if err != nil || rep.Size != crashedN-1 || rep.Residue != int64(r.n) {
			t.Fatalf("flip in last record: %+v %v", rep, err)
		}
		l := openLog(t, cl.dir, cl.keys, audit.FileConfig{})
		if l.Recovered() != int64(r.n) {
			t.Fatalf("recovered %d, want %d", l.Recovered(), r.n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		have := readResources(t, cl.dir)
		for i := 0; i < crashedN-1; i++ {
			if !have[fmt.Sprintf("doc/%d", i)] {
				t.Fatalf("acknowledged record %d lost", i)
			}
		}
		if rep, err := audit.Verify(ctx, cl.dir, cl.keys.verifier); err != nil || rep.Size != crashedN || rep.Residue != 0 {
			t.Fatalf("after recovery: %+v %v", rep, err)
		}
	})
}
