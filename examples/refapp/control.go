package main

import (
	"sync"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per principal (golang.org/x/time/rate).
type limiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

func newLimiter(r float64, burst int) *limiter {
	return &limiter{r: rate.Limit(r), burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
