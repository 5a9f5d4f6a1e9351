package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// TestInvalidUTF8IsEscaped checks that text that is not valid UTF-8 (a
// stray byte, an overlong encoding, a surrogate) is recorded escaped and
// marked, never refused: an encoding problem is never an audit outage.
func TestInvalidUTF8IsEscaped(t *testing.T) {
	in := audit.Event{
		Actor:    audit.Actor{Subject: "anonymous", Tenant: "acme\xc0\xaf"},
		Action:   "x.y",
		Resource: "/\xff/a\\b",
		Outcome:  audit.OutcomeAllow,
		Reason:   "\xff",
		Attributes: []audit.Attr{
			audit.String("ok", "plain \\x41"),
			audit.String("path", "/v1/\xed\xa0\x80"),
			audit.Personal("k\xfe", "v"),
		},
	}
	orig := append([]audit.Attr(nil), in.Attributes...)
	var r audit.Recorder
	if err := r.Log(context.Background(), in); err != nil {
		t.Fatalf("Log: %v", err)
	}
	if in.Attributes[1] != orig[1] {
		t.Fatal("Log modified the caller's attributes")
	}
	e := r.Events()[0]
	want := map[string]string{
		"actor.tenant":       `acme\xC0\xAF`,
		"resource":           `/\xFF/a\\b`,
		"reason":             `\xFF`,
		"attributes.1.value": `/v1/\xED\xA0\x80`,
		"attributes.2.key":   `k\xFE`,
	}
	got := map[string]string{
		"actor.tenant": e.Actor.Tenant, "resource": e.Resource, "reason": e.Reason,
		"attributes.1.value": e.Attributes[1].Value, "attributes.2.key": e.Attributes[2].Key,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if e.Attributes[0].Value != `plain \x41` {
		t.Errorf("valid text changed: %q", e.Attributes[0].Value)
	}
	wantEscaped := []string{"actor.tenant", "resource", "reason", "attributes.1.value", "attributes.2.key"}
	if strings.Join(e.Escaped, ",") != strings.Join(wantEscaped, ",") {
		t.Fatalf("Escaped = %q, want %q", e.Escaped, wantEscaped)
	}
	// Faithful: every marked field unescapes to the original bytes.
	for k, orig := range map[string]string{"actor.tenant": in.Actor.Tenant, "resource": in.Resource, "reason": in.Reason, "attributes.1.value": orig[1].Value, "attributes.2.key": orig[2].Key} {
		if back, err := audit.UnescapeText(got[k]); err != nil || back != orig {
			t.Errorf("UnescapeText(%s) = %q, %v; want %q", k, back, err, orig)
		}
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"escaped":["actor.tenant","resource","reason","attributes.1.value","attributes.2.key"]`) {
		t.Fatalf("encoding lacks the marker: %s", b)
	}
	back, err := audit.Unmarshal(b)
	if err != nil || back.Resource != e.Resource || len(back.Escaped) != len(wantEscaped) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// Marshal alone escapes as Normalize does.
	if b, err := (audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow, Severity: audit.SeverityInfo, Reason: "\x80"}).Marshal(); err != nil || !strings.Contains(string(b), `"reason":"\\x80"`) {
		t.Fatalf("Marshal: %s %v", b, err)
	}
}

func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "a", "\xff", "\\x41", "\xc0\xaf", "\xed\xa0\x80", "é\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := audit.EscapeText(s)
		if !utf8.ValidString(esc) {
			t.Fatalf("EscapeText(%q) = %q, not valid UTF-8", s, esc)
		}
		back, err := audit.UnescapeText(esc)
		if err != nil || back != s {
			t.Fatalf("UnescapeText(EscapeText(%q)) = %q, %v", s, back, err)
		}
		e, err := audit.Event{Action: "x.y", Outcome: audit.OutcomeAllow, Resource: s}.Normalize(context.Background())
		if err != nil {
			t.Fatalf("Normalize refused %q: %v", s, err)
		}
		if _, err := e.Marshal(); err != nil {
			t.Fatalf("Marshal refused %q: %v", s, err)
		}
	})
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

var normEvent = audit.Event{
	Time:       time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	Actor:      audit.Actor{Subject: "alice", Tenant: "acme"},
	Action:     "refapp.document.read",
	Resource:   "/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef",
	Outcome:    audit.OutcomeAllow,
	Severity:   audit.SeverityInfo,
	RequestID:  "0123456789abcdef01234567",
	Attributes: []audit.Attr{audit.String("http.method", "GET"), audit.String("http.status", "200"), audit.Personal("client.address", "192.0.2.1")},
}

// BenchmarkNormalizeMarshal is what every sink does to an event:
// normalize (escaping, checks) and encode.
func BenchmarkNormalizeMarshal(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e, err := normEvent.Normalize(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNormalizeMarshalBaseline is the floor: encoding/json alone.
func BenchmarkNormalizeMarshalBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(normEvent); err != nil {
			b.Fatal(err)
		}
	}
}
