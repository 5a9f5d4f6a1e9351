package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/internal/format"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Context is an encryption context: non-secret key-value pairs (tenant,
// data class, object id, ...) that a ciphertext is bound to. Open and
// Decrypt succeed only with exactly the context Seal or Encrypt was given;
// it is not stored in the ciphertext. Keys must be non-empty, keys and
// values valid UTF-8, and the whole context at most 64 KiB encoded, else
// [ErrInvalidContext]. A nil Context equals an empty one.
type Context map[string]string

// Errors returned by the data path. They are matched with [errors.Is]. A
// call that returns one of them returns no plaintext at all.
var (
	// ErrAuthentication reports a ciphertext that failed authentication:
	// it was changed, its header was swapped with another's, or the
	// encryption context differs from the one it was sealed with.
	ErrAuthentication = errors.New("envelope: message authentication failed")
	// ErrTruncated reports a ciphertext that ends early: empty, a cut
	// header, or a stream cut at a segment boundary. A stream cut inside a
	// segment fails with ErrAuthentication.
	ErrTruncated = errors.New("envelope: truncated ciphertext")
	// ErrMalformed reports bytes that are not a tomkit ciphertext or have
	// a garbled header.
	ErrMalformed = errors.New("envelope: malformed ciphertext")
	// ErrUnsupportedVersion reports a ciphertext of an unknown format
	// version.
	ErrUnsupportedVersion = errors.New("envelope: unsupported format version")
	// ErrTooLarge reports a plaintext or stream longer than the format
	// allows, or a header whose fields exceed its limits.
	ErrTooLarge = errors.New("envelope: too large")
	// ErrInvalidContext reports an encryption context that cannot be
	// encoded (see [Context]).
	ErrInvalidContext = errors.New("envelope: invalid encryption context")
	// ErrStreamClosed reports a write to, or a second close of, a closed stream.
	ErrStreamClosed = errors.New("envelope: stream closed")

	// ErrKeyDestroyed is [kms.ErrKeyDestroyed]: the ciphertext's key was
	// shredded and the ciphertext is unrecoverable.
	ErrKeyDestroyed = kms.ErrKeyDestroyed
	// ErrUnknownKey is [kms.ErrUnknownKey].
	ErrUnknownKey = kms.ErrUnknownKey
)

// DefaultSegmentSize is the plaintext size of one authenticated segment
// when [Config.SegmentSize] is zero.
const DefaultSegmentSize = 64 << 10

// Config configures an [Envelope]. Logger is required; every other zero
// field has a safe meaning.
type Config struct {
	// Logger receives "crypto.decrypt" events for ciphertexts that fail to
	// open and "crypto.rewrap" events. Nil is refused with
	// [audit.ErrNoLogger]. Successful Seal and Open calls are not audited,
	// one by one: a durable write per message would cap throughput at the
	// audit log's fsync rate. Key loads, key operations and unwrap
	// failures are audited by the KEK (see package kms).
	Logger audit.Logger
	// SegmentSize is the plaintext size of one authenticated segment,
	// from 16 bytes to 4 MiB. Zero means [DefaultSegmentSize]. A reader
	// holds one segment in memory; the size is recorded in every header,
	// so any Envelope opens any ciphertext.
	SegmentSize int
	// Cache enables the DEK cache (see [Cache] and "Choosing a mode" in
	// docs/ENVELOPE.md). Nil, the default, means every message
	// gets a fresh DEK and a KEK call.
	Cache *Cache
	// Clock gives the time of the cache's age limit. Nil means the system
	// clock.
	Clock audit.Clock
}

// Envelope seals and opens messages and streams with a fresh AES-256 DEK
// per message, wrapped by a [kms.KEK]. It is safe for concurrent use.
type Envelope struct {
	kek   kms.KEK
	rev   kms.Revocable // kek, when it can revoke keys; nil otherwise
	cfg   Config
	seg   int
	cache *dekCache
}

// New returns an Envelope that wraps DEKs with kek.
func New(kek kms.KEK, cfg Config) (*Envelope, error) {
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if kek == nil {
		return nil, errtext.Errorf("envelope: %w: nil KEK", kms.ErrUnknownKey)
	}
	e := &Envelope{kek: kek, cfg: cfg, seg: cfg.SegmentSize}
	e.rev, _ = kek.(kms.Revocable)
	if e.seg == 0 {
		e.seg = DefaultSegmentSize
	}
	if e.seg < format.MinSegmentSize || e.seg > format.MaxSegmentSize {
		return nil, fmt.Errorf("envelope: segment size %d not in [%d, %d]", e.seg, format.MinSegmentSize, format.MaxSegmentSize)
	}
	if cfg.Cache != nil {
		now := time.Now
		if cfg.Clock != nil {
			now = cfg.Clock.Now
		}
		e.cache = newDEKCache(*cfg.Cache, now)
	}
	return e, nil
}

// Labels that separate the uses of the DEK and of the context encoding.
const (
	wrapLabel = "tomkit envelope v1 dek\x00"
	kdfLabel  = "tomkit envelope v1 kdf\x00"
	dekLen    = 32
)

// scratch is per-call working memory, pooled so that Seal and Open do not
// allocate it.
type scratch struct {
	canon   []byte
	wrapAD  []byte
	segAD   []byte
	info    []byte
	wrapped []byte
	dek     []byte
	dekBuf  [64]byte
	// rnd receives a fresh DEK.
	rnd   [dekLen]byte
	okm   [64]byte
	nonce [format.SegNonceLen]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch {
	s := scratchPool.Get().(*scratch)
	s.dek = s.dekBuf[:0]
	return s
}

func putScratch(s *scratch) {
	clear(s.dek[:cap(s.dek)])
	clear(s.okm[:])
	clear(s.rnd[:])
	if cap(s.canon) > 1<<16 || cap(s.segAD) > 1<<17 {
		return // do not pin huge contexts
	}
	scratchPool.Put(s)
}

// prepare encodes ec and builds the DEK-wrapping associated data.
func (s *scratch) prepare(ec Context) error {
	var err error
	s.canon, err = format.AppendContext(s.canon[:0], ec)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidContext, err)
	}
	s.wrapAD = append(append(s.wrapAD[:0], wrapLabel...), s.canon...)
	return nil
}

// derive computes the payload key and the key commitment from the DEK,
// the header's bound prefix (magic through nonce) and the context, with
// the one-step key derivation of NIST SP 800-56C Rev. 2 (section 4.1, H =
// SHA-256, 512 bits): K_enc = SHA-256(1 || DEK || FixedInfo), commitment =
// SHA-256(2 || DEK || FixedInfo). It returns the GCM of the payload key and
// builds s.segAD.
func (s *scratch) derive(dek, bound []byte) (cipher.AEAD, error) {
	s.info = append(s.info[:0], 0, 0, 0, 1)
	s.info = append(s.info, dek...)
	s.info = append(s.info, kdfLabel...)
	s.info = append(s.info, bound[:42]...)
	s.info = append(s.info, s.canon...)
	k := sha256.Sum256(s.info)
	copy(s.okm[:32], k[:])
	s.info[3] = 2
	c := sha256.Sum256(s.info)
	copy(s.okm[32:], c[:])
	clear(s.info[4 : 4+len(dek)])
	clear(k[:])
	b, err := aes.NewCipher(s.okm[:32])
	if err != nil {
		return nil, err
	}
	s.segAD = append(append(s.segAD[:0], bound[:format.BoundLen]...), s.canon...)
	return cipher.NewGCM(b)
}

// commit computes the key commitment of suite 2 into s.okm[32:]:
// SHA-256(00000002 || DEK || label || header[0:10] || ctx), where
// header[0:10] is the magic, version, suite and segment size. The payload
// key of suite 2 is the DEK itself.
func (s *scratch) commit(dek, hdr []byte) {
	s.info = append(s.info[:0], 0, 0, 0, 2)
	s.info = append(s.info, dek...)
	s.info = append(s.info, kdfLabel...)
	s.info = append(s.info, hdr[:10]...)
	s.info = append(s.info, s.canon...)
	c := sha256.Sum256(s.info)
	copy(s.okm[32:], c[:])
	clear(s.info[4 : 4+len(dek)])
}

// setAD sets s.segAD, the segments' associated data, from the header's
// bound prefix and the context.
func (s *scratch) setAD(hdr []byte) {
	s.segAD = append(append(s.segAD[:0], hdr[:format.BoundLen]...), s.canon...)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, errtext.Errorf("envelope: %w", err)
	}
	return cipher.NewGCM(b)
}

// headerPrefix returns the first 10 bytes of h's encoding.
func headerPrefix(h *format.Header) [10]byte {
	var p [10]byte
	copy(p[:], format.Magic)
	p[4], p[5] = h.Version, h.Suite
	p[6], p[7], p[8], p[9] = byte(h.SegmentSize>>24), byte(h.SegmentSize>>16), byte(h.SegmentSize>>8), byte(h.SegmentSize)
	return p
}

// sealKey fills in the key fields of h (suite 2): a DEK from the cache
// with its next message number, or a fresh DEK (message 0), wrapped by the
// KEK. It returns the payload AEAD; s.wrapped then holds the wrapped DEK.
func (e *Envelope) sealKey(ctx context.Context, s *scratch, size int64, h *format.Header) (cipher.AEAD, error) {
	if e.cache != nil {
		if hit, ok := e.cache.getSeal(s, size, e.rev); ok {
			s.wrapped = append(s.wrapped[:0], hit.wrapped...)
			h.Ring, h.Key, h.Wrapped, h.Commitment = hit.id.Ring, hit.id.Key, s.wrapped, hit.commit
			putMessage(h, hit.msg)
			return hit.aead, nil
		}
	}
	if _, err := rand.Read(s.rnd[:]); err != nil {
		return nil, errtext.Errorf("envelope: %w", err)
	}
	s.dek = append(s.dek[:0], s.rnd[:]...)
	id, w, err := e.kek.Wrap(ctx, s.wrapped[:0], s.dek, s.wrapAD)
	if err != nil {
		return nil, errtext.Errorf("envelope: wrap: %w", err)
	}
	if len(w) == 0 || len(w) > format.MaxWrappedLen {
		return nil, errtext.Errorf("envelope: wrap: %w: wrapped key of %d bytes", ErrTooLarge, len(w))
	}
	s.wrapped = w
	pre := headerPrefix(h)
	s.commit(s.dek, pre[:])
	aead, err := newAEAD(s.dek)
	if err != nil {
		return nil, err
	}
	h.Ring, h.Key, h.Wrapped = id.Ring, id.Key, s.wrapped
	copy(h.Commitment[:], s.okm[32:])
	if e.cache != nil {
		e.cache.putSeal(s, id, aead, h.Commitment, size)
	}
	return aead, nil
}

// putMessage writes the message number m into h's nonce field.
func putMessage(h *format.Header, m uint64) {
	for i := format.MessageLen - 1; i >= 0; i-- {
		h.Nonce[i] = byte(m)
		m >>= 8
	}
}

// Seal encrypts plaintext under a fresh DEK, bound to ec, and appends the
// ciphertext to dst. dst and plaintext must not overlap. When dst has room
// for len(plaintext) + [Overhead] bytes, Seal allocates only the AES-GCM
// state of the new key.
func (e *Envelope) Seal(ctx context.Context, dst, plaintext []byte, ec Context) ([]byte, error) {
	segs := uint64(len(plaintext))/uint64(e.seg) + 1
	if segs > 1<<32 {
		return nil, errtext.Errorf("envelope: seal: %w: %d bytes", ErrTooLarge, len(plaintext))
	}
	s := getScratch()
	defer putScratch(s)
	if err := s.prepare(ec); err != nil {
		return nil, err
	}
	h := format.Header{Version: format.Version1, Suite: format.SuiteAES256GCMDEK, SegmentSize: uint32(e.seg)}
	aead, err := e.sealKey(ctx, s, int64(len(plaintext)), &h)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	dst = growFor(dst, h.Len()+int(segs)*format.TagLen+len(plaintext))
	dst = h.Append(dst)
	s.setAD(dst[start:])
	for i := uint64(0); ; i++ {
		last := len(plaintext) < e.seg
		n := e.seg
		if last {
			n = len(plaintext)
		}
		format.SegmentNonceOf(&s.nonce, &h, uint32(i), last)
		dst = aead.Seal(dst, s.nonce[:], plaintext[:n], s.segAD)
		plaintext = plaintext[n:]
		if last {
			return dst, nil
		}
	}
}

// Overhead returns how many bytes a sealed message of n plaintext bytes
// adds with a local KEK: the header and one tag per segment.
func (e *Envelope) Overhead(n int) int {
	return format.FixedLen + 60 + (n/e.seg+1)*format.TagLen
}

// openBound returns the most plaintext bytes that opening a body of n
// bytes in segments of seg ciphertext bytes can write: seg - TagLen for
// each full segment and the rest of a short last one.
func openBound(n, seg int) int {
	return n/seg*(seg-format.TagLen) + max(0, n%seg-format.TagLen)
}

func growFor(dst []byte, n int) []byte {
	if allocHook != nil && cap(dst)-len(dst) < n {
		nd := allocHook(len(dst), len(dst)+n)
		copy(nd, dst)
		return nd
	}
	if cap(dst)-len(dst) < n {
		nd := make([]byte, len(dst), len(dst)+n)
		copy(nd, dst)
		return nd
	}
	return dst
}

// allocHook, when set by a test, allocates the arrays of growFor, so that
// the test can check that a failure leaves no plaintext in them.
var allocHook func(n, c int) []byte

// Open authenticates and decrypts a ciphertext made by [Envelope.Seal] or
// [Envelope.Encrypt] with the same encryption context, and appends the
// plaintext to dst. On any error it returns nil, appends nothing, and
// leaves no plaintext in dst's spare capacity or in any array it
// allocated.
func (e *Envelope) Open(ctx context.Context, dst, ciphertext []byte, ec Context) ([]byte, error) {
	out, err := e.open(ctx, dst, ciphertext, ec)
	if err != nil {
		return nil, e.fail(ctx, "crypto.decrypt", err)
	}
	return out, nil
}

func (e *Envelope) open(ctx context.Context, dst, ciphertext []byte, ec Context) ([]byte, error) {
	s := getScratch()
	defer putScratch(s)
	h, n, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	aead, err := e.unlock(ctx, s, &h, ciphertext[:n], ec)
	if err != nil {
		return nil, err
	}
	body := ciphertext[n:]
	seg := int(h.SegmentSize) + format.TagLen
	// Make room for the most plaintext the loop can write before it
	// fails (every full segment, and a last one), so that the loop never
	// moves dst: on failure, clearing dst then removes every byte written.
	// Sizing from the number of segments a valid body would have is not
	// enough: a body cut at a segment boundary writes one segment more,
	// which would move dst and leave plaintext in the old array.
	if need := openBound(len(body), seg); need > 0 {
		dst = growFor(dst, need)
	}
	start := len(dst)
	for i := uint64(0); ; i++ {
		if i >= 1<<32 {
			return nil, errtext.Errorf("envelope: open: %w: too many segments", ErrTooLarge)
		}
		last := len(body) < seg
		if last && len(body) < format.TagLen {
			clear(dst[start:cap(dst)])
			return nil, errtext.Errorf("envelope: open: %w: segment %d", ErrTruncated, i)
		}
		m := seg
		if last {
			m = len(body)
		}
		format.SegmentNonceOf(&s.nonce, &h, uint32(i), last)
		out, err := aead.Open(dst, s.nonce[:], body[:m], s.segAD)
		if err != nil { // out is nil: clear what earlier segments wrote to dst
			clear(dst[start:cap(dst)])
			return nil, errtext.Errorf("envelope: open: %w: segment %d", ErrAuthentication, i)
		}
		dst = out
		body = body[m:]
		if last {
			return dst, nil
		}
	}
}

// parseHeader parses a header and maps parser errors to the package's.
func parseHeader(b []byte) (format.Header, int, error) {
	if len(b) == 0 {
		return format.Header{}, 0, errtext.Errorf("envelope: %w: empty ciphertext", ErrTruncated)
	}
	h, n, err := format.Parse(b)
	if err != nil {
		return h, 0, mapFormatErr(err)
	}
	return h, n, nil
}

func mapFormatErr(err error) error {
	switch {
	case errors.Is(err, format.ErrShort):
		return errtext.Errorf("envelope: %w: %v", ErrTruncated, err)
	case errors.Is(err, format.ErrVersion):
		return errtext.Errorf("envelope: %w: %v", ErrUnsupportedVersion, err)
	case errors.Is(err, format.ErrTooLarge):
		return errtext.Errorf("envelope: %w: %v", ErrTooLarge, err)
	default:
		return errtext.Errorf("envelope: %w: %v", ErrMalformed, err)
	}
}

// unlock unwraps the DEK of h, checks the key commitment and returns the
// payload AEAD; s.segAD is then the segments' associated data.
func (e *Envelope) unlock(ctx context.Context, s *scratch, h *format.Header, hdr []byte, ec Context) (cipher.AEAD, error) {
	if err := s.prepare(ec); err != nil {
		return nil, err
	}
	id := kms.KeyID{Ring: h.Ring, Key: h.Key}
	suite2 := h.Suite == format.SuiteAES256GCMDEK
	hit := false
	if e.cache != nil {
		// A cached DEK of a key that was shredded or retired since, or
		// of a keyring that fell behind, is dropped: Unwrap then says why.
		aead, commit, ok := e.cache.getOpen(s, id, h.Wrapped, hdr, e.rev)
		if ok && suite2 {
			if subtle.ConstantTimeCompare(commit[:], h.Commitment[:]) != 1 {
				return nil, errtext.Errorf("envelope: %w: key commitment mismatch", ErrAuthentication)
			}
			s.setAD(hdr)
			return aead, nil
		}
		hit = ok
	}
	if !hit {
		if err := e.unwrap(ctx, s, id, h.Wrapped); err != nil {
			return nil, err
		}
	}
	var aead cipher.AEAD
	var err error
	if suite2 {
		s.commit(s.dek, hdr)
		aead, err = newAEAD(s.dek)
		s.setAD(hdr)
	} else {
		aead, err = s.derive(s.dek, hdr)
	}
	if err != nil {
		return nil, errtext.Errorf("envelope: %w", err)
	}
	if subtle.ConstantTimeCompare(s.okm[32:], h.Commitment[:]) != 1 {
		return nil, errtext.Errorf("envelope: %w: key commitment mismatch", ErrAuthentication)
	}
	if e.cache != nil && !hit {
		// Suite 1 derives a payload key per message: cache the DEK only.
		var keep cipher.AEAD
		if suite2 {
			keep = aead
		}
		e.cache.putOpen(s, id, h.Wrapped, hdr, keep, h.Commitment)
	}
	return aead, nil
}

func (e *Envelope) unwrap(ctx context.Context, s *scratch, id kms.KeyID, wrapped []byte) error {
	dek, err := e.kek.Unwrap(ctx, s.dek[:0], id, wrapped, s.wrapAD)
	if err != nil {
		if errors.Is(err, kms.ErrUnwrap) {
			return errtext.Errorf("envelope: %w: %w", ErrAuthentication, err)
		}
		return errtext.Errorf("envelope: %w", err)
	}
	if len(dek) != dekLen {
		clear(dek)
		return errtext.Errorf("envelope: %w: unwrapped key of %d bytes", ErrMalformed, len(dek))
	}
	s.dek = dek
	return nil
}

// Rewrap moves a ciphertext's DEK under the KEK's current primary key, as
// Vault Transit's rewrap does, and appends the new ciphertext to dst. The
// payload is copied unchanged: it is neither decrypted nor exposed. The DEK
// is unwrapped in memory and checked against the key commitment (with ec)
// before it is wrapped again, so a wrong context or a damaged header fails
// instead of producing an unreadable ciphertext.
//
// For an object too large to hold in memory, pass a prefix of it that
// holds at least the header ([MaxHeaderLen] bytes, or the whole object if
// shorter) and append the rest of the object to the result unchanged.
//
// Every call is audited as "crypto.rewrap".
func (e *Envelope) Rewrap(ctx context.Context, dst, ciphertext []byte, ec Context) ([]byte, error) {
	out, from, to, err := e.rewrap(ctx, dst, ciphertext, ec)
	if err != nil {
		return nil, e.fail(ctx, "crypto.rewrap", err)
	}
	ev := audit.Event{Action: "crypto.rewrap", Outcome: audit.OutcomeAllow, Resource: "kek/" + to.String(),
		Attributes: []audit.Attr{audit.String("from_key", from.String()), audit.String("to_key", to.String())}}
	if err := e.cfg.Logger.Log(ctx, ev); err != nil {
		return nil, errtext.Errorf("envelope: audit rewrap: %w", err)
	}
	return out, nil
}

// MaxHeaderLen is the largest header a ciphertext can have.
const MaxHeaderLen = format.MaxLen

func (e *Envelope) rewrap(ctx context.Context, dst, ciphertext []byte, ec Context) ([]byte, kms.KeyID, kms.KeyID, error) {
	s := getScratch()
	defer putScratch(s)
	h, n, err := parseHeader(ciphertext)
	if err != nil {
		return nil, kms.KeyID{}, kms.KeyID{}, err
	}
	from := kms.KeyID{Ring: h.Ring, Key: h.Key}
	if _, err := e.unlock(ctx, s, &h, ciphertext[:n], ec); err != nil {
		return nil, from, kms.KeyID{}, err
	}
	to, w, err := e.kek.Wrap(ctx, s.wrapped[:0], s.dek, s.wrapAD)
	if err != nil {
		return nil, from, to, errtext.Errorf("envelope: rewrap: %w", err)
	}
	if len(w) == 0 || len(w) > format.MaxWrappedLen {
		return nil, from, to, errtext.Errorf("envelope: rewrap: %w: wrapped key of %d bytes", ErrTooLarge, len(w))
	}
	s.wrapped = w
	h.Ring, h.Key, h.Wrapped = to.Ring, to.Key, w
	dst = growFor(dst, h.Len()+len(ciphertext)-n)
	dst = h.Append(dst)
	return append(dst, ciphertext[n:]...), from, to, nil
}

// KeyIDOf returns the id of the KEK version that a ciphertext's DEK is
// wrapped under, without decrypting anything: use it to find ciphertexts
// to [Envelope.Rewrap] after a rotation.
func KeyIDOf(ciphertext []byte) (kms.KeyID, error) {
	h, _, err := parseHeader(ciphertext)
	if err != nil {
		return kms.KeyID{}, err
	}
	return kms.KeyID{Ring: h.Ring, Key: h.Key}, nil
}

// fail audits a failed decryption or rewrap and returns err (joined with
// the audit error, if any).
func (e *Envelope) fail(ctx context.Context, action string, err error) error {
	ev := audit.Event{Action: action, Outcome: audit.OutcomeDeny, Reason: err.Error(), Severity: audit.SeverityWarning, Resource: "envelope"}
	if lerr := e.cfg.Logger.Log(ctx, ev); lerr != nil {
		return errors.Join(err, errtext.Errorf("envelope: audit: %w", lerr))
	}
	return err
}
