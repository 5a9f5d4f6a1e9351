package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// syncBuffer is a bytes.Buffer safe for the hook's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// alertCounts sums the "count" of the refapp.alert events by title, and
// counts the events.
func alertCounts(t *testing.T, evs []audit.Event) (sum, n map[string]int) {
	t.Helper()
	sum, n = map[string]int{}, map[string]int{}
	for _, e := range evs {
		if e.Action != "refapp.alert" {
			continue
		}
		c, err := strconv.Atoi(attrValue(e, "count"))
		if err != nil || c < 1 {
			t.Fatalf("alert without a count: %+v", e)
		}
		sum[e.Reason] += c
		n[e.Reason]++
	}
	return sum, n
}

// TestAlertFlood replays the reported flood on an injected clock: 136
// failed authentications from one client in 80 s, then a burst of 100 at
// one instant. Every request is audited; the burst is rate limited per
// address; alerts are one per kind per window, and their counts add up.
func TestAlertFlood(t *testing.T) {
	var out syncBuffer
	a, rec, clk := newBareApp(t, &out)
	h := a.routes()
	status := map[int]int{}
	get := func() {
		req := httptest.NewRequest("GET", "https://localhost/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef", nil)
		req.RemoteAddr = "198.51.100.7:4711"
		req.Header.Set("Authorization", "Bearer tk_guess")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		status[w.Code]++
	}
	for range 136 {
		get()
		clk.Add(80 * time.Second / 136)
	}
	for range 100 {
		get()
	}
	clk.Add(alertWindow)
	a.mon.flush(t.Context())

	if status[http.StatusUnauthorized]+status[http.StatusTooManyRequests] != 236 || status[http.StatusTooManyRequests] != 100-anonBurst {
		t.Fatalf("statuses %v: want %d limited of the burst of 100, the rest 401", status, 100-anonBurst)
	}
	evs := rec.Events()
	if n := len(requestEvents(evs)); n != 236 {
		t.Fatalf("%d request events, want 236", n)
	}
	sum, n := alertCounts(t, evs)
	lines := strings.Count(out.String(), "ALERT ")
	t.Logf("%d ALERT lines; alerts by kind %v, counts %v", lines, n, sum)
	// The flood spans three windows (80 s, then the burst, then the
	// flush one window later): at most one alert per kind in each.
	for kind, k := range n {
		if k > 3 {
			t.Errorf("%d %q alerts, want at most 3", k, kind)
		}
	}
	if lines != n["authentication failures"]+n["rate limit exceeded"] {
		t.Errorf("%d ALERT lines, %v alert events", lines, n)
	}
	if sum["rate limit exceeded"] != status[http.StatusTooManyRequests] {
		t.Errorf("rate-limit alerts count %d, want %d", sum["rate limit exceeded"], status[http.StatusTooManyRequests])
	}
	if c := sum["authentication failures"]; c < 50 || c > status[http.StatusUnauthorized] {
		t.Errorf("auth-failure alerts count %d, want between 50 and %d", c, status[http.StatusUnauthorized])
	}
	// The client address is in the alert's event only as a pseudonym
	// attribute (personal), not in its text.
	for _, e := range evs {
		if e.Action == "refapp.alert" && strings.Contains(attrValue(e, "detail"), "198.51.100.7") {
			t.Fatalf("client address in the alert's detail: %+v", e)
		}
	}
}

// TestLimiterBounded checks that the per-address limiter keeps at most
// maxLimiterKeys buckets, dropping refilled ones first.
func TestLimiterBounded(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l := newLimiter(1, 2, clk.Now)
	l.max = 100
	for i := range 1000 {
		l.allow(fmt.Sprintf("192.0.2.%d", i))
		if l.size() > l.max {
			t.Fatalf("%d buckets after %d keys, limit %d", l.size(), i+1, l.max)
		}
	}
	// An active key keeps its empty bucket while idle ones are dropped.
	l.allow("attacker")
	l.allow("attacker")
	clk.Add(time.Second / 2)
	if l.allow("attacker") {
		t.Fatal("attacker's bucket refilled early")
	}
	clk.Add(10 * time.Second)
	for i := range 50 {
		l.allow(fmt.Sprintf("198.51.100.%d", i))
	}
	if l.size() > 51 {
		t.Fatalf("%d buckets: refilled buckets were not dropped", l.size())
	}
}
