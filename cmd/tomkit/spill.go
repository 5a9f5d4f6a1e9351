package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spillChunk is the plaintext size of one sealed chunk of a spill file.
const spillChunk = 64 << 10

// Errors of the decrypt spill file, matched with errors.Is.
var (
	// errSpillCorrupt reports a spill file whose contents failed
	// authentication: a chunk was changed, dropped, reordered or added on
	// disk while decrypt was running.
	errSpillCorrupt = errors.New("temporary spill file failed authentication (changed or truncated on disk)")
	// errSpillClosed reports a write to a spill that has been finished.
	errSpillClosed = errors.New("spill file already finished")
)

// spill holds plaintext that decrypt may not release yet, outside
// memory: in an unlinked temporary file, sealed with AES-256-GCM under a
// random key that only this process ever holds. Plaintext is cut into
// spillChunk-sized chunks; chunk i is sealed with the nonce i (big
// endian), so no nonce repeats under the key. The spill remembers how
// many chunks it wrote and how long the last one is, so a spill file cut
// short, extended, or with a chunk changed or moved fails with
// errSpillCorrupt.
//
// Memory use is one chunk. The zero value is not usable; call newSpill.
type spill struct {
	f      *os.File
	aead   cipher.AEAD
	buf    []byte // one sealed chunk; buf[:n] holds n pending plaintext bytes
	n      int
	chunks uint64 // chunks written to f
	last   int    // plaintext length of the last chunk written
	done   bool
}

// newSpill creates the spill file in dir (os.TempDir() when empty) with
// mode 0600 and unlinks it at once, so nothing of it survives the
// process, however that ends.
func newSpill(dir string) (*spill, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	key := make([]byte, 32)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("spill: key: %w", err)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tomkit-spill-*")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: unlink: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: %w", err)
	}
	return &spill{f: f, aead: aead, buf: make([]byte, spillChunk+aead.Overhead())}, nil
}

func (s *spill) nonce(i uint64) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], i)
	return n[:]
}

// Write seals p into the spill file, a chunk at a time.
func (s *spill) Write(p []byte) (int, error) {
	if s.done {
		return 0, errSpillClosed
	}
	w := 0
	for len(p) > 0 {
		k := copy(s.buf[s.n:spillChunk], p)
		s.n += k
		p, w = p[k:], w+k
		if s.n == spillChunk {
			if err := s.seal(); err != nil {
				return w, err
			}
		}
	}
	return w, nil
}

// seal writes the pending plaintext as the next chunk.
func (s *spill) seal() error {
	ct := s.aead.Seal(s.buf[:0], s.nonce(s.chunks), s.buf[:s.n], nil)
	if _, err := s.f.Write(ct); err != nil {
		clear(s.buf)
		return fmt.Errorf("spill: write: %w", err)
	}
	s.chunks++
	s.last = s.n
	s.n = 0
	return nil
}

// finish seals the pending plaintext. Later writes fail.
func (s *spill) finish() error {
	if s.done {
		return nil
	}
	s.done = true
	if s.n > 0 {
		return s.seal()
	}
	return nil
}

// size is the length the spill file must have.
func (s *spill) size() int64 {
	if s.chunks == 0 {
		return 0
	}
	o := int64(s.aead.Overhead())
	return int64(s.chunks-1)*(spillChunk+o) + int64(s.last) + o
}

// release finishes the spill and writes head, then the spill's
// plaintext, to w. It reads the file twice: first it authenticates every
// chunk and writes nothing, then it writes head and decrypts again. So a
// spill file damaged before release releases no bytes at all, head
// included. Only a change made between the two passes by someone with
// access to this process (who could as well read its memory) could cut
// the output short, and that still fails with errSpillCorrupt.
func (s *spill) release(w io.Writer, head []byte) error {
	if err := s.finish(); err != nil {
		return err
	}
	if _, err := s.replay(io.Discard); err != nil {
		return err
	}
	if len(head) > 0 {
		if _, err := w.Write(head); err != nil {
			return err
		}
	}
	_, err := s.replay(w)
	return err
}

// replay reads the whole spill file back, authenticates each chunk and
// writes its plaintext to w.
func (s *spill) replay(w io.Writer) (int64, error) {
	fi, err := s.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("spill: %w", err)
	}
	if fi.Size() != s.size() {
		return 0, fmt.Errorf("%w: %d bytes, want %d", errSpillCorrupt, fi.Size(), s.size())
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("spill: %w", err)
	}
	defer clear(s.buf)
	var written int64
	o := s.aead.Overhead()
	for i := uint64(0); i < s.chunks; i++ {
		n := spillChunk
		if i == s.chunks-1 {
			n = s.last
		}
		ct := s.buf[:n+o]
		if _, err := io.ReadFull(s.f, ct); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return written, fmt.Errorf("%w: chunk %d of %d missing", errSpillCorrupt, i, s.chunks)
			}
			return written, fmt.Errorf("spill: read: %w", err)
		}
		pt, err := s.aead.Open(ct[:0], s.nonce(i), ct, nil)
		if err != nil {
			return written, fmt.Errorf("%w: chunk %d of %d", errSpillCorrupt, i, s.chunks)
		}
		k, err := w.Write(pt)
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	// Bytes added behind the last chunk since the size check.
	if k, _ := s.f.Read(s.buf[:1]); k != 0 {
		return written, fmt.Errorf("%w: data after chunk %d", errSpillCorrupt, s.chunks)
	}
	return written, nil
}

// Close closes the spill file; being unlinked, it is then gone.
func (s *spill) Close() error {
	clear(s.buf)
	return s.f.Close()
}
