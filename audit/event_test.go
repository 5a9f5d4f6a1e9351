package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"go.opentelemetry.io/otel/trace"
)

func TestNormalizeFillsFromContext(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "acme"})
	ctx = audit.WithRequestID(ctx, "req-1")
	loc := time.FixedZone("CET", 3600)
	e, err := audit.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, loc), Action: "test.do", Outcome: audit.OutcomeAllow}.Normalize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Event{
		Time:      time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC),
		Actor:     audit.Actor{Subject: "alice", Tenant: "acme"},
		Action:    "test.do",
		Outcome:   audit.OutcomeAllow,
		Severity:  audit.SeverityInfo,
		RequestID: "req-1",
		TraceID:   tid.String(),
		SpanID:    sid.String(),
	}
	if e.Time.Location() != time.UTC || !e.Time.Equal(want.Time) {
		t.Fatalf("time %v, want %v in UTC", e.Time, want.Time)
	}
	e.Time = want.Time
	if e.Actor != want.Actor || e.RequestID != want.RequestID || e.TraceID != want.TraceID || e.SpanID != want.SpanID || e.Severity != want.Severity {
		t.Fatalf("got %+v\nwant %+v", e, want)
	}
}

func TestEncodingIsStable(t *testing.T) {
	e := audit.Event{
		Time:       time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Actor:      audit.Actor{Subject: "alice", Tenant: "acme"},
		Action:     "rbac.decide",
		Resource:   "/docs/1",
		Outcome:    audit.OutcomeDeny,
		Reason:     "no matching allow",
		Severity:   audit.SeverityWarning,
		Attributes: []audit.Attr{audit.String("rule", "p"), audit.Personal("email", "a@example.com")},
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2026-01-02T03:04:05.000000006Z","actor":{"subject":"alice","tenant":"acme"},"action":"rbac.decide","resource":"/docs/1","outcome":"deny","reason":"no matching allow","severity":"warning","attributes":[{"key":"rule","value":"p"},{"key":"email","value":"a@example.com","personal":true}]}`
	if string(b) != want {
		t.Fatalf("encoding changed:\n got %s\nwant %s", b, want)
	}
	back, err := audit.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if string(b2) != want {
		t.Fatalf("round trip:\n got %s\nwant %s", b2, want)
	}
}

func TestBadEvents(t *testing.T) {
	ok := audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow}
	cases := []struct {
		name string
		e    audit.Event
		want error
	}{
		{"empty action", audit.Event{Outcome: audit.OutcomeAllow}, audit.ErrInvalidEvent},
		{"empty outcome", audit.Event{Action: "x.y"}, audit.ErrInvalidEvent},
		{"unknown outcome", audit.Event{Action: "x.y", Outcome: "maybe"}, audit.ErrInvalidEvent},
		{"unknown severity", audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow, Severity: "meh"}, audit.ErrInvalidEvent},
		{"invalid utf-8", audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow, Reason: "\xff"}, audit.ErrInvalidEvent},
		{"empty attr key", audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{{Value: "v"}}}, audit.ErrInvalidEvent},
		{"too large", func() audit.Event { e := ok; e.Reason = strings.Repeat("a", audit.MaxEventSize); return e }(), audit.ErrEventTooLarge},
	}
	var r audit.Recorder
	for _, c := range cases {
		if err := r.Log(context.Background(), c.e); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	if err := r.Log(context.Background(), ok); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	if n := len(r.Events()); n != 1 {
		t.Fatalf("recorded %d events, want 1", n)
	}
	for _, b := range []string{"", "{", `{"action":"x.y","outcome":"allow","severity":"info","reason":"\xff"}`, `{"action":"","outcome":"allow","severity":"info"}`} {
		if _, err := audit.Unmarshal([]byte(b)); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("Unmarshal(%q): err %v, want ErrInvalidEvent", b, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-02T03:04:05Z","actor":{"subject":"a","tenant":"t"},"action":"x.y","outcome":"allow","severity":"info"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.Unmarshal(b)
		if err != nil {
			return
		}
		// Whatever parses must encode again and parse to the same event.
		enc, err := e.Marshal()
		if err != nil {
			t.Fatalf("parsed event does not encode: %v", err)
		}
		e2, err := audit.Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-encoded event does not parse: %v", err)
		}
		enc2, _ := e2.Marshal()
		if string(enc) != string(enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}
