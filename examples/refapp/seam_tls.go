package main

import (
	"context"
	"crypto/tls"
)

// hstsValue is the Strict-Transport-Security header on every response:
// two years, subdomains included.
const hstsValue = "max-age=63072000; includeSubDomains"

// serverTLS returns the server's TLS configuration: TLS 1.3 only.
//
// Fallback until tlsconfig lands: crypto/tls with MinVersion and MaxVersion
// TLS 1.3 and the certificate from the data directory.
func serverTLS(_ context.Context, a *app) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(a.data.path(fileCert), a.data.path(fileKey))
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		SessionTicketsDisabled: true,
	}, nil
}

const integrationTLS = "tls: crypto/tls TLS 1.3-only fallback (tlsconfig not yet wired)"
