package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/log/embedded"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type failLogger struct{ err error }

func (f failLogger) Log(context.Context, audit.Event) error { return f.err }

func TestFanout(t *testing.T) {
	ctx := context.Background()
	e := audit.Event{Action: "doc.read", Outcome: audit.OutcomeAllow}
	boom := errors.New("disk full")

	tests := []struct {
		name        string
		f           audit.Fanout
		wantErr     error
		wantBestErr bool
	}{
		{"no durable sink", audit.Fanout{BestEffort: []audit.Logger{&audit.Recorder{}}}, audit.ErrNoLogger, false},
		{"durable fails", audit.Fanout{Durable: []audit.Logger{&audit.Recorder{}, failLogger{boom}}}, boom, false},
		{"best effort fails", audit.Fanout{Durable: []audit.Logger{&audit.Recorder{}}, BestEffort: []audit.Logger{failLogger{boom}}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []error
			tt.f.OnError = func(err error) { got = append(got, err) }
			err := tt.f.Log(ctx, e)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Log: %v, want %v", err, tt.wantErr)
			}
			if (len(got) > 0) != tt.wantBestErr {
				t.Fatalf("best-effort errors %v", got)
			}
		})
	}

	// Every sink sees the same normalized event; best-effort sinks
	// only after the durable ones recorded it.
	var d1, d2, b audit.Recorder
	f := audit.Fanout{Durable: []audit.Logger{&d1, &d2}, BestEffort: []audit.Logger{&b}}
	if err := f.Log(ctx, e); err != nil {
		t.Fatal(err)
	}
	if !d1.Events()[0].Time.Equal(d2.Events()[0].Time) || !d1.Events()[0].Time.Equal(b.Events()[0].Time) {
		t.Fatal("sinks saw different times")
	}
	var b2 audit.Recorder
	f = audit.Fanout{Durable: []audit.Logger{failLogger{boom}}, BestEffort: []audit.Logger{&b2}}
	f.Log(ctx, e)
	if len(b2.Events()) != 0 {
		t.Fatal("best-effort sink got an event the durable sink refused")
	}
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	s := &audit.SlogSink{Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})}
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	err := s.Log(ctx, audit.Event{Action: "auth.login", Outcome: audit.OutcomeDeny, Severity: audit.SeverityWarning,
		Attributes: []audit.Attr{audit.Personal("email", "alice@example.com"), audit.String("method", "password")}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "alice@example.com") {
		t.Fatal("personal data reached the slog handler")
	}
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Audit struct {
			Subject    string            `json:"subject"`
			Outcome    string            `json:"outcome"`
			Attributes map[string]string `json:"attributes"`
		} `json:"audit"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rec.Level != "WARN" || rec.Msg != "auth.login" || rec.Audit.Subject != "alice" || rec.Audit.Outcome != "deny" ||
		rec.Audit.Attributes["email"] != audit.Redacted || rec.Audit.Attributes["method"] != "password" {
		t.Fatalf("record %+v", rec)
	}
	if err := (&audit.SlogSink{}).Log(ctx, audit.Event{Action: "a.b", Outcome: audit.OutcomeAllow}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("no handler: %v", err)
	}
}

type memLogger struct {
	embedded.Logger
	mu   sync.Mutex
	recs []otellog.Record
	scs  []trace.SpanContext
}

func (m *memLogger) Emit(ctx context.Context, r otellog.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r.Clone())
	m.scs = append(m.scs, trace.SpanContextFromContext(ctx))
}

func (m *memLogger) Enabled(context.Context, otellog.EnabledParameters) bool { return true }

func TestOTelSink(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	ml := &memLogger{}
	s := &audit.OTelSink{Logger: ml}
	err := s.Log(ctx, audit.Event{Action: "doc.read", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.Personal("email", "bob@example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	span.End()
	sc := span.SpanContext()

	spans := sr.Ended()
	if len(spans) != 1 || len(spans[0].Events()) != 1 {
		t.Fatalf("spans %v", spans)
	}
	ev := spans[0].Events()[0]
	attrs := map[attribute.Key]string{}
	for _, kv := range ev.Attributes {
		attrs[kv.Key] = kv.Value.AsString()
	}
	if ev.Name != "audit.doc.read" || attrs["audit.trace_id"] != sc.TraceID().String() || attrs["audit.span_id"] != sc.SpanID().String() || attrs["audit.attr.email"] != audit.Redacted {
		t.Fatalf("span event %s %v", ev.Name, attrs)
	}
	if len(ml.recs) != 1 || ml.recs[0].EventName() != "audit.doc.read" || ml.scs[0].TraceID() != sc.TraceID() || ml.scs[0].SpanID() != sc.SpanID() {
		t.Fatalf("log records %v", ml.recs)
	}
	ml.recs[0].WalkAttributes(func(kv attribute.KeyValue) bool {
		if strings.Contains(kv.Value.String(), "bob@example.com") {
			t.Errorf("personal data in log record attribute %s", kv.Key)
		}
		return true
	})
}
