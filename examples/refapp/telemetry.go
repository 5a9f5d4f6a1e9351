package main

import (
	"context"
	"errors"
	"io"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// telemetry wires the OpenTelemetry SDK. Only examples/ does this: the
// tomkit packages use the OTel API alone.
type telemetry struct {
	shutdowns []func(context.Context) error
}

func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdowns {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// setupTelemetry installs the global tracer and meter providers. Traces go
// to stdout, to OTLP over HTTP (configured by the standard
// OTEL_EXPORTER_OTLP_* variables), or nowhere. Metrics go to stdout once a
// minute in stdout mode; otherwise they are kept in memory (the OTLP metric
// exporter is not among tomkit's dependencies).
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

	var reader sdkmetric.Reader
	if mode == "stdout" {
		mexp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		if err != nil {
			return nil, err
		}
		reader = sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Minute))
	} else {
		reader = sdkmetric.NewManualReader()
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	otel.SetMeterProvider(mp)
	t.shutdowns = append(t.shutdowns, mp.Shutdown)
	return t, nil
}
