package tomtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is a service's Prometheus endpoint and the counters that
// [Service.HTTPMetricsCounters] watches on it.
type Metrics struct {
	// URL is the endpoint, for example http://127.0.0.1:9464/metrics. An
	// https URL is verified with the Service's RootCAs.
	URL string
	// AuthFailures and RateLimits name the counters as exposed (with
	// the _total suffix). Empty means the first of httpguard's name as
	// the OpenTelemetry Prometheus exporter exposes it
	// (httpguard_auth_failures_total, httpguard_ratelimit_violations_total)
	// and the reference service's (refapp_auth_failures_total,
	// refapp_ratelimit_violations_total) that the endpoint exposes.
	AuthFailures, RateLimits string
}

var (
	authFailureCounters = []string{"httpguard_auth_failures_total", "refapp_auth_failures_total"}
	rateLimitCounters   = []string{"httpguard_ratelimit_violations_total", "refapp_ratelimit_violations_total"}
	// metricsWait bounds how long the check waits for the counters to
	// show what the service answered.
	metricsWait = 10 * time.Second
	// metricsProbes bounds the requests sent to reach the limit.
	metricsProbes = MaxRateLimitProbes
)

// maxExposition bounds the exposition a check reads.
const maxExposition = 16 << 20

// HTTPMetricsCounters checks that a service counts what TOM 000 §6 wants
// alerts on, where Prometheus can scrape it: it reads the counters at
// m.URL, sends requests with unknown tokens from one address until the
// service answers 429 (at most [MaxRateLimitProbes]; every other answer
// must be 401), then reads them again. The authentication-failure
// counter must have risen by at least the number of 401 answers and the
// rate-limit counter by at least one. It covers TOM 000 §6 (Prometheus
// metrics; the counters that alerting on authentication failures and
// rate-limit violations uses).
//
// A service that reaches no limit within the probes leaves the check not
// covered. The check leaves its address limited for as long as the
// service's per-address limit lasts: run it after the other checks that
// send requests.
func (s Service) HTTPMetricsCounters(m Metrics) Check {
	return Check{
		Name:        "metrics-counters",
		Clauses:     []string{"000-6.1", "000-6.3"},
		Description: "requests with unknown tokens until the service answers 429; the Prometheus counters of authentication failures and rate-limit violations rise by at least the number of 401 answers and by at least one",
		Run: func(ctx context.Context) error {
			if m.URL == "" {
				return fmt.Errorf("%w: the metrics check needs the service's Prometheus endpoint", ErrNotCovered)
			}
			c := httpsClient(s.RootCAs)
			defer c.CloseIdleConnections()
			before, err := scrapeCounters(ctx, c, m.URL)
			if err != nil {
				return err
			}
			unauthorized, limited, err := s.failUntilLimited(ctx)
			if err != nil {
				return err
			}
			if !limited {
				return fmt.Errorf("%w: %d requests with unknown tokens reached no rate limit (no 429)", ErrNotCovered, unauthorized)
			}
			deadline := time.Now().Add(metricsWait)
			for {
				after, err := scrapeCounters(ctx, c, m.URL)
				if err != nil {
					return err
				}
				err = countersRose(before, after, m, unauthorized)
				if err == nil || time.Now().After(deadline) {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(trailPoll):
				}
			}
		},
	}
}

// failUntilLimited sends requests with unknown tokens until one is
// answered 429, and returns how many were answered 401.
func (s Service) failUntilLimited(ctx context.Context) (unauthorized int, limited bool, err error) {
	c := httpsClient(s.RootCAs)
	defer c.CloseIdleConnections()
	path := "/v1/tenants/tomtest/documents/" + randomName()
	for range metricsProbes {
		r, err := s.doWith(ctx, c, http.MethodGet, path, "tomtest-invalid-"+randomName(), nil)
		if err != nil {
			return 0, false, failf("GET %s: %v", path, err)
		}
		switch r.status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			return unauthorized, true, nil
		default:
			return 0, false, failf("GET %s with an unknown token: status %d, want 401 or 429", path, r.status)
		}
	}
	return unauthorized, false, nil
}

// countersRose reports whether the counters rose as the check wants.
func countersRose(before, after map[string]float64, m Metrics, unauthorized int) error {
	auth, err := counterName(after, m.AuthFailures, authFailureCounters, "authentication-failure")
	if err != nil {
		return err
	}
	rl, err := counterName(after, m.RateLimits, rateLimitCounters, "rate-limit")
	if err != nil {
		return err
	}
	if d := after[auth] - before[auth]; d < float64(unauthorized) {
		return failf("%s rose by %v after %d authentication failures", auth, d, unauthorized)
	}
	if d := after[rl] - before[rl]; d < 1 {
		return failf("%s rose by %v after a request refused with 429", rl, d)
	}
	return nil
}

func counterName(got map[string]float64, name string, defaults []string, what string) (string, error) {
	if name != "" {
		if _, ok := got[name]; !ok {
			return "", failf("the endpoint exposes no counter %s", name)
		}
		return name, nil
	}
	for _, n := range defaults {
		if _, ok := got[n]; ok {
			return n, nil
		}
	}
	return "", failf("the endpoint exposes no %s counter (%s)", what, strings.Join(defaults, ", "))
}

// scrapeCounters reads the exposition at url in the Prometheus text
// format and returns every counter's total over its series.
func scrapeCounters(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, failf("metrics URL %q: %v", url, err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, failf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, failf("GET %s: status %d", url, resp.StatusCode)
	}
	counters, err := parseCounters(io.LimitReader(resp.Body, maxExposition))
	if err != nil {
		return nil, failf("GET %s: %v", url, err)
	}
	return counters, nil
}

// parseCounters parses a Prometheus text exposition and returns the total
// of every counter family over its series.
func parseCounters(r io.Reader) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		// The text format names a counter's samples name_total, and the
		// parser its family by the same name.
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		out[name] = sum
	}
	return out, nil
}
