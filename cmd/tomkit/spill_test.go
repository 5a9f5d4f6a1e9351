package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"testing"
)

// newTestSpill returns a spill in a fresh directory holding pt, sealed
// and finished, and that directory.
func newTestSpill(t *testing.T, pt []byte) (*spill, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := newSpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Uneven writes, so chunks do not line up with them.
	for p := pt; len(p) > 0; {
		k := min(len(p), 10007)
		if n, err := s.Write(p[:k]); n != k || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
		p = p[k:]
	}
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestSpillRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, spillChunk - 1, spillChunk, 3*spillChunk + 123} {
		pt := make([]byte, size)
		rand.Read(pt)
		s, dir := newTestSpill(t, pt)
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("spill file left a name in its directory: %v", ents)
		}
		fi, err := s.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("spill file mode %v, want 0600", fi.Mode().Perm())
		}
		if want := s.size(); fi.Size() != want {
			t.Errorf("size %d: spill file holds %d bytes, want %d", size, fi.Size(), want)
		}
		var out bytes.Buffer
		if err := s.release(&out, []byte("head:")); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(out.Bytes(), append([]byte("head:"), pt...)) {
			t.Fatalf("size %d: round trip differs (%d bytes out)", size, out.Len())
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, errSpillClosed) {
			t.Fatalf("write after release: %v", err)
		}
	}
}

// TestSpillEncrypted checks that the file holds no plaintext and that
// equal chunks seal differently (no nonce reuse).
func TestSpillEncrypted(t *testing.T) {
	pt := bytes.Repeat([]byte("secret"), 2*spillChunk/6+1)[:2*spillChunk]
	s, _ := newTestSpill(t, pt)
	raw := make([]byte, s.size())
	if _, err := s.f.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secretsecret")) {
		t.Fatal("spill file holds plaintext")
	}
	c := spillChunk + s.aead.Overhead()
	if bytes.Equal(raw[:c], raw[c:2*c]) {
		t.Fatal("two equal chunks sealed to the same bytes")
	}
}

// TestSpillTampered damages the file on disk in several ways: each fails
// with errSpillCorrupt and releases no byte, the head included.
func TestSpillTampered(t *testing.T) {
	pt := make([]byte, 4*spillChunk+500)
	rand.Read(pt)
	damage := map[string]func(t *testing.T, s *spill){
		"flip first byte": func(t *testing.T, s *spill) { flipAt(t, s.f, 0) },
		"flip last byte":  func(t *testing.T, s *spill) { flipAt(t, s.f, s.size()-1) },
		"drop last chunk": func(t *testing.T, s *spill) {
			if err := s.f.Truncate(s.size() - int64(500+s.aead.Overhead())); err != nil {
				t.Fatal(err)
			}
		},
		"cut mid chunk": func(t *testing.T, s *spill) {
			if err := s.f.Truncate(s.size() - 1); err != nil {
				t.Fatal(err)
			}
		},
		"appended bytes": func(t *testing.T, s *spill) {
			if _, err := s.f.WriteAt([]byte{0}, s.size()); err != nil {
				t.Fatal(err)
			}
		},
		"swap two chunks": func(t *testing.T, s *spill) {
			c := int64(spillChunk + s.aead.Overhead())
			a, b := make([]byte, c), make([]byte, c)
			s.f.ReadAt(a, 0)
			s.f.ReadAt(b, c)
			s.f.WriteAt(b, 0)
			s.f.WriteAt(a, c)
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestSpill(t, pt)
			f(t, s)
			var out bytes.Buffer
			err := s.release(&out, []byte("head"))
			if !errors.Is(err, errSpillCorrupt) {
				t.Fatalf("err %v, want errSpillCorrupt", err)
			}
			if out.Len() != 0 {
				t.Fatalf("released %d bytes from a damaged spill", out.Len())
			}
		})
	}
}

func flipAt(t *testing.T, f *os.File, off int64) {
	t.Helper()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestSpillBadDir(t *testing.T) {
	if _, err := newSpill(t.TempDir() + "/missing"); err == nil {
		t.Fatal("newSpill in a missing directory succeeded")
	}
}
