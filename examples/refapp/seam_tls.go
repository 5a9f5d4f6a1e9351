package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"github.com/tomkit/tomkit/tlsconfig"
)

// serverTLS returns the server's TLS configuration: tlsconfig's strict
// profile (TLS 1.3 only, X25519MLKEM768 preferred, no session tickets)
// with the certificate pair from the data directory, hot-reloaded when it
// changes on disk. Reloads are audited.
func serverTLS(_ context.Context, a *app) (*tls.Config, error) {
	return tlsconfig.Server(tlsconfig.Config{
		CertFile: a.data.path(fileCert),
		KeyFile:  a.data.path(fileKey),
		Logger:   a.audit,
		OnReloadError: func(err error) {
			a.errLog.Printf("tls reload: %v", err)
		},
	})
}

// secureHeaders adds HSTS (tlsconfig.HSTSValue) and the API security
// headers to every HTTPS response.
func secureHeaders(h http.Handler) http.Handler {
	return tlsconfig.HSTS(tlsconfig.SecureHeaders(h))
}

// httpsServer is the HTTPS server, with tlsconfig's timeouts. Its header
// limit is raised to serverMaxHeaderBytes because the service enforces
// tlsconfig's limit itself, with an audited 431 (httpguard's default
// Config.MaxHeaderBytes, the same 64 KiB): net/http
// answers 431 on its own, before any handler runs and so without an audit
// event, only for headers over serverMaxHeaderBytes.
func httpsServer(h http.Handler, tc *tls.Config) *http.Server {
	srv := tlsconfig.HTTPServer("", h, tc)
	srv.MaxHeaderBytes = serverMaxHeaderBytes
	return srv
}

// serverMaxHeaderBytes is net/http's hard limit on request headers: four
// times the limit the service enforces with an audited 431.
const serverMaxHeaderBytes = 4 * tlsconfig.MaxHeaderBytes

// redirectHandler answers every plain-HTTP request with a redirect to the
// same path over HTTPS (301 for GET and HEAD, 308 otherwise).
func redirectHandler(tlsAddr net.Addr) http.Handler {
	_, port, _ := net.SplitHostPort(tlsAddr.String())
	return tlsconfig.RedirectHTTPS(":" + port)
}

const integrationTLS = "tlsconfig (strict TLS 1.3, HSTS, redirect)"
