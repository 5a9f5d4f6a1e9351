package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/tomkit/tomkit/audit"
)

// monitor keeps TOM 000 §6's monitoring promise: authentication failures
// and rate-limit violations are counted (OTel metrics) and raise alerts
// through a hook.
//
// An alert is raised for every break-glass, for authentication failures
// from one client address beyond 5 in a burst (1 per second sustained),
// and for the first rate-limit violation of a principal in each minute.
type monitor struct {
	authFailures metric.Int64Counter
	rateLimits   metric.Int64Counter
	alerts       metric.Int64Counter
	hook         func(ctx context.Context, a alert)

	mu        sync.Mutex
	authSeen  map[string]*rate.Limiter
	limitSeen map[string]*rate.Limiter
}

// alert is what the hook receives. Detail never holds personal data: that
// goes in Attrs as audit.Personal attributes, which the audit log writes
// as pseudonyms (TOM 004 §1).
type alert struct {
	Time    time.Time
	Title   string
	Detail  string
	Actor   audit.Actor
	Request string
	Attrs   []audit.Attr
}

// newMonitor returns a monitor whose hook writes an "ALERT" line to w and
// an audit event of critical severity. Replace hook to page someone.
func newMonitor(log audit.Logger, w io.Writer) (*monitor, error) {
	m := &monitor{authSeen: map[string]*rate.Limiter{}, limitSeen: map[string]*rate.Limiter{}}
	meter := otel.Meter("github.com/tomkit/tomkit/examples/refapp")
	var err error
	if m.authFailures, err = meter.Int64Counter("refapp.auth.failures", metric.WithDescription("authentication failures")); err != nil {
		return nil, err
	}
	if m.rateLimits, err = meter.Int64Counter("refapp.ratelimit.violations", metric.WithDescription("requests refused by the rate limiter")); err != nil {
		return nil, err
	}
	if m.alerts, err = meter.Int64Counter("refapp.alerts", metric.WithDescription("alerts raised")); err != nil {
		return nil, err
	}
	var wmu sync.Mutex
	m.hook = func(ctx context.Context, a alert) {
		wmu.Lock()
		fmt.Fprintf(w, "ALERT %s %q subject=%s tenant=%s request=%s: %s\n", a.Time.UTC().Format(time.RFC3339), a.Title, a.Actor.Subject, a.Actor.Tenant, a.Request, a.Detail)
		wmu.Unlock()
		_ = log.Log(ctx, audit.Event{
			Actor:    a.Actor,
			Action:   "refapp.alert",
			Outcome:  audit.OutcomeAllow,
			Severity: audit.SeverityCritical,
			Reason:   a.Title,
			Attributes: append([]audit.Attr{
				audit.String("detail", a.Detail),
			}, a.Attrs...),
		})
	}
	return m, nil
}

func (m *monitor) alert(ctx context.Context, title, detail string, attrs ...audit.Attr) {
	m.alerts.Add(ctx, 1, metric.WithAttributes(attribute.String("title", title)))
	a := alert{Time: time.Now(), Title: title, Detail: detail, Actor: audit.ActorFrom(ctx), Request: audit.RequestIDFrom(ctx), Attrs: attrs}
	if a.Actor == (audit.Actor{}) {
		a.Actor = audit.Actor{Subject: "anonymous", Tenant: "-"}
	}
	m.hook(ctx, a)
}

func (m *monitor) seen(tbl map[string]*rate.Limiter, key string, r rate.Limit, burst int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := tbl[key]
	if !ok {
		l = rate.NewLimiter(r, burst)
		tbl[key] = l
	}
	return l.Allow()
}

func (m *monitor) authFailure(ctx context.Context, client string) {
	m.authFailures.Add(ctx, 1)
	if !m.seen(m.authSeen, client, 1, 5) {
		// The address is personal data: it goes into the audit log as
		// a pseudonym, never into the detail text.
		m.alert(ctx, "authentication failures", "repeated authentication failures from one client address", audit.Personal("client.address", client))
	}
}

func (m *monitor) rateLimited(ctx context.Context, subject string) {
	m.rateLimits.Add(ctx, 1, metric.WithAttributes(attribute.String("subject", subject)))
	if m.seen(m.limitSeen, subject, rate.Every(time.Minute), 1) {
		m.alert(ctx, "rate limit exceeded", subject+" exceeded the rate limit")
	}
}
