package main

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys bounds the number of buckets a limiter keeps, so that
// requests from many addresses cannot grow it without limit.
const maxLimiterKeys = 10000

// The limit on unauthenticated requests per client address: they are
// refused either way, and the limit keeps one client from turning each
// into a durable audit write at line rate.
const (
	anonRate  = 5  // unauthenticated requests per second per address
	anonBurst = 20 // burst of unauthenticated requests per address
)

// limiter is a token bucket per key (golang.org/x/time/rate): per
// principal, or per client address for unauthenticated requests. It
// keeps at most maxLimiterKeys buckets; when full it first drops the
// buckets that have refilled (a new bucket would be the same), then, if
// every key is active, an arbitrary one.
type limiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	now   func() time.Time
	max   int
	m     map[string]*rate.Limiter
}

func newLimiter(r rate.Limit, burst int, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{r: r, burst: burst, now: now, max: maxLimiterKeys, m: map[string]*rate.Limiter{}}
}

// allow takes a token from key's bucket and reports whether there was one.
func (l *limiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

func (l *limiter) evict(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < l.max {
			break
		}
		delete(l.m, k)
	}
}

// size is the number of buckets kept.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
