package envelope

import (
	"sync"
	"time"

	"github.com/tomkit/tomkit/crypto/kms"
)

// Cache bounds the reuse of one DEK across messages, like the caching
// cryptographic materials manager of the AWS Encryption SDK. Each message
// still gets its own payload key, derived from the DEK and a fresh 256-bit
// nonce, so reuse never repeats a (key, nonce) pair; the limits bound how
// much data one compromised DEK exposes and how long a revoked KMS key
// keeps working. A cached DEK serves only messages with the same
// encryption context, and cached unwrapped DEKs serve Open only for the
// same wrapped key and context.
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
	id       kms.KeyID
	dek      [dekLen]byte
	wrapped  []byte
	created  time.Time
	messages uint64
	bytes    int64
}

type openEntry struct {
	dek     [dekLen]byte
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

// getSeal returns a cached DEK for s.canon in s.dek when one is within all
// limits, and counts the message against it.
func (c *dekCache) getSeal(s *scratch, size int64) (kms.KeyID, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.seal[string(s.canon)]
	if e == nil {
		return kms.KeyID{}, nil, false
	}
	if c.now().Sub(e.created) >= c.cfg.MaxAge || e.messages >= c.cfg.MaxMessages || e.bytes+size > c.cfg.MaxBytes || size > c.cfg.MaxBytes {
		clear(e.dek[:])
		delete(c.seal, string(s.canon))
		return kms.KeyID{}, nil, false
	}
	e.messages++
	e.bytes += size
	s.dek = append(s.dek[:0], e.dek[:]...)
	return e.id, e.wrapped, true
}

func (c *dekCache) putSeal(s *scratch, id kms.KeyID, size int64) {
	if size > c.cfg.MaxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seal) >= c.cfg.MaxEntries {
		c.evict(true)
	}
	e := &sealEntry{id: id, wrapped: append([]byte(nil), s.wrapped...), created: c.now(), messages: 1, bytes: size}
	copy(e.dek[:], s.dek)
	c.seal[string(s.canon)] = e
}

func openKey(s *scratch, id kms.KeyID, wrapped []byte) []byte {
	k := append(s.info[:0], id.Ring[:]...)
	k = append(k, byte(id.Key>>24), byte(id.Key>>16), byte(id.Key>>8), byte(id.Key), byte(len(wrapped)>>8), byte(len(wrapped)))
	k = append(k, wrapped...)
	k = append(k, s.canon...)
	s.info = k
	return k
}

func (c *dekCache) getOpen(s *scratch, id kms.KeyID, wrapped []byte) bool {
	k := openKey(s, id, wrapped)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.open[string(k)]
	if e == nil {
		return false
	}
	if c.now().Sub(e.created) >= c.cfg.MaxAge {
		clear(e.dek[:])
		delete(c.open, string(k))
		return false
	}
	s.dek = append(s.dek[:0], e.dek[:]...)
	return true
}

func (c *dekCache) putOpen(s *scratch, id kms.KeyID, wrapped []byte) {
	k := openKey(s, id, wrapped)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.open) >= c.cfg.MaxEntries {
		c.evict(false)
	}
	e := &openEntry{created: c.now()}
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
