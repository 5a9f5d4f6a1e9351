package tomtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/tomtest"
)

// guardedService serves an httpguard chain over TLS whose counters go,
// through the OpenTelemetry Prometheus exporter, to a /metrics server of
// their own, as the reference service does. failureBurst is the
// per-address allowance of failing requests.
func guardedService(t *testing.T, failureBurst int) (tomtest.Service, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	var rec audit.Recorder
	enf, err := rbac.New(context.Background(), rbac.Config{Logger: &rec, Policy: []byte("p, reader, acme, /documents/*, read, allow\n")})
	if err != nil {
		t.Fatal(err)
	}
	g, err := httpguard.New(httpguard.Config{
		Service: "docs", Logger: &rec, Enforcer: enf, MeterProvider: mp,
		Authenticator: httpguard.AuthenticatorFunc(func(context.Context, string) (httpguard.Principal, error) {
			return httpguard.Principal{}, errors.New("unknown token")
		}),
		FailureRate: 0.001, FailureBurst: failureBurst,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Handle("GET /v1/tenants/{tenant}/documents/{id}", httpguard.Route{Name: "document.read", Action: "read", Object: "/documents/{id}"},
		func(w http.ResponseWriter, r *http.Request) error { return nil })
	api := httptest.NewTLSServer(g)
	t.Cleanup(api.Close)
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	return tomtest.Service{BaseURL: api.URL, RootCAs: api.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}, metrics.URL + "/metrics"
}

func TestHTTPMetricsCounters(t *testing.T) {
	svc, url := guardedService(t, 5)
	res := tomtest.Run(t.Context(), svc.HTTPMetricsCounters(tomtest.Metrics{URL: url}))
	if res[0].Status != tomtest.StatusPass {
		t.Fatalf("against httpguard's counters: %s: %s", res[0].Status, res[0].Detail)
	}
}

func TestHTTPMetricsCountersFails(t *testing.T) {
	tomtest.SetMetricsWait(t, 0)
	svc, url := guardedService(t, 5)
	// A name the endpoint does not expose.
	res := tomtest.Run(t.Context(), svc.HTTPMetricsCounters(tomtest.Metrics{URL: url, RateLimits: "nope_total"}))
	if res[0].Status != tomtest.StatusFail {
		t.Errorf("unexposed counter name: %s: %s", res[0].Status, res[0].Detail)
	}
	// Counters that do not move: an exposition that never changes.
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE httpguard_auth_failures_total counter\nhttpguard_auth_failures_total 7\n"+
			"# TYPE httpguard_ratelimit_violations_total counter\nhttpguard_ratelimit_violations_total{limit=\"address\"} 1\n")
	}))
	defer static.Close()
	svc2, _ := guardedService(t, 5)
	res = tomtest.Run(t.Context(), svc2.HTTPMetricsCounters(tomtest.Metrics{URL: static.URL}))
	if res[0].Status != tomtest.StatusFail {
		t.Errorf("counters that do not rise: %s: %s", res[0].Status, res[0].Detail)
	}
	// Not the Prometheus text format.
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>not metrics</html>\n")
	}))
	defer garbage.Close()
	res = tomtest.Run(t.Context(), svc2.HTTPMetricsCounters(tomtest.Metrics{URL: garbage.URL}))
	if res[0].Status != tomtest.StatusFail {
		t.Errorf("not an exposition: %s: %s", res[0].Status, res[0].Detail)
	}
}

func TestHTTPMetricsCountersNotCovered(t *testing.T) {
	svc, url := guardedService(t, 5)
	res := tomtest.Run(t.Context(), svc.HTTPMetricsCounters(tomtest.Metrics{}))
	if res[0].Status != tomtest.StatusNotCovered {
		t.Errorf("no URL: %s: %s", res[0].Status, res[0].Detail)
	}
	_ = url
	// A service that never limits: the check cannot provoke a 429.
	tomtest.SetMetricsProbes(t, 10)
	svc, url = guardedService(t, 1000)
	res = tomtest.Run(t.Context(), svc.HTTPMetricsCounters(tomtest.Metrics{URL: url}))
	if res[0].Status != tomtest.StatusNotCovered {
		t.Errorf("no 429: %s: %s", res[0].Status, res[0].Detail)
	}
}
