package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tomkit/tomkit/audit"
)

// monitor keeps TOM 000 §6's monitoring promise: authentication failures
// and rate-limit violations are counted (OTel metrics) and raise alerts
// through a hook.
//
// An alert is raised for every break-glass. Authentication failures from
// one client address beyond 5 in a burst (1 per second sustained), and
// rate-limit violations, are aggregated: the first in each alertWindow
// raises an alert at once, later ones in the window are counted, and the
// count goes out with the next alert of the kind, or with flush once the
// window is over. So a flood is one alert per kind per window, carrying
// how many it stands for, never one alert per request.
type monitor struct {
	authFailures metric.Int64Counter
	rateLimits   metric.Int64Counter
	alerts       metric.Int64Counter
	hook         func(ctx context.Context, a alert)
	now          func() time.Time

	authSeen *limiter // per client address: the alert threshold

	mu   sync.Mutex
	aggs map[string]*aggregate // by alert title and stream
}

// alertWindow is the aggregation window of repeated alerts.
const alertWindow = time.Minute

// aggregate is the state of one stream of repeated alerts: one kind
// (title), and for rate limits one principal, so that an anonymous flood
// does not hide a principal's own violations for a window.
type aggregate struct {
	title   string
	last    time.Time // when the last alert of this stream was raised
	pending int       // occurrences since then that raised none
	detail  string    // the latest occurrence's detail
	client  string    // the latest occurrence's client address
	actor   audit.Actor
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
	// Count is how many occurrences the alert stands for: 1 for a
	// single event, more for an aggregated one.
	Count int
	// Client is the client address, if the alert concerns one. It is
	// personal data: the audit event carries it pseudonymized.
	Client string
}

// newMonitor returns a monitor whose hook writes an "ALERT" line to w and
// an audit event of critical severity. Replace hook to page someone. now
// is the clock; nil means time.Now.
func newMonitor(log audit.Logger, w io.Writer, now func() time.Time) (*monitor, error) {
	if now == nil {
		now = time.Now
	}
	m := &monitor{now: now, authSeen: newLimiter(1, 5, now), aggs: map[string]*aggregate{}}
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
		client := ""
		if a.Client != "" {
			// The operator's console gets the address, to act on it;
			// the audit event gets its pseudonym.
			client = " client=" + a.Client
		}
		fmt.Fprintf(w, "ALERT %s %q count=%d subject=%s tenant=%s%s request=%s: %s\n", a.Time.UTC().Format(time.RFC3339), a.Title, a.Count, a.Actor.Subject, a.Actor.Tenant, client, a.Request, a.Detail)
		wmu.Unlock()
		attrs := []audit.Attr{audit.String("detail", a.Detail), audit.String("count", strconv.Itoa(a.Count))}
		if a.Client != "" {
			attrs = append(attrs, audit.Personal("client.address", a.Client))
		}
		_ = log.Log(ctx, audit.Event{
			Time:       a.Time,
			Actor:      a.Actor,
			Action:     "refapp.alert",
			Outcome:    audit.OutcomeAllow,
			Severity:   audit.SeverityCritical,
			Reason:     a.Title,
			Attributes: attrs,
		})
	}
	return m, nil
}

func actorOrAnonymous(ctx context.Context) audit.Actor {
	a := audit.ActorFrom(ctx)
	if a == (audit.Actor{}) {
		a = audit.Actor{Subject: "anonymous", Tenant: "-"}
	}
	return a
}

// alert raises one alert at once (break-glass).
func (m *monitor) alert(ctx context.Context, title, detail string) {
	m.raise(ctx, alert{Time: m.now(), Title: title, Detail: detail, Actor: actorOrAnonymous(ctx), Request: audit.RequestIDFrom(ctx), Count: 1})
}

func (m *monitor) raise(ctx context.Context, a alert) {
	m.alerts.Add(ctx, 1, metric.WithAttributes(attribute.String("title", a.Title)))
	m.hook(ctx, a)
}

// repeated records one occurrence of an aggregated alert and raises the
// alert if none of its stream (title and stream) was raised in the last
// alertWindow.
func (m *monitor) repeated(ctx context.Context, title, stream, detail, client string) {
	now := m.now()
	actor := actorOrAnonymous(ctx)
	key := title + "\x00" + stream
	m.mu.Lock()
	g, ok := m.aggs[key]
	if !ok {
		g = &aggregate{title: title}
		m.aggs[key] = g
	}
	g.pending++
	g.detail, g.client, g.actor = detail, client, actor
	if ok && now.Sub(g.last) < alertWindow {
		m.mu.Unlock()
		return
	}
	a := g.take(now)
	m.mu.Unlock()
	a.Request = audit.RequestIDFrom(ctx)
	m.raise(ctx, a)
}

// take turns the pending occurrences into one alert. m.mu is held.
func (g *aggregate) take(now time.Time) alert {
	a := alert{Time: now, Title: g.title, Detail: g.detail, Actor: g.actor, Count: g.pending, Client: g.client}
	if g.pending > 1 {
		a.Detail = fmt.Sprintf("%d times since %s, last: %s", g.pending, g.last.UTC().Format(time.RFC3339), g.detail)
	}
	g.last, g.pending = now, 0
	return a
}

// flush raises, for each kind whose window is over, one alert with the
// occurrences not yet reported. The service calls it every alertWindow.
func (m *monitor) flush(ctx context.Context) {
	now := m.now()
	var out []alert
	m.mu.Lock()
	for _, g := range m.aggs {
		if g.pending > 0 && now.Sub(g.last) >= alertWindow {
			out = append(out, g.take(now))
		}
	}
	m.mu.Unlock()
	for _, a := range out {
		m.raise(ctx, a)
	}
}

// authFailure counts an authentication failure from client and, beyond
// the per-address threshold, raises the aggregated alert.
func (m *monitor) authFailure(ctx context.Context, client string) {
	m.authFailures.Add(ctx, 1)
	if !m.authSeen.allow(client) {
		m.repeated(ctx, "authentication failures", "", "repeated authentication failures from one client address", client)
	}
}

// rateLimited counts a request refused by a rate limiter (subject is the
// principal, or "anonymous" for the per-address limit) and raises the
// aggregated alert.
func (m *monitor) rateLimited(ctx context.Context, subject, client string) {
	m.rateLimits.Add(ctx, 1, metric.WithAttributes(attribute.String("subject", subject)))
	m.repeated(ctx, "rate limit exceeded", subject, subject+" exceeded the rate limit", client)
}
