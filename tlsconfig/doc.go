// Package tlsconfig builds hardened crypto/tls configurations and the HTTP
// glue around them: a strict TLS 1.3 profile for servers and clients,
// certificate hot reload, mutual TLS, HSTS, security headers and an
// *http.Server with timeouts.
//
// It enforces the TOM clause "TLS 1.3 für Daten in Transit, HSTS und
// strenge Ciphers" (TLS 1.3 for data in transit, HSTS and strict ciphers).
// The result is verified in CI by a testssl.sh scan of a real server built
// with [Server].
//
// The zero [Config] is the strict profile: TLS 1.3 only, key exchange
// X25519MLKEM768, X25519 or P-256, no renegotiation, no session tickets; TLS
// 1.2 only through [Config.InsecureLegacyTLS12], recorded as an audit
// warning. [Server] and [Client] build it, check the certificates and reload
// CertFile and KeyFile when they change. [HSTS], [SecureHeaders],
// [RedirectHTTPS] and [HTTPServer] are the HTTP glue; [DevCertificate] makes
// a development CA and certificate.
//
// The guide, docs/TLSCONFIG.md in the repository, has the sections "Threat
// model", "The strict profile", "Session tickets", "Hot reload", "HTTP",
// "The go directive trap".
package tlsconfig
