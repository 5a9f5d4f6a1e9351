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
	"github.com/tomkit/tomkit/httpguard"
)

// monitor keeps TOM 000 §6's monitoring promise: alerts go to the
// operator's console (an "ALERT" line) and into the audit log (a
// critical "refapp.alert" event), and are counted (refapp.alerts).
//
// An alert is raised for every break-glass. Authentication failures,
// rate-limit violations and audit outages are counted by httpguard
// (httpguard.auth.failures, exported as refapp.auth.failures; see
// telemetry.go), which raises their alerts (Config.AlertAtOnce): at once
// on the 1st, 2nd, 4th, 8th, ... of a kind in each minute, with the
// request that raised it, and the rest when the minute ends. So a flood
// of n requests is about log2(n) alerts, never one per request.
type monitor struct {
	alerts metric.Int64Counter
	hook   func(ctx context.Context, a alert)
	now    func() time.Time
}

// alert is what the hook receives. Detail never holds personal data.
type alert struct {
	Time    time.Time
	Title   string
	Detail  string
	Actor   audit.Actor
	Request string
	// Count is how many occurrences the alert stands for: 1 for a
	// single event, more for an aggregated one.
	Count int64
}

// newMonitor returns a monitor whose hook writes an "ALERT" line to w and
// an audit event of critical severity. Replace hook to page someone. now
// is the clock; nil means time.Now.
func newMonitor(log audit.Logger, w io.Writer, now func() time.Time) (*monitor, error) {
	if now == nil {
		now = time.Now
	}
	m := &monitor{now: now}
	var err error
	m.alerts, err = otel.Meter("github.com/tomkit/tomkit/examples/refapp").Int64Counter("refapp.alerts", metric.WithDescription("alerts raised"))
	if err != nil {
		return nil, err
	}
	var wmu sync.Mutex
	m.hook = func(ctx context.Context, a alert) {
		wmu.Lock()
		fmt.Fprintf(w, "ALERT %s %q count=%d subject=%s tenant=%s request=%s: %s\n", a.Time.UTC().Format(time.RFC3339), a.Title, a.Count, a.Actor.Subject, a.Actor.Tenant, a.Request, a.Detail)
		wmu.Unlock()
		_ = log.Log(ctx, audit.Event{
			Time:       a.Time,
			Actor:      a.Actor,
			Action:     "refapp.alert",
			Outcome:    audit.OutcomeAllow,
			Severity:   audit.SeverityCritical,
			Reason:     a.Title,
			Attributes: []audit.Attr{audit.String("detail", a.Detail), audit.String("count", strconv.FormatInt(a.Count, 10))},
		})
	}
	return m, nil
}

// alert raises one alert at once (break-glass).
func (m *monitor) alert(ctx context.Context, title, detail string) {
	a := audit.ActorFrom(ctx)
	if a == (audit.Actor{}) {
		a = audit.Actor{Subject: "anonymous", Tenant: "-"}
	}
	m.raise(ctx, alert{Time: m.now(), Title: title, Detail: detail, Actor: a, Request: audit.RequestIDFrom(ctx), Count: 1})
}

// guardTitles names httpguard's kinds of alert.
var guardTitles = map[string]string{
	httpguard.AlertAuthFailures:     "authentication failures",
	httpguard.AlertRateLimited:      "rate limit exceeded",
	httpguard.AlertAuditUnavailable: "audit unavailable",
}

// guardAlert is httpguard's Config.Alert. An alert raised at once comes
// with the ctx of the request that raised it: its id and actor go into
// the alert.
func (m *monitor) guardAlert(ctx context.Context, g httpguard.Alert) {
	title := guardTitles[g.Kind]
	if title == "" {
		title = g.Kind
	}
	actor := audit.ActorFrom(ctx)
	if actor == (audit.Actor{}) {
		actor = audit.Actor{Subject: "anonymous", Tenant: "-"}
	}
	detail := fmt.Sprintf("%d since %s", g.Count, g.Start.UTC().Format(time.RFC3339))
	m.raise(ctx, alert{Time: m.now(), Title: title, Detail: detail, Actor: actor, Request: audit.RequestIDFrom(ctx), Count: g.Count})
}

func (m *monitor) raise(ctx context.Context, a alert) {
	m.alerts.Add(ctx, 1, metric.WithAttributes(attribute.String("title", a.Title)))
	m.hook(ctx, a)
}
