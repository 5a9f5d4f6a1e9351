package httpguard

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Kinds of [Alert].
const (
	AlertAuthFailures = "authentication_failures"
	AlertRateLimited  = "rate_limit_violations"
	// AlertAuditUnavailable counts responses replaced by 503 because
	// the Logger failed: the service is refusing work.
	AlertAuditUnavailable = "audit_unavailable"
)

// Alert is what Config.Alert receives: how many failures of one kind the
// guard saw in one window [Start, End). With Config.AlertAtOnce, an alert
// raised at once counts the failures since the previous one, from the
// first of them (Start) to the one that raised it (End).
type Alert struct {
	Kind       string // AlertAuthFailures, AlertRateLimited or AlertAuditUnavailable
	Count      int64
	Start, End time.Time
}

// monitor counts authentication failures and rate-limit violations with
// OTel API counters and aggregates them into alerts per window and kind.
// A window's alert is raised by the first request after it ends, and by a
// timer in case none comes; with atOnce, the failures that bring the
// window's count to a power of two raise one at once as well.
type monitor struct {
	authFailures metric.Int64Counter
	rateLimits   metric.Int64Counter
	auditErrors  metric.Int64Counter
	hook         func(context.Context, Alert)
	window       time.Duration
	atOnce       bool
	now          func() time.Time

	mu      sync.Mutex
	pending map[string]*pending
}

// pending is one kind's window: a the failures not yet raised (Start is
// the window's start until an at-once alert), total all of the window's.
type pending struct {
	a     Alert
	total int64
	first time.Time // the first failure not yet raised
}

func newMonitor(mp metric.MeterProvider, hook func(context.Context, Alert), window time.Duration, atOnce bool, now func() time.Time) (*monitor, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("github.com/tomkit/tomkit/httpguard")
	m := &monitor{hook: hook, window: window, atOnce: atOnce, now: now, pending: map[string]*pending{}}
	var err error
	if m.authFailures, err = meter.Int64Counter("httpguard.auth.failures", metric.WithDescription("requests that failed authentication")); err != nil {
		return nil, err
	}
	if m.rateLimits, err = meter.Int64Counter("httpguard.ratelimit.violations", metric.WithDescription("requests refused by a rate limit")); err != nil {
		return nil, err
	}
	if m.auditErrors, err = meter.Int64Counter("httpguard.audit.failures", metric.WithDescription("responses refused because their access-log event could not be written")); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *monitor) auditFailure(ctx context.Context) {
	m.auditErrors.Add(ctx, 1)
	m.count(ctx, AlertAuditUnavailable)
}

func (m *monitor) authFailure(ctx context.Context, why string) {
	m.authFailures.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", why)))
	m.count(ctx, AlertAuthFailures)
}

func (m *monitor) rateLimited(ctx context.Context, kind string) {
	m.rateLimits.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", kind)))
	m.count(ctx, AlertRateLimited)
}

// count records one failure of kind by the request of ctx.
func (m *monitor) count(ctx context.Context, kind string) {
	if m.hook == nil {
		return
	}
	now := m.now()
	m.flushDue(now)
	m.mu.Lock()
	p := m.pending[kind]
	if p == nil {
		start := now.Truncate(m.window)
		p = &pending{a: Alert{Kind: kind, Start: start, End: start.Add(m.window)}}
		m.pending[kind] = p
		// A safety net for a service that gets no request after the
		// window: the real clock raises it then.
		time.AfterFunc(p.a.End.Sub(now)+time.Second, func() { m.flushDue(m.now()) })
	}
	if p.a.Count == 0 {
		p.first = now
	}
	p.a.Count++
	p.total++
	if !m.atOnce || p.total&(p.total-1) != 0 {
		m.mu.Unlock()
		return
	}
	// The 1st, 2nd, 4th, 8th, ... failure of the window: at once, with
	// the request's ctx (its request id and actor).
	a := Alert{Kind: kind, Count: p.a.Count, Start: p.first, End: now}
	p.a.Count = 0
	m.mu.Unlock()
	m.hook(ctx, a)
}

// flushDue raises the alerts of every window that ended by now.
func (m *monitor) flushDue(now time.Time) {
	if m.hook == nil {
		return
	}
	var due []Alert
	m.mu.Lock()
	for k, p := range m.pending {
		if !now.Before(p.a.End) {
			if p.a.Count > 0 {
				due = append(due, p.a)
			}
			delete(m.pending, k)
		}
	}
	m.mu.Unlock()
	for _, a := range due {
		m.hook(context.Background(), a)
	}
}
