package main

import (
	"context"
	"errors"
	"sync"
	"time"

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

// Four-eyes approval of dangerous actions (TOM 000: "Vier-Augen-Prinzip für
// Produktivzugriffe"): one admin requests, a different admin approves,
// and only then does the action run.

var (
	errSameApprover = errors.New("refapp: four-eyes: approver is the requester")
	errNoRequest    = errors.New("refapp: four-eyes: no such pending request")
)

type pendingRequest struct {
	id, requester, tenant, action, reason string
	created                               time.Time
}

type fourEyes struct {
	mu      sync.Mutex
	now     func() time.Time
	ttl     time.Duration
	pending map[string]pendingRequest
}

func newFourEyes(now func() time.Time) *fourEyes {
	return &fourEyes{now: now, ttl: 24 * time.Hour, pending: map[string]pendingRequest{}}
}

func (f *fourEyes) request(_ context.Context, requester, tenant, action, reason string) (string, error) {
	id := newID()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[id] = pendingRequest{id: id, requester: requester, tenant: tenant, action: action, reason: reason, created: f.now()}
	return id, nil
}

// approve consumes the pending request id for tenant when approver is not
// its requester. A request can be approved once.
func (f *fourEyes) approve(_ context.Context, id, approver, tenant string) (pendingRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[id]
	if !ok || p.tenant != tenant || f.now().Sub(p.created) > f.ttl {
		return pendingRequest{}, errNoRequest
	}
	if p.requester == approver {
		return pendingRequest{}, errSameApprover
	}
	delete(f.pending, id)
	return p, nil
}

// breakGlass holds time-limited emergency grants (TOM 000 §2:
// "Break-Glass-Mechanismen mit Protokollierung").
type breakGlass struct {
	mu     sync.Mutex
	ttl    time.Duration
	now    func() time.Time
	grants map[[2]string]time.Time
}

func newBreakGlass(ttl time.Duration, now func() time.Time) *breakGlass {
	return &breakGlass{ttl: ttl, now: now, grants: map[[2]string]time.Time{}}
}

func (b *breakGlass) open(subject, tenant string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	until := b.now().Add(b.ttl)
	b.grants[[2]string{subject, tenant}] = until
	return until
}

func (b *breakGlass) active(subject, tenant string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.grants[[2]string{subject, tenant}]
	return ok && b.now().Before(until)
}
