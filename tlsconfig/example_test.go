package tlsconfig_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tomkit/tomkit/tlsconfig"
)

// selfSigned returns a throwaway certificate for "localhost" and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// A tomkit server and a tomkit client agree on TLS 1.3 with the
// post-quantum hybrid key exchange.
func ExampleServer() {
	cert, pool := selfSigned()
	serverConf, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		log.Fatal(err)
	}
	clientConf, err := tlsconfig.Client(tlsconfig.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		log.Fatal(err)
	}

	c1, c2 := net.Pipe()
	go func() {
		s := tls.Server(c1, serverConf)
		_ = s.Handshake()
		s.Close()
	}()
	client := tls.Client(c2, clientConf)
	if err := client.Handshake(); err != nil {
		log.Fatal(err)
	}
	cs := client.ConnectionState()
	fmt.Println(tls.VersionName(cs.Version), tlsconfig.Group(cs))
	_, _ = io.Copy(io.Discard, client) // until the server's close_notify
	client.Close()
	// Output: TLS 1.3 X25519MLKEM768
}

// A server without a certificate is refused, with an error to match.
func ExampleServer_refused() {
	_, err := tlsconfig.Server(tlsconfig.Config{})
	fmt.Println(errors.Is(err, tlsconfig.ErrNoCertificate))

	cert, _ := selfSigned()
	_, err = tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS11})
	fmt.Println(err)
	// Output:
	// true
	// tlsconfig: minimum tls version too low: TLS 1.1
}

// Files are reloaded when they change, for example when cert-manager
// rotates a Kubernetes secret.
func ExampleConfig_hotReload() {
	conf := tlsconfig.Config{
		CertFile:       "/etc/tls/tls.crt",
		KeyFile:        "/etc/tls/tls.key",
		ReloadInterval: 30 * time.Second,
		OnReloadError: func(err error) {
			log.Printf("certificate rotation failed, still serving the old one: %v", err)
		},
	}
	_, err := tlsconfig.Server(conf)
	// The files do not exist here.
	fmt.Println(errors.Is(err, tlsconfig.ErrInvalidCertificate))
	// Output: true
}

func ExampleHSTS() {
	h := tlsconfig.HSTS(tlsconfig.SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})))

	req := httptest.NewRequest("GET", "https://example.com/", nil) // r.TLS is set
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get("Strict-Transport-Security"))

	req = httptest.NewRequest("GET", "http://example.com/", nil) // plain HTTP
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Printf("%q\n", rec.Header().Get("Strict-Transport-Security"))
	// Output:
	// max-age=63072000; includeSubDomains
	// ""
}

func ExampleRedirectHTTPS() {
	req := httptest.NewRequest("GET", "http://example.com/path?q=1", nil)
	rec := httptest.NewRecorder()
	tlsconfig.RedirectHTTPS(":8443").ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Location"))
	// Output: 301 https://example.com:8443/path?q=1
}

func ExampleHTTPServer() {
	cert, _ := selfSigned()
	tc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := tlsconfig.HTTPServer("127.0.0.1:8443", tlsconfig.HSTS(tlsconfig.SecureHeaders(mux)), tc)
	// Start it with srv.ListenAndServeTLS("", ""): the certificate is in tc.
	fmt.Println(srv.ReadHeaderTimeout, srv.IdleTimeout)
	// Output: 10s 2m0s
}
