package tlsconfig_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tomkit/tomkit/internal/testssl"
	"github.com/tomkit/tomkit/tlsconfig"
)

// TestTestsslScan scans a real HTTPS server built with tlsconfig.Server,
// HSTS and SecureHeaders with testssl.sh, and fails on any finding of
// MEDIUM or above other than the two a self-signed certificate causes
// (testssl.SelfSigned). It skips when testssl is not installed, unless
// TOMKIT_REQUIRE_TESTSSL=1, and in -short mode, since a scan takes a minute
// or two.
func TestTestsslScan(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl scan: skipped in -short mode")
	}
	cert := selfSignedServer(t)
	tc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"tomkit"}`)
	})
	srv := tlsconfig.HTTPServer(ln.Addr().String(), tlsconfig.HSTS(tlsconfig.SecureHeaders(h)), tc)
	srv.ErrorLog = log.New(io.Discard, "", 0) // testssl provokes many failed handshakes
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	findings := testssl.Scan(t, ln.Addr().String())
	if err := testssl.Check(findings, testssl.SelfSigned); err != nil {
		t.Fatalf("testssl findings:\n%v", err)
	}
	for _, f := range findings {
		if f.Severity == "LOW" {
			t.Logf("low finding (allowed): %s: %s", f.ID, f.Finding)
		}
	}
}

// selfSignedServer returns a self-signed ECDSA P-256 certificate for
// 127.0.0.1, valid for 90 days, so that testssl's only certificate
// findings are the ones self-signing causes.
func selfSignedServer(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tomkit testssl"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
