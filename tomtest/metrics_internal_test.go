package tomtest

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	got, err := parseCounters(strings.NewReader(`# HELP refapp_auth_failures_total requests that failed authentication
# TYPE refapp_auth_failures_total counter
refapp_auth_failures_total{reason="unknown token"} 3
refapp_auth_failures_total{reason="missing token"} 2
# TYPE refapp_open_gauge gauge
refapp_open_gauge 9
`))
	if err != nil {
		t.Fatal(err)
	}
	if got["refapp_auth_failures_total"] != 5 || len(got) != 1 {
		t.Fatalf("parseCounters = %v, want refapp_auth_failures_total 5 and no gauge", got)
	}
	for _, bad := range []string{"x{ 1\n", "# TYPE x counter\nx abc\n"} {
		if _, err := parseCounters(strings.NewReader(bad)); err == nil {
			t.Errorf("parseCounters(%q) accepted", bad)
		}
	}
}

// FuzzParseCounters: any input either fails or gives finite-or-not
// counter totals without panicking, and parsing is deterministic.
func FuzzParseCounters(f *testing.F) {
	f.Add([]byte("# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\n"))
	f.Add([]byte("a 1\n"))
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, errA := parseCounters(bytes.NewReader(b))
		c, errC := parseCounters(bytes.NewReader(b))
		if (errA == nil) != (errC == nil) || len(a) != len(c) {
			t.Fatalf("not deterministic: %v %v / %v %v", a, errA, c, errC)
		}
		for k, v := range a {
			if w := c[k]; w != v && !(math.IsNaN(v) && math.IsNaN(w)) {
				t.Fatalf("%s: %v then %v", k, v, w)
			}
		}
	})
}
