package main

import (
	"bytes"

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
// address; alerts are about log2(n) per kind per window, and their
// counts add up to every failure.
func TestAlertFlood(t *testing.T) {
	var out syncBuffer
	a, rec, clk := newBareApp(t, &out)
	h := handler(t, a)
	status := map[int]int{}
	get := func(path string) {
		req := httptest.NewRequest("GET", "https://localhost"+path, nil)
		req.RemoteAddr = "198.51.100.7:4711"
		req.Header.Set("Authorization", "Bearer tk_guess")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		status[w.Code]++
	}
	const doc = "/v1/tenants/acme/documents/0123456789abcdef0123456789abcdef"
	for range 136 {
		get(doc)
		clk.Add(80 * time.Second / 136)
	}
	for range 100 {
		get(doc)
	}
	// The first request after the window raises what is pending.
	clk.Add(time.Minute)
	get("/healthz")
	status[http.StatusOK]--

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
	// The flood spans two windows, of at most 236 failures each: at
	// once on the 1st, 2nd, 4th, ..., 128th, and one at the window's end.
	for kind, k := range n {
		if k > 2*9 {
			t.Errorf("%d %q alerts, want at most %d", k, kind, 2*9)
		}
	}
	if lines != n["authentication failures"]+n["rate limit exceeded"] {
		t.Errorf("%d ALERT lines, %v alert events", lines, n)
	}
	if sum["rate limit exceeded"] != status[http.StatusTooManyRequests] {
		t.Errorf("rate-limit alerts count %d, want %d", sum["rate limit exceeded"], status[http.StatusTooManyRequests])
	}
	if c := sum["authentication failures"]; c != 236 {
		t.Errorf("auth-failure alerts count %d, want every one of the 236 failures", c)
	}
	for _, e := range evs {
		if e.Action == "refapp.alert" && strings.Contains(attrValue(e, "detail"), "198.51.100.7") {
			t.Fatalf("client address in the alert's detail: %+v", e)
		}
	}
}
