package envelope

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/internal/format"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Encrypt returns a stream that encrypts what is written to it under a
// fresh DEK, bound to ec, and writes the ciphertext to dst. The header is
// written before Encrypt returns. Close must be called to write the final
// segment; a stream that is not closed is detected as truncated. Memory
// use is one segment, whatever the stream's length.
func (e *Envelope) Encrypt(ctx context.Context, dst io.Writer, ec Context) (io.WriteCloser, error) {
	s := getScratch()
	defer putScratch(s)
	if err := s.prepare(ec); err != nil {
		return nil, err
	}
	h := format.Header{Version: format.Version1, Suite: format.SuiteAES256GCMDEK, SegmentSize: uint32(e.seg)}
	aead, err := e.sealKey(ctx, s, 0, &h)
	if err != nil {
		return nil, err
	}
	hdr := h.Append(make([]byte, 0, h.Len()))
	s.setAD(hdr)
	if _, err := dst.Write(hdr); err != nil {
		return nil, errtext.Errorf("envelope: encrypt: %w", err)
	}
	return &writer{w: dst, aead: aead, ad: append([]byte(nil), s.segAD...), seg: e.seg, msg: format.Header{Suite: h.Suite, Nonce: h.Nonce},
		buf: make([]byte, 0, e.seg), out: make([]byte, 0, e.seg+format.TagLen)}, nil
}

type writer struct {
	w     io.Writer
	aead  cipher.AEAD
	ad    []byte
	seg   int
	buf   []byte
	out   []byte
	i     uint64
	nonce [format.SegNonceLen]byte
	// msg holds the suite and message number, for the segment nonces.
	msg format.Header
	err error
}

// Write implements io.Writer.
func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):w.seg], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		// A full buffer is never the last segment: the last one is always
		// shorter than the segment size.
		if len(w.buf) == w.seg {
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *writer) flush(last bool) error {
	if w.i >= 1<<32 {
		clear(w.buf)
		w.err = errtext.Errorf("envelope: encrypt: %w: more than 2^32 segments", ErrTooLarge)
		return w.err
	}
	format.SegmentNonceOf(&w.nonce, &w.msg, uint32(w.i), last)
	w.out = w.aead.Seal(w.out[:0], w.nonce[:], w.buf, w.ad)
	clear(w.buf)
	w.buf = w.buf[:0]
	w.i++
	if _, err := w.w.Write(w.out); err != nil {
		w.err = errtext.Errorf("envelope: encrypt: %w", err)
		return w.err
	}
	return nil
}

// Close writes the final segment. It does not close the underlying writer.
func (w *writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flush(true); err != nil {
		return err
	}
	w.err = ErrStreamClosed
	return nil
}

// Decrypt reads and checks the header of the ciphertext in src, unwraps
// its DEK and returns a reader of the plaintext. Errors in the header,
// the key or the context are returned by Decrypt itself. The reader
// returns each segment only after it has been authenticated, and reports
// truncation, reordering, duplication or any change as an error: bytes it
// has returned are always authentic, and a stream is complete only when
// Read returns io.EOF. Memory use is one segment.
func (e *Envelope) Decrypt(ctx context.Context, src io.Reader, ec Context) (io.Reader, error) {
	r, err := e.decrypt(ctx, src, ec)
	if err != nil {
		return nil, e.fail(ctx, "crypto.decrypt", err)
	}
	return r, nil
}

func (e *Envelope) decrypt(ctx context.Context, src io.Reader, ec Context) (io.Reader, error) {
	hdr := make([]byte, format.FixedLen, format.MaxLen)
	if n, err := io.ReadFull(src, hdr); err != nil {
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, errtext.Errorf("envelope: decrypt: %w", err)
		}
		if n == 0 {
			return nil, errtext.Errorf("envelope: %w: empty ciphertext", ErrTruncated)
		}
		// A bad magic, version or suite is the better error than "short".
		if _, _, perr := format.Parse(hdr[:n]); perr != nil && !errors.Is(perr, format.ErrShort) {
			return nil, mapFormatErr(perr)
		}
		return nil, errtext.Errorf("envelope: %w: header", ErrTruncated)
	}
	// Validate the fixed part before trusting the wrapped key length.
	if _, _, err := format.Parse(hdr); err != nil && !errors.Is(err, format.ErrShort) {
		return nil, mapFormatErr(err)
	}
	wl := int(binary.BigEndian.Uint16(hdr[format.FixedLen-2:]))
	hdr = hdr[:format.FixedLen+wl]
	if _, err := io.ReadFull(src, hdr[format.FixedLen:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errtext.Errorf("envelope: %w: header", ErrTruncated)
		}
		return nil, errtext.Errorf("envelope: decrypt: %w", err)
	}
	h, _, err := parseHeader(hdr)
	if err != nil {
		return nil, err
	}
	s := getScratch()
	defer putScratch(s)
	aead, err := e.unlock(ctx, s, &h, hdr, ec)
	if err != nil {
		return nil, err
	}
	seg := int(h.SegmentSize)
	return &reader{msg: format.Header{Suite: h.Suite, Nonce: h.Nonce}, e: e, actor: audit.ActorFrom(ctx), requestID: audit.RequestIDFrom(ctx), r: src, aead: aead, ad: append([]byte(nil), s.segAD...), seg: seg,
		buf: make([]byte, seg+format.TagLen)}, nil
}

type reader struct {
	e *Envelope
	// actor and requestID identify the caller in the audit event of a
	// failure found by Read; the context itself is not kept.
	actor     audit.Actor
	requestID string
	r         io.Reader
	aead      cipher.AEAD
	ad        []byte
	seg       int
	buf       []byte
	pending   []byte
	i         uint64
	nonce     [format.SegNonceLen]byte
	msg       format.Header
	done      bool
	err       error
}

// Read implements io.Reader.
func (r *reader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			clear(r.buf)
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			// Earlier segments' plaintext may still be in the buffer
			// (a short read overwrites only its prefix): clear it.
			clear(r.buf)
			r.pending = nil
			r.err = err
			if !errors.Is(err, errIO) {
				ctx := audit.WithRequestID(audit.WithActor(context.Background(), r.actor), r.requestID)
				r.err = r.e.fail(ctx, "crypto.decrypt", err)
			}
			return 0, r.err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	if len(r.pending) == 0 && r.done {
		clear(r.buf) // the last plaintext has been handed over
	}
	return n, nil
}

var errIO = errors.New("envelope: read")

func (r *reader) next() error {
	if r.i >= 1<<32 {
		return errtext.Errorf("envelope: decrypt: %w: more than 2^32 segments", ErrTooLarge)
	}
	n, err := io.ReadFull(r.r, r.buf)
	last := false
	switch {
	case err == nil:
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	default:
		return fmt.Errorf("%w: %w", errIO, err)
	}
	if last && n < format.TagLen {
		return errtext.Errorf("envelope: decrypt: %w: segment %d", ErrTruncated, r.i)
	}
	format.SegmentNonceOf(&r.nonce, &r.msg, uint32(r.i), last)
	pt, oerr := r.aead.Open(r.buf[:0], r.nonce[:], r.buf[:n], r.ad)
	if oerr != nil {
		return errtext.Errorf("envelope: decrypt: %w: segment %d", ErrAuthentication, r.i)
	}
	r.pending = pt
	r.i++
	r.done = last
	return nil
}
