// Package snapshot is the stream format of a retention backup: a magic
// line, then one entry per object (key, encoded metadata record, content
// in length-prefixed chunks, SHA-256 of the content), then a trailer with
// the entry count and a manifest digest over every entry's key, record and
// content digest.
//
// A [Reader] checks every content digest as the content is read, and the
// count and manifest at the end, so that a truncated, reordered or altered
// snapshot is [ErrCorrupt], never a silently partial restore.
package snapshot

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

const magic = "TKSNAP1\n"

// Limits of the format.
const (
	MaxKey    = 1 << 10
	MaxRecord = 4 << 10
	MaxChunk  = 1 << 20
)

// ErrCorrupt reports a snapshot that does not parse or whose digests do not
// match.
var ErrCorrupt = errors.New("retention: corrupt backup snapshot")

// Writer writes a snapshot.
type Writer struct {
	w        *bufio.Writer
	manifest hash.Hash
	n        uint64
	buf      []byte
}

// NewWriter writes the magic line to w and returns a Writer.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(magic); err != nil {
		return nil, err
	}
	return &Writer{w: bw, manifest: sha256.New(), buf: make([]byte, 64<<10)}, nil
}

func putBytes(w io.Writer, b []byte) error {
	var l [binary.MaxVarintLen64]byte
	if _, err := w.Write(l[:binary.PutUvarint(l[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// Add writes one entry and returns the SHA-256 and size of its content.
func (w *Writer) Add(key string, rec []byte, content io.Reader) ([32]byte, int64, error) {
	var sum [32]byte
	if len(key) == 0 || len(key) > MaxKey || len(rec) > MaxRecord {
		return sum, 0, fmt.Errorf("%w: entry too large", ErrCorrupt)
	}
	if err := w.w.WriteByte('E'); err != nil {
		return sum, 0, err
	}
	if err := putBytes(w.w, []byte(key)); err != nil {
		return sum, 0, err
	}
	if err := putBytes(w.w, rec); err != nil {
		return sum, 0, err
	}
	h := sha256.New()
	var size int64
	for {
		n, err := io.ReadFull(content, w.buf)
		if n > 0 {
			h.Write(w.buf[:n])
			size += int64(n)
			if err := putBytes(w.w, w.buf[:n]); err != nil {
				return sum, 0, err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return sum, 0, err
		}
	}
	if err := putBytes(w.w, nil); err != nil {
		return sum, 0, err
	}
	copy(sum[:], h.Sum(nil))
	if _, err := w.w.Write(sum[:]); err != nil {
		return sum, 0, err
	}
	_ = putBytes(w.manifest, []byte(key))
	_ = putBytes(w.manifest, rec)
	w.manifest.Write(sum[:])
	w.n++
	return sum, size, nil
}

// Close writes the trailer and flushes. It returns the manifest digest.
func (w *Writer) Close() ([32]byte, error) {
	var m [32]byte
	copy(m[:], w.manifest.Sum(nil))
	if err := w.w.WriteByte('T'); err != nil {
		return m, err
	}
	var l [binary.MaxVarintLen64]byte
	if _, err := w.w.Write(l[:binary.PutUvarint(l[:], w.n)]); err != nil {
		return m, err
	}
	if _, err := w.w.Write(m[:]); err != nil {
		return m, err
	}
	return m, w.w.Flush()
}

// Entry is one object of a snapshot. Its Content must be read to the end
// (or abandoned by calling Next) before the next entry.
type Entry struct {
	Key     string
	Record  []byte
	Content io.Reader
	// Sum is valid once Content returned io.EOF.
	Sum [32]byte
}

// Reader reads a snapshot.
type Reader struct {
	src      *errRecorder
	r        *bufio.Reader
	manifest hash.Hash
	n        uint64
	cur      *content
	// Manifest is valid once Next returned io.EOF.
	Manifest [32]byte
	// Count is valid once Next returned io.EOF.
	Count uint64
}

// NewReader checks the magic line of r and returns a Reader.
func NewReader(r io.Reader) (*Reader, error) {
	src := &errRecorder{r: r}
	rd := &Reader{src: src, r: bufio.NewReaderSize(src, 64<<10), manifest: sha256.New()}
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(rd.r, m); err != nil || string(m) != magic {
		return nil, rd.corrupt("bad magic", err)
	}
	return rd, nil
}

// errRecorder remembers the last error of the underlying reader, so that
// an I/O or authentication failure of the stream is told apart from a
// malformed snapshot.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func corrupt(what string, err error) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }

// corrupt returns the underlying stream's own error when it failed, and
// [ErrCorrupt] otherwise.
func (r *Reader) corrupt(what string, err error) error {
	if err != nil && r.src.err != nil && errors.Is(err, r.src.err) {
		return err
	}
	return corrupt(what, err)
}

func (r *Reader) bytes(max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		return nil, r.corrupt("bad length", err)
	}
	if n > uint64(max) {
		return nil, corrupt("length out of range", nil)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return nil, r.corrupt("short field", err)
	}
	return b, nil
}

// Next returns the next entry, or io.EOF after a trailer whose count and
// manifest match. Anything else is [ErrCorrupt] or an error of the
// underlying reader.
func (r *Reader) Next() (*Entry, error) {
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return nil, err
		}
		r.cur = nil
	}
	t, err := r.r.ReadByte()
	if err != nil {
		return nil, r.corrupt("missing trailer", err)
	}
	switch t {
	case 'E':
		key, err := r.bytes(MaxKey)
		if err != nil {
			return nil, err
		}
		if len(key) == 0 {
			return nil, corrupt("empty key", nil)
		}
		rec, err := r.bytes(MaxRecord)
		if err != nil {
			return nil, err
		}
		e := &Entry{Key: string(key), Record: rec}
		c := &content{r: r, e: e, h: sha256.New()}
		e.Content = c
		r.cur = c
		return e, nil
	case 'T':
		n, err := binary.ReadUvarint(r.r)
		if err != nil {
			return nil, r.corrupt("bad trailer", err)
		}
		var m [32]byte
		if _, err := io.ReadFull(r.r, m[:]); err != nil {
			return nil, r.corrupt("short trailer", err)
		}
		if _, err := r.r.ReadByte(); err != io.EOF {
			return nil, r.corrupt("data after trailer", err)
		}
		var want [32]byte
		copy(want[:], r.manifest.Sum(nil))
		if n != r.n || m != want {
			return nil, corrupt("manifest mismatch", nil)
		}
		r.Manifest, r.Count = m, n
		return nil, io.EOF
	default:
		return nil, corrupt("unknown tag", nil)
	}
}

type content struct {
	r    *Reader
	e    *Entry
	h    hash.Hash
	left []byte
	done bool
	err  error
}

func (c *content) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for len(c.left) == 0 {
		if c.done {
			return 0, io.EOF
		}
		b, err := c.r.bytes(MaxChunk)
		if err != nil {
			c.err = err
			return 0, err
		}
		if len(b) == 0 {
			var sum [32]byte
			if _, err := io.ReadFull(c.r.r, sum[:]); err != nil {
				c.err = c.r.corrupt("short digest", err)
				return 0, c.err
			}
			var got [32]byte
			copy(got[:], c.h.Sum(nil))
			if got != sum {
				c.err = corrupt(fmt.Sprintf("content digest mismatch for %q", c.e.Key), nil)
				return 0, c.err
			}
			c.e.Sum = sum
			_ = putBytes(c.r.manifest, []byte(c.e.Key))
			_ = putBytes(c.r.manifest, c.e.Record)
			c.r.manifest.Write(sum[:])
			c.r.n++
			c.done = true
			return 0, io.EOF
		}
		c.h.Write(b)
		c.left = b
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	return n, nil
}
