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
// guard saw in one window [Start, End). With Config.AlertFirst, the
// window's first failure is also raised at once, with Count 1 and Start
// and End both its time, and is not counted again at the window's end.
type Alert struct {
	Kind       string // AlertAuthFailures, AlertRateLimited or AlertAuditUnavailable
	Count      int64
	Start, End time.Time
}

// monitor counts authentication failures and rate-limit violations with
// OTel API counters and aggregates them into one alert per window and
// kind. A window's alert is raised by the first request after it ends,
// and by a timer in case none comes.
type monitor struct {
	authFailures metric.Int64Counter
	rateLimits   metric.Int64Counter
	auditErrors  metric.Int64Counter
	hook         func(context.Context, Alert)
	window       time.Duration
	first        bool
	now          func() time.Time

	mu      sync.Mutex
	pending map[string]*Alert
}

func newMonitor(mp metric.MeterProvider, hook func(context.Context, Alert), window time.Duration, first bool, now func() time.Time) (*monitor, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("github.com/tomkit/tomkit/httpguard")
	m := &monitor{hook: hook, window: window, first: first, now: now, pending: map[string]*Alert{}}
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
	m.count(AlertAuditUnavailable)
}

func (m *monitor) authFailure(ctx context.Context, why string) {
	m.authFailures.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", why)))
	m.count(AlertAuthFailures)
}

func (m *monitor) rateLimited(ctx context.Context, kind string) {
	m.rateLimits.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", kind)))
	m.count(AlertRateLimited)
}

func (m *monitor) count(kind string) {
	if m.hook == nil {
		return
	}
	now := m.now()
	m.flushDue(now)
	m.mu.Lock()
	a := m.pending[kind]
	if a == nil {
		start := now.Truncate(m.window)
		a = &Alert{Kind: kind, Start: start, End: start.Add(m.window)}
		m.pending[kind] = a
		// A safety net for a service that gets no request after the
		// window: the real clock raises it then.
		time.AfterFunc(a.End.Sub(now)+time.Second, func() { m.flushDue(m.now()) })
		if m.first {
			m.mu.Unlock()
			m.hook(context.Background(), Alert{Kind: kind, Count: 1, Start: now, End: now})
			return
		}
	}
	a.Count++
	m.mu.Unlock()
}

// flushDue raises the alerts of every window that ended by now.
func (m *monitor) flushDue(now time.Time) {
	if m.hook == nil {
		return
	}
	var due []Alert
	m.mu.Lock()
	for k, a := range m.pending {
		if !now.Before(a.End) {
			if a.Count > 0 {
				due = append(due, *a)
			}
			delete(m.pending, k)
		}
	}
	m.mu.Unlock()
	for _, a := range due {
		m.hook(context.Background(), a)
	}
}
