package logfmt_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCheckpointRoundTrip(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	root := tlog.RecordHash([]byte("x"))
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	msg, err := logfmt.SignCheckpoint(s, 42, root, when)
	if err != nil {
		t.Fatal(err)
	}
	c, err := logfmt.OpenCheckpoint(msg, v)
	if err != nil || c.Size != 42 || c.Root != root || !c.Time.Equal(when) || c.Origin != "example.com/log" {
		t.Fatalf("%+v %v", c, err)
	}
	_, otherV, _ := note.GenerateKey(rand.Reader, "example.com/log")
	ov, _ := note.NewVerifier(otherV)
	if _, err := logfmt.OpenCheckpoint(msg, ov); err != logfmt.ErrWrongKey {
		t.Fatalf("other key: %v", err)
	}
	p, err := logfmt.SignPrune(s, 7, []tlog.Hash{root, root, root})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := logfmt.OpenPrune(p, v)
	if err != nil || pr.Min != 7 || len(pr.Frontier) != 3 {
		t.Fatalf("%+v %v", pr, err)
	}
	// A prune note is never accepted as a checkpoint.
	if _, err := logfmt.OpenCheckpoint(p, v); err == nil {
		t.Fatal("prune note accepted as checkpoint")
	}
}

// FuzzParseCheckpoint feeds arbitrary text to the checkpoint and prune
// parsers (the paths a proof checker reaches with unsigned input).
func FuzzParseCheckpoint(f *testing.F) {
	f.Add("example.com/log\n42\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 2026-01-02T03:04:05Z\n")
	f.Add("tomkit audit prune v1\nexample.com/log\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := logfmt.ParseCheckpoint(text)
		if err == nil {
			again, err := logfmt.ParseCheckpoint(logfmt.FormatCheckpoint(c.Origin, c.Size, c.Root, c.Time))
			if err != nil || again.Size != c.Size || again.Root != c.Root {
				t.Fatalf("re-parse: %+v %v", again, err)
			}
		}
		logfmt.OpenCheckpoint([]byte(text), nil)
		logfmt.OpenPrune([]byte(text), nil)
	})
}

// TestCheckpointResidue: an incomplete last checkpoint frame or a zero tail
// is crash residue, but not when an intact checkpoint follows it.
func TestCheckpointResidue(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	var data []byte
	var starts []int
	for i := 0; i < 3; i++ {
		starts = append(starts, len(data))
		msg, err := logfmt.SignCheckpoint(s, int64(10*i), tlog.RecordHash([]byte{byte(i)}), time.Unix(int64(i), 0))
		if err != nil {
			t.Fatal(err)
		}
		data = frame.Append(data, uint64(i), msg)
	}
	_, _, n0, _ := frame.Next(data, logfmt.MaxNote)

	cps, fault, residue, err := logfmt.ReadCheckpoints(append(append([]byte(nil), data...), make([]byte, 100)...), v)
	if err != nil || fault != nil || residue != 100 || len(cps) != 3 {
		t.Fatalf("zero tail: %d %v %d %v", len(cps), fault, residue, err)
	}
	cps, fault, residue, err = logfmt.ReadCheckpoints(data[:len(data)-7], v)
	if err != nil || fault != nil || residue != len(data)-7-starts[2] || len(cps) != 2 {
		t.Fatalf("torn last checkpoint: %d %v %d %v", len(cps), fault, residue, err)
	}

	// A header (with a valid checksum) whose length swallows the later
	// checkpoints: they are intact, so it is no torn write.
	forged := frame.Append(nil, 1, make([]byte, len(data)))[:frame.HeaderSize]
	bad := append(append(append([]byte(nil), data[:n0]...), forged...), data[n0:]...)
	cps, fault, residue, err = logfmt.ReadCheckpoints(bad, v)
	if err != nil || fault == nil || fault.Index != 0 || fault.Kind != logfmt.KindBadSignature || residue != 0 || len(cps) != 1 {
		t.Fatalf("swallowed checkpoints: %d %v %d %v", len(cps), fault, residue, err)
	}
}

// FuzzOpenRotation signs arbitrary note text with a test key and parses
// it as a rotation note: a note that parses signs again to the same
// rotation, and nothing panics.
func FuzzOpenRotation(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.com/log")
	_, next, _ := note.GenerateKey(rand.Reader, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	f.Add("tomkit audit rotate v1\nexample.com/log\n42\n" + next + "\n")
	f.Add("tomkit audit rotate v1\nexample.com/log\n042\n" + next + "\n")
	f.Add("tomkit audit rotate v1\nother\n1\nx\n")
	f.Fuzz(func(t *testing.T, text string) {
		msg, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			return
		}
		r, err := logfmt.OpenRotation(msg, v)
		if err != nil {
			return
		}
		again, err := logfmt.SignRotation(s, r.Size, r.Next)
		if err != nil {
			t.Fatalf("re-sign %+v: %v", r, err)
		}
		if r2, err := logfmt.OpenRotation(again, v); err != nil || r2 != r {
			t.Fatalf("re-parse: %+v %v, want %+v", r2, err, r)
		}
		if string(again) != string(msg) {
			t.Fatalf("not canonical: %q re-signs as %q", msg, again)
		}
	})
}
