// Command hellotls serves HTTPS with tomkit's strict TLS profile: TLS 1.3
// only, the post-quantum hybrid key exchange X25519MLKEM768 preferred,
// HSTS and the API security headers, on a development certificate (ECDSA
// P-256, from tlsconfig.DevCertificate) that it creates at start.
//
//	go run ./examples/hellotls [-addr 127.0.0.1:8443] [-dir DIR]
//
// It prints the URL and a curl command that trusts the development CA.
// The CA, the certificate and the key are written to DIR (default
// $TMPDIR/tomkit-hellotls) and hot-reloaded from there: replace them and
// the next handshake, at most ten seconds later, serves the new pair.
//
// The certificate is for development only: its CA is made on this machine
// and no browser trusts it.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tomkit/tomkit/tlsconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "hellotls:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hellotls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "address to listen on")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "tomkit-hellotls"), "directory for the development certificate and key")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on all addresses: show loopback
	}
	dev, err := tlsconfig.DevCertificate(*dir, host)
	if err != nil {
		return err
	}
	errLog := log.New(stderr, "hellotls: ", log.LstdFlags)
	tc, err := tlsconfig.Server(tlsconfig.Config{
		CertFile: dev.CertFile,
		KeyFile:  dev.KeyFile,
		OnReloadError: func(err error) {
			errLog.Print(err)
		},
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", hello)
	srv := tlsconfig.HTTPServer(ln.Addr().String(), tlsconfig.HSTS(tlsconfig.SecureHeaders(mux)), tc)
	srv.ErrorLog = errLog

	url := "https://" + net.JoinHostPort(host, port) + "/"
	fmt.Fprintf(stdout, "serving %s\n", url)
	fmt.Fprintf(stdout, "try:     curl --cacert %s %s\n", dev.CAFile, url)

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// hello reports what the connection negotiated.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"hello":   "tomkit",
		"version": tls.VersionName(r.TLS.Version),
		"cipher":  tls.CipherSuiteName(r.TLS.CipherSuite),
		"group":   tlsconfig.Group(*r.TLS),
	})
}
