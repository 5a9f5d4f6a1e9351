// Package logfmt holds the audit log's on-disk formats and its verification
// state machine. The format is documented in docs/AUDIT-FORMAT.md.
package logfmt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a parsed, verified C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time // zero when the checkpoint carries no time line
	Note   []byte    // the signed note as stored
}

// MaxNote bounds a stored signed note.
const MaxNote = 64 << 10

// FormatCheckpoint returns the C2SP checkpoint body: origin, size, base64
// root hash, and a "time" extension line.
func FormatCheckpoint(origin string, size int64, root tlog.Hash, t time.Time) string {
	s := fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
	if !t.IsZero() {
		s += "time " + t.UTC().Format(time.RFC3339Nano) + "\n"
	}
	return s
}

// SignCheckpoint formats and signs a checkpoint with s; the origin is the
// signer's key name.
func SignCheckpoint(s note.Signer, size int64, root tlog.Hash, t time.Time) ([]byte, error) {
	return note.Sign(&note.Note{Text: FormatCheckpoint(s.Name(), size, root, t)}, s)
}

// Errors from [OpenCheckpoint].
var (
	ErrMalformed = errors.New("malformed checkpoint")
	ErrWrongKey  = errors.New("not signed by the verifier key")
)

// OpenCheckpoint verifies msg with v and parses it. The origin must be
// v's key name. A nil v parses without checking the signature (for
// building proofs, which the checker verifies).
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	if v == nil {
		_, err := note.Open(msg, nil)
		var unv *note.UnverifiedNoteError
		if !errors.As(err, &unv) {
			return Checkpoint{}, ErrMalformed
		}
		c, err := ParseCheckpoint(unv.Note.Text)
		c.Note = msg
		return c, err
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		if errors.As(err, &unv) {
			return Checkpoint{}, ErrWrongKey
		}
		return Checkpoint{}, err
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, key %q", ErrMalformed, c.Origin, v.Name())
	}
	c.Note = msg
	return c, nil
}

// ParseCheckpoint parses an (already verified) checkpoint body.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return Checkpoint{}, ErrMalformed
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, ErrMalformed
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, ErrMalformed
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], h)
	for _, l := range lines[3 : len(lines)-1] {
		if ts, ok := strings.CutPrefix(l, "time "); ok {
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				return Checkpoint{}, ErrMalformed
			}
			c.Time = t
		}
	}
	return c, nil
}

// prunePrefix is the first line of a prune note. It contains a space, so
// it can never be a checkpoint's origin (a note key name).
const prunePrefix = "tomkit audit prune v1\n"

// Prune records that the records below Min were deleted, and the
// frontier hashes of the tree of size Min, highest level first.
type Prune struct {
	Origin   string
	Min      int64
	Frontier []tlog.Hash
}

// SignPrune signs a prune note.
func SignPrune(s note.Signer, min int64, frontier []tlog.Hash) ([]byte, error) {
	var b strings.Builder
	b.WriteString(prunePrefix)
	fmt.Fprintf(&b, "%s\n%d\n", s.Name(), min)
	for _, h := range frontier {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	return note.Sign(&note.Note{Text: b.String()}, s)
}

// OpenPrune verifies and parses a prune note.
func OpenPrune(msg []byte, v note.Verifier) (Prune, error) {
	var n *note.Note
	var err error
	if v == nil {
		_, err = note.Open(msg, nil)
		var unv *note.UnverifiedNoteError
		if !errors.As(err, &unv) {
			return Prune{}, ErrMalformed
		}
		n, err = unv.Note, nil
	} else {
		n, err = note.Open(msg, note.VerifierList(v))
	}
	if err != nil {
		var unv *note.UnverifiedNoteError
		if errors.As(err, &unv) {
			return Prune{}, ErrWrongKey
		}
		return Prune{}, err
	}
	rest, ok := strings.CutPrefix(n.Text, prunePrefix)
	if !ok {
		return Prune{}, ErrMalformed
	}
	lines := strings.Split(rest, "\n")
	if len(lines) < 3 || lines[len(lines)-1] != "" || (v != nil && lines[0] != v.Name()) {
		return Prune{}, ErrMalformed
	}
	min, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || min < 0 {
		return Prune{}, ErrMalformed
	}
	p := Prune{Origin: lines[0], Min: min}
	for _, l := range lines[2 : len(lines)-1] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return Prune{}, ErrMalformed
		}
		var hh tlog.Hash
		copy(hh[:], h)
		p.Frontier = append(p.Frontier, hh)
	}
	return p, nil
}

// allZero reports whether b is all zero bytes (a preallocated or
// power-loss tail).
func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// rotatePrefix is the first line of a key rotation note.
const rotatePrefix = "tomkit audit rotate v1\n"

// Rotation records that, from the tree of size Size on, the log's
// checkpoints are signed by the key Next (a verifier key in the note
// text encoding) instead of the key that signed the rotation note.
type Rotation struct {
	Origin string
	Size   int64
	Next   string
}

// SignRotation signs a rotation note with the outgoing key s.
func SignRotation(s note.Signer, size int64, next string) ([]byte, error) {
	if _, err := note.NewVerifier(next); err != nil || strings.ContainsAny(next, "\n") {
		return nil, fmt.Errorf("%w: next key", ErrMalformed)
	}
	text := fmt.Sprintf("%s%s\n%d\n%s\n", rotatePrefix, s.Name(), size, next)
	return note.Sign(&note.Note{Text: text}, s)
}

// OpenRotation verifies a rotation note with the outgoing key v and parses
// it. The origin must be v's key name, and Next must parse as a verifier
// key.
func OpenRotation(msg []byte, v note.Verifier) (Rotation, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		if errors.As(err, &unv) {
			return Rotation{}, ErrWrongKey
		}
		return Rotation{}, err
	}
	rest, ok := strings.CutPrefix(n.Text, rotatePrefix)
	if !ok {
		return Rotation{}, ErrMalformed
	}
	lines := strings.Split(rest, "\n")
	if len(lines) != 4 || lines[3] != "" || lines[0] != v.Name() {
		return Rotation{}, ErrMalformed
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Rotation{}, ErrMalformed
	}
	if _, err := note.NewVerifier(lines[2]); err != nil {
		return Rotation{}, ErrMalformed
	}
	return Rotation{Origin: lines[0], Size: size, Next: lines[2]}, nil
}
