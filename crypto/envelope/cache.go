package envelope

import (
	"crypto/cipher"
	"sync"
	"time"

	"github.com/tomkit/tomkit/crypto/kms"
)

// Cache bounds the reuse of one DEK across messages, like the caching
// cryptographic materials manager of the AWS Encryption SDK. It works
// with every KEK: with a remote KMS it saves a KMS call per message, with
// a local KEK the key setup (a wrap, a hash, the AES key schedule). Each
// message sealed under a cached DEK gets the next message number of that
// DEK, which is written into its header and into every segment nonce, so
// a (key, nonce) pair never repeats: the number is taken under a lock,
// only grows, and the DEK is dropped before it could pass MaxMessages
// (at most 2^32, far below the 2^56 numbers the format has room for). A
// cached DEK lives in one process only. The limits bound how much data
// one compromised DEK exposes and how long a revoked KEK keeps working; a
// KEK that implements [kms.Revocable] (the local keyring's) is asked
// before every use of a cached DEK, so that a shred or a retirement stops
// its cached DEKs at once, on every instance that shares the keyring. A
// cached DEK serves only messages with the same encryption context, and
// cached unwrapped DEKs serve Open only for the same wrapped key, header
// parameters and context.
//
// Zero fields mean the conservative defaults given below.
type Cache struct {
	// MaxMessages is how many messages one DEK may seal. Zero means
	// 4096. It is capped at 2^32.
	MaxMessages uint64
	// MaxAge is how long a DEK may be used after it was generated or
	// unwrapped. Zero means one minute.
	MaxAge time.Duration
	// MaxBytes is how many plaintext bytes one DEK may seal. Zero means
	// 1 GiB. Streams count as their first segment only, so leave the cache
	// off when encrypting large streams matters.
	MaxBytes int64
	// MaxEntries is how many DEKs are cached at once, for sealing and
	// opening each. Zero means 1024.
	MaxEntries int
}

type sealEntry struct {
	id      kms.KeyID
	dek     [dekLen]byte
	wrapped []byte
	aead    cipher.AEAD
	commit  [32]byte
	created time.Time
	// messages is the number of messages sealed, and so the next
	// message number.
	messages uint64
	bytes    int64
}

// sealHit is what a cached DEK gives one message.
type sealHit struct {
	id      kms.KeyID
	wrapped []byte
	aead    cipher.AEAD
	commit  [32]byte
	msg     uint64
}

type openEntry struct {
	dek     [dekLen]byte
	aead    cipher.AEAD // suite 2 only
	commit  [32]byte
	created time.Time
}

type dekCache struct {
	cfg  Cache
	now  func() time.Time
	mu   sync.Mutex
	seal map[string]*sealEntry // by canonical context
	open map[string]*openEntry // by key id, wrapped key and context
}

func newDEKCache(c Cache, now func() time.Time) *dekCache {
	if c.MaxMessages == 0 {
		c.MaxMessages = 4096
	}
	if c.MaxMessages > 1<<32 {
		c.MaxMessages = 1 << 32
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Minute
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 1024
	}
	if now == nil {
		now = time.Now
	}
	return &dekCache{cfg: c, now: now, seal: map[string]*sealEntry{}, open: map[string]*openEntry{}}
}

// getSeal returns a cached DEK for s.canon and its next message number
// when the DEK is within all limits and its key still usable (rev, when
// not nil, says so), and counts the message against it.
func (c *dekCache) getSeal(s *scratch, size int64, rev kms.Revocable) (sealHit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.seal[string(s.canon)]
	if e == nil {
		return sealHit{}, false
	}
	now := c.now()
	if now.Sub(e.created) >= c.cfg.MaxAge || e.messages >= c.cfg.MaxMessages || e.bytes+size > c.cfg.MaxBytes || size > c.cfg.MaxBytes ||
		rev != nil && rev.Usable(e.id, now) != nil {
		clear(e.dek[:])
		delete(c.seal, string(s.canon))
		return sealHit{}, false
	}
	hit := sealHit{id: e.id, wrapped: e.wrapped, aead: e.aead, commit: e.commit, msg: e.messages}
	e.messages++
	e.bytes += size
	return hit, true
}

// putSeal caches the fresh DEK in s, which sealed message 0.
func (c *dekCache) putSeal(s *scratch, id kms.KeyID, aead cipher.AEAD, commit [32]byte, size int64) {
	if size > c.cfg.MaxBytes || c.cfg.MaxMessages < 2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seal) >= c.cfg.MaxEntries {
		c.evict(true)
	}
	if old := c.seal[string(s.canon)]; old != nil {
		clear(old.dek[:])
	}
	e := &sealEntry{id: id, wrapped: append([]byte(nil), s.wrapped...), aead: aead, commit: commit, created: c.now(), messages: 1, bytes: size}
	copy(e.dek[:], s.dek)
	c.seal[string(s.canon)] = e
}

// openKey is the cache key of a wrapped DEK: key id, wrapped key, the
// header's version, suite and segment size (hdr[4:10]), and context.
func openKey(s *scratch, id kms.KeyID, wrapped, hdr []byte) []byte {
	k := append(s.info[:0], id.Ring[:]...)
	k = append(k, byte(id.Key>>24), byte(id.Key>>16), byte(id.Key>>8), byte(id.Key), byte(len(wrapped)>>8), byte(len(wrapped)))
	k = append(k, wrapped...)
	k = append(k, hdr[4:10]...)
	k = append(k, s.canon...)
	s.info = k
	return k
}

// getOpen puts a cached unwrapped DEK in s.dek and returns its payload
// AEAD (suite 2; nil for suite 1) and commitment, when its key is still
// usable (rev, when not nil, says so); else it drops the entry.
func (c *dekCache) getOpen(s *scratch, id kms.KeyID, wrapped, hdr []byte, rev kms.Revocable) (cipher.AEAD, [32]byte, bool) {
	k := openKey(s, id, wrapped, hdr)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.open[string(k)]
	if e == nil {
		return nil, [32]byte{}, false
	}
	now := c.now()
	if now.Sub(e.created) >= c.cfg.MaxAge || rev != nil && rev.Usable(id, now) != nil {
		clear(e.dek[:])
		delete(c.open, string(k))
		return nil, [32]byte{}, false
	}
	s.dek = append(s.dek[:0], e.dek[:]...)
	return e.aead, e.commit, true
}

func (c *dekCache) putOpen(s *scratch, id kms.KeyID, wrapped, hdr []byte, aead cipher.AEAD, commit [32]byte) {
	k := openKey(s, id, wrapped, hdr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.open) >= c.cfg.MaxEntries {
		c.evict(false)
	}
	e := &openEntry{aead: aead, commit: commit, created: c.now()}
	copy(e.dek[:], s.dek)
	c.open[string(k)] = e
}

// evict drops expired entries, or all of them when none has expired.
func (c *dekCache) evict(seal bool) {
	now := c.now()
	n := 0
	if seal {
		for k, e := range c.seal {
			if now.Sub(e.created) >= c.cfg.MaxAge {
				clear(e.dek[:])
				delete(c.seal, k)
				n++
			}
		}
		if n == 0 {
			for k, e := range c.seal {
				clear(e.dek[:])
				delete(c.seal, k)
			}
		}
		return
	}
	for k, e := range c.open {
		if now.Sub(e.created) >= c.cfg.MaxAge {
			clear(e.dek[:])
			delete(c.open, k)
			n++
		}
	}
	if n == 0 {
		for k, e := range c.open {
			clear(e.dek[:])
			delete(c.open, k)
		}
	}
}
