package main_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrape reads one counter from the instance's Prometheus endpoint.
func scrape(t *testing.T, r *refapp, name string) float64 {
	t.Helper()
	resp, err := http.Get(r.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", r.Metrics, resp.StatusCode, err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[2]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetricsEndpoint: /metrics is served on its own listener, in the
// Prometheus format, and the authentication-failure and rate-limit
// counters rise after provoked failures. Spans are not printed unless
// asked for.
func TestMetricsEndpoint(t *testing.T) {
	r := startRefapp(t, "", "-rate", "1", "-burst", "2")
	if r.Metrics == "" || strings.HasPrefix(r.Metrics, r.URL) {
		t.Fatalf("metrics URL %q (API %q)", r.Metrics, r.URL)
	}
	c := r.client()
	for range 3 {
		if p, err := r.do(c, "GET", "/documents", "not-a-token", nil); err != nil || p.Status != http.StatusUnauthorized {
			t.Fatalf("bad token: %v, %v", p.Status, err)
		}
	}
	if got := scrape(t, r, "refapp_auth_failures_total"); got < 3 {
		t.Errorf("refapp_auth_failures_total = %v after 3 failures", got)
	}
	limited := false
	for range 6 {
		p, err := r.do(c, "GET", "/documents", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		limited = limited || p.Status == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("no 429 at 1 request/s with burst 2")
	}
	if got := scrape(t, r, "refapp_ratelimit_violations_total"); got < 1 {
		t.Errorf("refapp_ratelimit_violations_total = %v after a 429", got)
	}
	// The API port does not serve metrics.
	if p, err := r.do(c, "GET", "/metrics", "alice", nil); err != nil || p.Status == http.StatusOK {
		t.Errorf("API /metrics: %v, %v", p.Status, err)
	}
	r.stop()
	if out := r.Stdout(); strings.Contains(out, "SpanContext") || strings.Contains(out, "TraceID") {
		t.Errorf("spans printed without -traces stdout:\n%.400s", out)
	}
}
