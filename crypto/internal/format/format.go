// Package format is the wire format of tomkit envelope ciphertexts,
// documented in docs/FORMAT.md. It parses and encodes headers, encodes
// encryption contexts canonically and computes segment nonces; it holds
// no keys and does no cryptography.
package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Magic starts every ciphertext.
const Magic = "tmke"

// Header constants.
const (
	Version1 = 1
	// SuiteAES256GCMCommit is AES-256-GCM segments, the SHA-256 one-step
	// key derivation of NIST SP 800-56C and a 256-bit key commitment.
	SuiteAES256GCMCommit = 1
	// SuiteAES256GCMDEK is AES-256-GCM segments under the DEK itself, a
	// 256-bit SHA-256 key commitment, and a message number in the
	// segment nonces, so that one DEK can seal several messages.
	SuiteAES256GCMDEK = 2
	// MessageLen is the length of the message number of
	// SuiteAES256GCMDEK: the first bytes of the header nonce field, the
	// rest of which is zero.
	MessageLen = 7

	NonceLen      = 32
	CommitLen     = 32
	FixedLen      = 88   // header length without the wrapped key
	BoundLen      = 74   // the prefix bound into every segment
	MaxWrappedLen = 1024 // a remote KMS ciphertext of a 32-byte key fits
	MaxLen        = FixedLen + MaxWrappedLen
	TagLen        = 16
	SegNonceLen   = 12

	MinSegmentSize = 16
	MaxSegmentSize = 4 << 20
	// MaxContextLen bounds the canonical encoding of a context.
	MaxContextLen = 64 << 10
)

// Errors of the parser. The envelope package maps them to its own.
var (
	ErrShort    = errors.New("format: truncated header")
	ErrMagic    = errors.New("format: not a tomkit ciphertext")
	ErrVersion  = errors.New("format: unsupported version")
	ErrHeader   = errors.New("format: malformed header")
	ErrContext  = errors.New("format: invalid context")
	ErrTooLarge = errors.New("format: field exceeds limit")
)

// Header is a parsed ciphertext header.
type Header struct {
	Version     byte
	Suite       byte
	SegmentSize uint32
	Nonce       [NonceLen]byte
	Commitment  [CommitLen]byte
	Ring        [8]byte
	Key         uint32
	// Wrapped is the wrapped DEK. After Parse it aliases the input.
	Wrapped []byte
}

// Append encodes h and appends it to dst.
func (h *Header) Append(dst []byte) []byte {
	dst = append(dst, Magic...)
	dst = append(dst, h.Version, h.Suite)
	dst = binary.BigEndian.AppendUint32(dst, h.SegmentSize)
	dst = append(dst, h.Nonce[:]...)
	dst = append(dst, h.Commitment[:]...)
	dst = append(dst, h.Ring[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.Key)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Wrapped)))
	return append(dst, h.Wrapped...)
}

// Len returns the encoded length of h.
func (h *Header) Len() int { return FixedLen + len(h.Wrapped) }

// Parse parses the header at the start of b and returns it and its
// length. It checks every field against the limits of the version. A
// prefix of b too short for a header is ErrShort only if every field it
// holds is valid: a wrong magic is ErrMagic at any length.
func Parse(b []byte) (Header, int, error) {
	var h Header
	// Check each field that is present before reporting a short input,
	// so that bytes that are not a tomkit ciphertext are ErrMagic, however
	// few of them there are.
	if m := min(len(b), len(Magic)); string(b[:m]) != Magic[:m] {
		return h, 0, ErrMagic
	}
	if len(b) > 4 {
		if h.Version = b[4]; h.Version != Version1 {
			return h, 0, fmt.Errorf("%w %d", ErrVersion, h.Version)
		}
	}
	if len(b) > 5 {
		if h.Suite = b[5]; h.Suite != SuiteAES256GCMCommit && h.Suite != SuiteAES256GCMDEK {
			return h, 0, fmt.Errorf("%w: unknown suite %d", ErrHeader, h.Suite)
		}
	}
	if len(b) < FixedLen {
		return h, 0, ErrShort
	}
	h.SegmentSize = binary.BigEndian.Uint32(b[6:10])
	if h.SegmentSize < MinSegmentSize {
		return h, 0, fmt.Errorf("%w: segment size %d", ErrHeader, h.SegmentSize)
	}
	if h.SegmentSize > MaxSegmentSize {
		return h, 0, fmt.Errorf("%w: segment size %d", ErrTooLarge, h.SegmentSize)
	}
	copy(h.Nonce[:], b[10:42])
	if h.Suite == SuiteAES256GCMDEK && string(h.Nonce[MessageLen:]) != string(make([]byte, NonceLen-MessageLen)) {
		return h, 0, fmt.Errorf("%w: nonzero nonce padding", ErrHeader)
	}
	copy(h.Commitment[:], b[42:74])
	copy(h.Ring[:], b[74:82])
	h.Key = binary.BigEndian.Uint32(b[82:86])
	n := int(binary.BigEndian.Uint16(b[86:88]))
	if n == 0 {
		return h, 0, fmt.Errorf("%w: empty wrapped key", ErrHeader)
	}
	if n > MaxWrappedLen {
		return h, 0, fmt.Errorf("%w: wrapped key length %d", ErrTooLarge, n)
	}
	if len(b) < FixedLen+n {
		return h, 0, ErrShort
	}
	h.Wrapped = b[FixedLen : FixedLen+n : FixedLen+n]
	return h, FixedLen + n, nil
}

// SegmentNonce returns the GCM nonce of segment i of a
// SuiteAES256GCMCommit message: seven zero bytes, i big-endian, and 1 for
// the last segment or 0 otherwise. The zero prefix is safe because every
// message has its own derived key.
func SegmentNonce(n *[SegNonceLen]byte, i uint32, last bool) {
	SegmentNonceOf(n, nil, i, last)
}

// SegmentNonceOf returns the GCM nonce of segment i of the message with
// header h: the message number (SuiteAES256GCMDEK; zero bytes for
// SuiteAES256GCMCommit or a nil h), i big-endian, and 1 for the last
// segment or 0 otherwise.
func SegmentNonceOf(n *[SegNonceLen]byte, h *Header, i uint32, last bool) {
	*n = [SegNonceLen]byte{}
	if h != nil && h.Suite == SuiteAES256GCMDEK {
		copy(n[:MessageLen], h.Nonce[:MessageLen])
	}
	binary.BigEndian.PutUint32(n[7:11], i)
	if last {
		n[11] = 1
	}
}

// entry is one key-value pair of a context.
type entry struct{ key, value string }

// AppendContext appends the canonical encoding of ctx to dst: the number
// of entries, then each key and value in ascending byte order of the keys,
// each as a 4-byte big-endian length and the bytes. Keys must be
// non-empty, keys and values valid UTF-8, and the encoding at most
// MaxContextLen bytes, else ErrContext. It does not allocate for a context
// of up to 16 entries when dst has room.
func AppendContext(dst []byte, ctx map[string]string) ([]byte, error) {
	var small [16]entry
	entries := small[:0]
	if len(ctx) > len(small) {
		entries = make([]entry, 0, len(ctx))
	}
	size := 4
	for k, v := range ctx {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return dst, fmt.Errorf("%w: empty or non-UTF-8 entry", ErrContext)
		}
		size += 8 + len(k) + len(v)
		entries = append(entries, entry{k, v})
	}
	if size > MaxContextLen {
		return dst, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrContext, size, MaxContextLen)
	}
	// Map keys are distinct, so the order is total. Contexts are small:
	// an insertion sort beats the general sort below a dozen entries.
	if len(entries) <= 12 {
		for i := 1; i < len(entries); i++ {
			for j := i; j > 0 && entries[j].key < entries[j-1].key; j-- {
				entries[j], entries[j-1] = entries[j-1], entries[j]
			}
		}
	} else {
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	}
	dst = slices.Grow(dst, size)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(entries)))
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.key)))
		dst = append(dst, e.key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.value)))
		dst = append(dst, e.value...)
	}
	return dst, nil
}
