package backendkit

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tomkit/tomkit/retention"
)

// TestMetaRoundTrip sets every field of retention.Meta, so that a field
// added to Meta and not carried by EncodeMeta and ParseMeta fails here.
func TestMetaRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := retention.Meta{Class: retention.ClassContent, Created: t0, RetainUntil: t0.Add(48 * time.Hour),
		LockUntil: t0.Add(time.Hour), Mode: retention.LockGovernance, LegalHold: true, Tenant: "acme", Subject: "alice"}
	v := reflect.ValueOf(m)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("Meta.%s is not set in this test", v.Type().Field(i).Name)
		}
	}
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	if _, err := ParseMeta(append(b, 'x')); !errors.Is(err, retention.ErrCorruptMeta) {
		t.Fatalf("ParseMeta(trailing byte) = %v, want ErrCorruptMeta", err)
	}
	if err := CheckKey("a\x00b"); !errors.Is(err, retention.ErrInvalidKey) {
		t.Fatalf("CheckKey(control character) = %v, want ErrInvalidKey", err)
	}
}
