package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHelloTLS runs the example on a free loopback port and talks to it
// over real HTTPS, trusting only the development certificate it wrote.
func TestHelloTLS(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-dir", dir}, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	lines := bufio.NewScanner(pr)
	var url, curl string
	for (url == "" || curl == "") && lines.Scan() {
		l := lines.Text()
		if u, ok := strings.CutPrefix(l, "serving "); ok {
			url = u
		}
		if c, ok := strings.CutPrefix(l, "try:     "); ok {
			curl = c
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(url, "https://127.0.0.1:") || !strings.HasPrefix(curl, "curl --cacert "+dir) {
		t.Fatalf("printed url %q, curl %q", url, curl)
	}

	certPEM, err := os.ReadFile(dir + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("no certificate in ca.pem")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body["version"] != "TLS 1.3" || body["group"] != "X25519MLKEM768" {
		t.Errorf("negotiated %v", body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
		t.Errorf("HSTS %q", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if fi, err := os.Stat(dir + "/key.pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v %v", fi, err)
	}
}
