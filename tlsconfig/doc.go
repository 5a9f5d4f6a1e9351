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
// # Threat model
//
// An attacker on the network path can read, record, modify, drop and inject
// traffic, and may record traffic today to decrypt it once a quantum
// computer exists ("harvest now, decrypt later"). tlsconfig defends against
// that with TLS 1.3 only (no downgrade to protocol versions or cipher suites
// with known weaknesses), the hybrid post-quantum key exchange
// X25519MLKEM768 preferred, forward secrecy on every connection, and HSTS so
// a browser never speaks plain HTTP to the site again. It also refuses to
// start with a certificate that is expired, does not match its key, or has
// an RSA key under 2048 bits, because such a server either fails every
// client or protects nothing.
//
// Out of scope: a compromised host (private keys are in process memory),
// certificate issuance and revocation (use an ACME client or your PKI),
// and the trust decisions of clients that are not built with [Client].
//
// # The strict profile
//
// The zero [Config] is the strict profile: TLS 1.3 only; key exchange
// X25519MLKEM768, X25519 or P-256 (crypto/tls prefers the post-quantum
// hybrid when both sides support it); the three TLS 1.3 AEAD suites, which
// crypto/tls does not let anyone weaken; no renegotiation; no session
// tickets. [Group] reports which key exchange a connection used.
//
// TLS 1.2 is available only through [Config.InsecureLegacyTLS12], which
// follows Mozilla's "intermediate" profile (ECDHE with AES-GCM or
// ChaCha20-Poly1305) and is recorded as an audit warning. Nothing below
// TLS 1.2 can be configured at all.
//
// # Session tickets
//
// Session tickets are disabled by default. crypto/tls rotates its ticket
// keys every 24 hours but keeps them, and announces ticket lifetimes, for
// 7 days, a value that cannot be configured; testssl.sh flags it. While a
// ticket key lives, it can decrypt the resumption secrets of every session
// it sealed, which weakens forward secrecy for up to a week. Without
// tickets every connection does a full handshake (see BenchmarkHandshake
// for its cost); HTTP keep-alive and HTTP/2 amortise it. Set
// [Config.SessionTickets] to trade this for faster reconnects.
//
// # Hot reload
//
// With [Config.CertFile] and [Config.KeyFile], [Server] reads the pair at
// start and re-reads it during a handshake when at least
// [Config.ReloadInterval] has passed and either file's identity (inode,
// size, modification time, resolved through symbolic links) has changed.
// This follows certificate rotation by cert-manager, an ACME client, or a
// Kubernetes secret volume, whose files are symbolic links through a
// "..data" link that is swapped atomically. A new pair is fully checked
// before it replaces the old one; when it is bad (corrupt, mismatched,
// expired, weak, half written) the old pair keeps serving and the failure is
// reported to [Config.OnReloadError] and, as an audit event
// "tlsconfig.reload" with outcome error, to [Config.Logger]. Each change is
// tried once; the next change to either file is tried again. A good pair
// whose reload the Logger cannot record is not swapped in either, and is
// tried again at the next interval: tomkit never logs and allows.
//
// Tests and operators need no sleeps: [Config.Clock] injects the clock that
// decides when the interval has passed.
//
// # HTTP
//
// [HSTS] (or, opted into deliberately, [HSTSPreload]) adds
// Strict-Transport-Security to responses sent over TLS and never to plain
// HTTP. [SecureHeaders] adds the headers an API response needs.
// [RedirectHTTPS] answers the plain-HTTP port. [HTTPServer] sets the
// timeouts that stop slowloris-style resource exhaustion.
//
// For development and tests, [DevCertificate] loads or creates a local CA
// and a server certificate it signed, refusing key files with loose
// permissions.
//
// # The go directive trap
//
// crypto/tls decides some defaults from the go directive of the main
// module's go.mod, not from the toolchain that builds it. A program whose
// go.mod says "go 1.23" (or lower) runs with GODEBUG=tlsmlkem=0 by default,
// and then crypto/tls silently drops X25519MLKEM768 even though tlsconfig
// lists it explicitly: connections fall back to X25519 without any error.
// Programs using tlsconfig must declare go 1.24 or newer in go.mod (tomkit
// itself declares 1.26) and must not set tlsmlkem=0 in GODEBUG or a
// //go:debug directive.
//
// tlsconfig does not let the downgrade pass silently: when tlsmlkem=0 is in
// effect (from the binary's defaults or the GODEBUG environment variable),
// [Server] and [Client] refuse with [ErrPostQuantumDisabled], unless
// [Config.InsecureNoPostQuantum] records a deliberate exception. [Group]
// shows what a live connection negotiated.
package tlsconfig
