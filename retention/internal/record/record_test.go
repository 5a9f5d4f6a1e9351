package record_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention/internal/record"
)

func valid() record.Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	return record.Record{Class: "content", Created: t0, RetainUntil: t0.Add(48 * time.Hour),
		LockUntil: t0.Add(time.Hour), Mode: record.ModeGovernance, LegalHold: true, Tenant: "t1", Subject: "s1"}
}

func TestRoundTrip(t *testing.T) {
	r := valid()
	b, err := record.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := record.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(r.Created) || !got.RetainUntil.Equal(r.RetainUntil) || !got.LockUntil.Equal(r.LockUntil) ||
		got.Class != r.Class || got.Mode != r.Mode || got.LegalHold != r.LegalHold || got.Tenant != r.Tenant || got.Subject != r.Subject {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"not json", `hello`},
		{"trailing", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"} {}`},
		{"unknown field", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z","x":1}`},
		{"version", `{"v":2,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"}`},
		{"no class", `{"v":1,"created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"}`},
		{"bad class", `{"v":1,"class":"Content!","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"}`},
		{"bad time", `{"v":1,"class":"content","created":"yesterday","retain_until":"2026-01-02T00:00:00Z"}`},
		{"missing until", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z"}`},
		{"until before created", `{"v":1,"class":"content","created":"2026-01-03T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"}`},
		{"lock without mode", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z","lock_until":"2026-01-01T10:00:00Z"}`},
		{"mode without lock", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z","mode":"governance"}`},
		{"lock past until", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z","lock_until":"2026-01-05T00:00:00Z","mode":"compliance"}`},
		{"unknown mode", `{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z","lock_until":"2026-01-01T10:00:00Z","mode":"soft"}`},
		{"invalid utf8", "{\"v\":1,\"class\":\"content\",\"created\":\"2026-01-01T00:00:00Z\",\"retain_until\":\"2026-01-02T00:00:00Z\",\"tenant\":\"\xff\"}"},
		{"year range", `{"v":1,"class":"content","created":"0001-01-01T00:00:01Z","retain_until":"2026-01-02T00:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := record.Parse([]byte(tt.in)); !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("Parse(%q) = %v, want ErrCorrupt", tt.in, err)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	r := valid()
	r.Mode = "soft"
	if _, err := record.Encode(r); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("Encode bad mode = %v, want ErrCorrupt", err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := record.Encode(valid())
	f.Add(b)
	f.Add([]byte(`{"v":1,"class":"content","created":"2026-01-01T00:00:00Z","retain_until":"2026-01-02T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := record.Parse(in)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := record.Encode(r)
		if err != nil {
			t.Fatalf("parsed record does not encode: %v", err)
		}
		r2, err := record.Parse(enc)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		enc2, err := record.Encode(r2)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding not stable: %q vs %q (%v)", enc, enc2, err)
		}
	})
}
