// Command hellotls serves HTTPS with tomkit's strict TLS profile: TLS 1.3
// only, the post-quantum hybrid key exchange X25519MLKEM768 preferred,
// HSTS and the API security headers, on a self-signed development
// certificate (ECDSA P-256) that it creates at start.
//
//	go run ./examples/hellotls [-addr 127.0.0.1:8443] [-dir DIR]
//
// It prints the URL and a curl command that trusts the development
// certificate. The certificate and key are written to DIR (default
// $TMPDIR/tomkit-hellotls) and hot-reloaded from there: replace them and
// the next handshake, at most ten seconds later, serves the new pair.
//
// The certificate is for development only: it is self-signed and no
// browser trusts it.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
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
	certFile, keyFile, err := devCertificate(*dir, host)
	if err != nil {
		return err
	}
	errLog := log.New(stderr, "hellotls: ", log.LstdFlags)
	tc, err := tlsconfig.Server(tlsconfig.Config{
		CertFile: certFile,
		KeyFile:  keyFile,
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
	fmt.Fprintf(stdout, "try:     curl --cacert %s %s\n", certFile, url)

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

// The development certificate is valid for 90 days and reused while it has
// more than 61 days left, so that a scanner (testssl.sh warns under 60
// days) never sees it about to expire.
const (
	validFor = 90 * 24 * time.Hour
	reuseFor = 61 * 24 * time.Hour
)

// devCertificate returns the paths of a self-signed ECDSA P-256 certificate
// and key in dir, valid for host, localhost and the loopback addresses. An
// existing pair is reused (see validFor); otherwise a new one is written.
func devCertificate(dir, host string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, err1 := os.ReadFile(certFile)
	keyPEM, err2 := os.ReadFile(keyFile)
	if err1 == nil && err2 == nil {
		if c, err := tlsconfig.ParseKeyPair(certPEM, keyPEM, time.Now().Add(reuseFor)); err == nil && c.Leaf.VerifyHostname(host) == nil {
			return certFile, keyFile, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tomkit hellotls development certificate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: curl --cacert needs it to be a CA
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	// Key first: a reader that sees the new certificate must find its key.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return "", "", err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writeFile replaces name atomically, readable only by its owner.
func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
