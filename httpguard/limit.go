package httpguard

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per key (golang.org/x/time/rate) in a table of
// bounded size: beyond max keys, the least recently seen is evicted.
type limiter struct {
	r     rate.Limit
	burst int
	max   int

	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // of *entry, most recent first
}

type entry struct {
	key string
	lim *rate.Limiter
}

func newLimiter(r rate.Limit, burst, max int) *limiter {
	return &limiter{r: r, burst: burst, max: max, m: map[string]*list.Element{}}
}

// allow takes a token for key at now. When none is left it returns false
// and how long until one is.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[key]
	if ok {
		l.lru.MoveToFront(el)
	} else {
		if l.lru.Len() >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*entry).key)
		}
		el = l.lru.PushFront(&entry{key: key, lim: rate.NewLimiter(l.r, l.burst)})
		l.m[key] = el
	}
	lim := el.Value.(*entry).lim
	if lim.AllowN(now, 1) {
		return 0, true
	}
	res := lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	res.CancelAt(now)
	return d, false
}

// len returns the number of keys tracked.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
