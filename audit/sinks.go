package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/tomkit/tomkit/internal/errtext"
)

// Fanout sends every event to several sinks. It is itself a [Logger].
//
// Durable sinks are fail-closed, as in Kubernetes' blocking-strict mode:
// Log writes the event to all of them at once and returns an error if any
// of them failed, so the caller fails the audited action. Best-effort
// sinks (an slog handler, OTel) are marked as such by being listed in
// BestEffort: they get the event only after every durable sink recorded
// it, and their errors never reach the caller.
//
// A Fanout with no durable sink refuses every event with [ErrNoLogger]:
// best-effort delivery alone is not an audit trail.
type Fanout struct {
	// Durable sinks must all record the event.
	Durable []Logger
	// BestEffort sinks may lose it.
	BestEffort []Logger
	// OnError, if set, receives best-effort sinks' errors. Nil drops
	// them.
	OnError func(error)
}

var _ Logger = (*Fanout)(nil)

// Log normalizes e once, so that every sink records the same time and
// ids, then writes it as described on [Fanout].
func (f *Fanout) Log(ctx context.Context, e Event) error {
	if len(f.Durable) == 0 {
		return fmt.Errorf("%w: fanout has no durable sink", ErrNoLogger)
	}
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(f.Durable))
	if len(f.Durable) == 1 {
		errs[0] = f.Durable[0].Log(ctx, e)
	} else {
		var wg sync.WaitGroup
		for i, s := range f.Durable {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Log(ctx, e)
			}()
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return errtext.Errorf("audit: durable sink failed: %w", err)
	}
	for _, s := range f.BestEffort {
		if err := s.Log(ctx, e); err != nil && f.OnError != nil {
			f.OnError(errtext.Errorf("audit: best-effort sink: %w", err))
		}
	}
	return nil
}

// SlogSink writes each event as one slog record to Handler: the message
// is the action, the level follows the severity, and the event's fields
// are in an "audit" group. It is the bridge from audit events to an
// existing slog pipeline (not the other way round: an slog record is not
// an audit event, because it has no outcome). slog handlers do not sync,
// so list it in [Fanout.BestEffort].
type SlogSink struct {
	// Handler receives the records. Required.
	Handler slog.Handler
	// Pseudonymizer turns personal attributes into pseudonyms. Nil means
	// they are redacted.
	Pseudonymizer *Pseudonymizer
}

var _ Logger = (*SlogSink)(nil)

// LevelNotice is the slog level of [SeverityNotice] events, between info
// and warn.
const LevelNotice = slog.LevelInfo + 2

func slogLevel(s Severity) slog.Level {
	switch s {
	case SeverityNotice:
		return LevelNotice
	case SeverityWarning:
		return slog.LevelWarn
	case SeverityCritical:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Log writes e through the handler. Events below the handler's level are
// dropped, as slog would.
func (s *SlogSink) Log(ctx context.Context, e Event) error {
	if s.Handler == nil {
		return ErrNoLogger
	}
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	e = protect(e, s.Pseudonymizer)
	level := slogLevel(e.Severity)
	if !s.Handler.Enabled(ctx, level) {
		return nil
	}
	r := slog.NewRecord(e.Time, level, e.Action, 0)
	fields := []any{
		slog.String("subject", e.Actor.Subject),
		slog.String("tenant", e.Actor.Tenant),
		slog.String("action", e.Action),
		slog.String("outcome", string(e.Outcome)),
		slog.String("severity", string(e.Severity)),
	}
	for _, kv := range [][2]string{{"resource", e.Resource}, {"reason", e.Reason}, {"request_id", e.RequestID}, {"trace_id", e.TraceID}, {"span_id", e.SpanID}} {
		if kv[1] != "" {
			fields = append(fields, slog.String(kv[0], kv[1]))
		}
	}
	if len(e.Attributes) > 0 {
		attrs := make([]any, len(e.Attributes))
		for i, a := range e.Attributes {
			attrs[i] = slog.String(a.Key, a.Value)
		}
		fields = append(fields, slog.Group("attributes", attrs...))
	}
	r.AddAttrs(slog.Group("audit", fields...))
	if err := s.Handler.Handle(ctx, r); err != nil {
		return errtext.Errorf("audit: slog: %w", err)
	}
	return nil
}

// OTelSink emits each event to OpenTelemetry, through the API only: as a
// span event named "audit.<action>" on the recording span in ctx, and, if
// Logger is set, as a log record (event name "audit.<action>") emitted with
// ctx, so that both carry the event's trace and span ids. The SDK behind
// them may drop data, so list it in [Fanout.BestEffort].
type OTelSink struct {
	// Logger, if set, receives a log record per event. Nil means span
	// events only.
	Logger otellog.Logger
	// Pseudonymizer turns personal attributes into pseudonyms. Nil means
	// they are redacted.
	Pseudonymizer *Pseudonymizer
}

var _ Logger = (*OTelSink)(nil)

// Log emits e.
func (s *OTelSink) Log(ctx context.Context, e Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	e = protect(e, s.Pseudonymizer)
	kvs := []attribute.KeyValue{
		attribute.String("audit.subject", e.Actor.Subject),
		attribute.String("audit.tenant", e.Actor.Tenant),
		attribute.String("audit.action", e.Action),
		attribute.String("audit.outcome", string(e.Outcome)),
		attribute.String("audit.severity", string(e.Severity)),
	}
	for _, kv := range [][2]string{{"audit.resource", e.Resource}, {"audit.reason", e.Reason}, {"audit.request_id", e.RequestID}, {"audit.trace_id", e.TraceID}, {"audit.span_id", e.SpanID}} {
		if kv[1] != "" {
			kvs = append(kvs, attribute.String(kv[0], kv[1]))
		}
	}
	for _, a := range e.Attributes {
		kvs = append(kvs, attribute.String("audit.attr."+a.Key, a.Value))
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("audit."+e.Action, trace.WithTimestamp(e.Time), trace.WithAttributes(kvs...))
	}
	if s.Logger != nil {
		var r otellog.Record
		r.SetEventName("audit." + e.Action)
		r.SetTimestamp(e.Time)
		r.SetSeverity(otelSeverity(e.Severity))
		r.SetSeverityText(string(e.Severity))
		r.SetBody(attribute.StringValue(e.Action))
		r.AddAttributes(kvs...)
		s.Logger.Emit(ctx, r)
	}
	return nil
}

func otelSeverity(s Severity) otellog.Severity {
	switch s {
	case SeverityNotice:
		return otellog.SeverityInfo2
	case SeverityWarning:
		return otellog.SeverityWarn
	case SeverityCritical:
		return otellog.SeverityError
	}
	return otellog.SeverityInfo
}
