package tomtest

import (
	"testing"
	"time"
)

// SetMetricsWait sets how long HTTPMetricsCounters waits for the counters
// to rise, for the duration of t.
func SetMetricsWait(t testing.TB, d time.Duration) {
	old := metricsWait
	metricsWait = d
	t.Cleanup(func() { metricsWait = old })
}

// SetMetricsProbes sets how many requests HTTPMetricsCounters sends to
// reach a limit, for the duration of t.
func SetMetricsProbes(t testing.TB, n int) {
	old := metricsProbes
	metricsProbes = n
	t.Cleanup(func() { metricsProbes = old })
}
