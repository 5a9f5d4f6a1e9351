package httpguard

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newLimiter(1, 1, 3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		if _, ok := l.allow("k"+strconv.Itoa(i), now); !ok {
			t.Fatalf("first request of key %d refused", i)
		}
	}
	if n := l.len(); n != 3 {
		t.Fatalf("%d keys tracked, want 3", n)
	}
	// The most recent keys are kept: k99 is still exhausted.
	if d, ok := l.allow("k99", now); ok || d != time.Second {
		t.Fatalf("k99: ok %v, retry %v; want refused for 1s", ok, d)
	}
	if _, ok := l.allow("k99", now.Add(time.Second)); !ok {
		t.Fatal("k99 not refilled after 1s")
	}
}
