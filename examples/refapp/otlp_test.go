package main_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestOTLP: with the standard OTEL_EXPORTER_OTLP_ENDPOINT set, traces go
// to that collector over OTLP/HTTP (and not to stdout).
func TestOTLP(t *testing.T) {
	var mu sync.Mutex
	var posts int
	var bytes int
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts++
			bytes += len(b)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer col.Close()
	r := startRefappEnv(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.URL}, "")
	for range 3 {
		if _, err := r.do(r.client(), "GET", "/v1/tenants/acme/documents/"+"0123456789abcdef0123456789abcdef", "alice", nil); err != nil {
			t.Fatal(err)
		}
	}
	r.stop() // flushes the batch span processor
	mu.Lock()
	defer mu.Unlock()
	if posts == 0 || bytes == 0 {
		t.Fatalf("collector got %d OTLP trace posts (%d bytes)", posts, bytes)
	}
	if len(r.Stdout()) > 0 && strings.Contains(r.Stdout(), `"SpanContext"`) {
		t.Fatal("spans written to stdout in OTLP mode")
	}
}
