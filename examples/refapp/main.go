// Command refapp is tomkit's reference service: a small multi-tenant
// document service for a law firm that keeps every technical promise of the
// TOM documents the way a product team should.
//
// It serves HTTPS only (TLS 1.3, HSTS, HTTP→HTTPS redirect), authenticates
// bearer tokens with a per-principal MFA flag, authorizes every request
// deny-by-default with four-eyes approval and break-glass, stores documents
// encrypted with one key-encryption key per tenant, writes one audit event
// per request, guards its (simulated) model-call and web-search endpoints
// for the § 203 tenant, counts authentication failures and rate-limit
// violations as OpenTelemetry metrics and raises alerts through a hook.
//
// Run it with no flags:
//
//	go run ./examples/refapp
//
// On first start it creates its data directory (see -data) with a
// development CA, a server certificate, the master key, per-tenant keysets,
// the audit signing key, a policy and demo principals, and prints the URL,
// the demo tokens and ready-to-paste curl commands. The HTTP contract is in
// README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "refapp:", err)
		os.Exit(1)
	}
}

// options are the command-line settings. Every one has an environment
// variable so that containers need no flags.
type options struct {
	addr      string        // HTTPS listen address
	httpAddr  string        // plain-HTTP redirect listen address; "" disables
	dataDir   string        // data directory, created on first start
	postgres  string        // PostgreSQL DSN; "" means files in dataDir
	traces    string        // "stdout", "otlp", "off"; "" picks otlp when OTEL_EXPORTER_OTLP_* is set, else off
	metrics   string        // Prometheus /metrics listen address; "" disables
	rate      float64       // requests per second per principal
	burst     int           // burst per principal
	breakTTL  time.Duration // how long a break-glass grant lasts
	retention time.Duration // how long a document is kept at most

	// now is the clock of the store, the policy and the keyring. Nil
	// means time.Now; tests inject one.
	now func() time.Time
}

func defaultDataDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "tomkit-refapp")
	}
	return filepath.Join(os.TempDir(), "tomkit-refapp")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("refapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", envOr("REFAPP_ADDR", "127.0.0.1:8443"), "HTTPS listen `address` (env REFAPP_ADDR)")
	fs.StringVar(&o.httpAddr, "http-addr", envOr("REFAPP_HTTP_ADDR", "127.0.0.1:8080"), "plain-HTTP `address` that only redirects to HTTPS; empty disables (env REFAPP_HTTP_ADDR)")
	fs.StringVar(&o.dataDir, "data", envOr("REFAPP_DATA", defaultDataDir()), "data `directory`, created on first start (env REFAPP_DATA)")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("REFAPP_POSTGRES_DSN"), "PostgreSQL `DSN`: keep documents (and, where the packages support it, audit and policy) in PostgreSQL (env REFAPP_POSTGRES_DSN)")
	fs.StringVar(&o.traces, "traces", os.Getenv("REFAPP_TRACES"), "trace exporter: stdout, otlp or off; default otlp when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else off (env REFAPP_TRACES)")
	fs.StringVar(&o.metrics, "metrics-addr", envOr("REFAPP_METRICS_ADDR", "127.0.0.1:9464"), "plain-HTTP `address` serving Prometheus /metrics, apart from the API; empty disables (env REFAPP_METRICS_ADDR)")
	fs.Float64Var(&o.rate, "rate", 20, "requests per second allowed per principal")
	fs.IntVar(&o.burst, "burst", 40, "request burst allowed per principal")
	fs.DurationVar(&o.breakTTL, "break-glass-ttl", 15*time.Minute, "how long a break-glass grant lasts")
	fs.DurationVar(&o.retention, "retention", 30*24*time.Hour, "maximum retention of a document (TOM 000 §7: 30 days)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.rate <= 0 || o.burst <= 0 {
		return o, errors.New("-rate and -burst must be positive")
	}
	switch o.traces {
	case "":
		o.traces = "off"
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			o.traces = "otlp"
		}
	case "stdout", "otlp", "off":
	default:
		return o, fmt.Errorf("-traces %q: want stdout, otlp or off", o.traces)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	d, created, err := openDataDir(o.dataDir)
	if err != nil {
		return err
	}
	tel, err := setupTelemetry(ctx, o.traces, stdout)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.shutdown(sctx)
	}()
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		stopMetrics := tel.serveMetrics(ln, log.New(stderr, "refapp: metrics: ", log.LstdFlags))
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stopMetrics(sctx)
		}()
		fmt.Fprintf(stdout, "refapp: metrics on http://%s/metrics\n", ln.Addr())
	}
	app, err := newApp(ctx, o, d, stderr)
	if err != nil {
		return err
	}
	defer app.close()
	return app.serve(ctx, created, stdout)
}
