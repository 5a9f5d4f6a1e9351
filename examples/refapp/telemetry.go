package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// telemetry wires the OpenTelemetry SDK. Only examples/ does this: the
// tomkit packages use the OTel API alone.
type telemetry struct {
	shutdowns []func(context.Context) error
	// metrics serves the Prometheus exposition of every OTel metric.
	metrics http.Handler
}

func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdowns {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// setupTelemetry installs the global tracer and meter providers. Traces go
// to stdout (opt-in), to OTLP over HTTP (configured by the standard
// OTEL_EXPORTER_OTLP_* variables), or nowhere. Metrics are exposed for
// Prometheus to scrape (t.metrics, served by serveMetrics on a listener of
// its own) and, in stdout mode, also printed once a minute.
func setupTelemetry(ctx context.Context, mode string, stdout io.Writer) (*telemetry, error) {
	t := &telemetry{}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "tomkit-refapp")))
	if err != nil {
		res = resource.Default()
	}
	var exp sdktrace.SpanExporter
	switch mode {
	case "stdout":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case "otlp":
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, err
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exp != nil {
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	otel.SetTracerProvider(tp)
	t.shutdowns = append(t.shutdowns, tp.Shutdown)

	// A registry of its own, so that nothing registered globally by a
	// dependency leaks into the exposition.
	reg := prometheus.NewRegistry()
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mopts := []sdkmetric.Option{sdkmetric.WithReader(prom), sdkmetric.WithResource(res)}
	if mode == "stdout" {
		mexp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Minute))))
	}
	// httpguard's counters keep the names refapp's own had
	// (refapp_auth_failures_total, refapp_ratelimit_violations_total).
	for _, n := range []string{"auth.failures", "ratelimit.violations", "audit.failures"} {
		mopts = append(mopts, sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "httpguard." + n, Scope: instrumentation.Scope{Name: "github.com/tomkit/tomkit/httpguard"}},
			sdkmetric.Stream{Name: "refapp." + n})))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	otel.SetMeterProvider(mp)
	t.shutdowns = append(t.shutdowns, mp.Shutdown)
	return t, nil
}

// serveMetrics serves GET /metrics (the Prometheus text exposition) on ln,
// a listener apart from the API's, until the returned func shuts it down.
// It carries counters only, no personal data; keep it on loopback or a
// private network.
func (t *telemetry) serveMetrics(ln net.Listener, errLog *log.Logger) func(context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	go func() { _ = srv.Serve(ln) }()
	return srv.Shutdown
}
