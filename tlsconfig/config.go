package tlsconfig

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Errors returned when a configuration or a certificate is refused. They are
// matched with [errors.Is]; the returned error wraps them with detail.
var (
	// ErrNoCertificate reports a server configuration without any
	// certificate: neither Certificates nor CertFile and KeyFile.
	ErrNoCertificate = errors.New("tlsconfig: no certificate configured")
	// ErrKeyMismatch reports a private key that does not belong to its
	// certificate.
	ErrKeyMismatch = errors.New("tlsconfig: private key does not match certificate")
	// ErrCertificateExpired reports a certificate whose NotAfter is in the
	// past.
	ErrCertificateExpired = errors.New("tlsconfig: certificate expired")
	// ErrWeakKey reports an RSA key shorter than 2048 bits, or a key type
	// tlsconfig does not accept.
	ErrWeakKey = errors.New("tlsconfig: key too weak")
	// ErrVersionTooLow reports a MinVersion below TLS 1.2, or TLS 1.2
	// without [Config.InsecureLegacyTLS12].
	ErrVersionTooLow = errors.New("tlsconfig: minimum tls version too low")
	// ErrInvalidCertificate reports certificate or key data that cannot be
	// parsed.
	ErrInvalidCertificate = errors.New("tlsconfig: invalid certificate or key")
	// ErrPostQuantumDisabled reports that crypto/tls would silently drop
	// X25519MLKEM768 because GODEBUG tlsmlkem=0 is in effect, usually
	// because the main module's go.mod declares go 1.23 or older. See "The
	// go directive trap" in docs/TLSCONFIG.md and
	// [Config.InsecureNoPostQuantum].
	ErrPostQuantumDisabled = errors.New("tlsconfig: post-quantum key exchange disabled by GODEBUG tlsmlkem=0 (go.mod declares go < 1.24?)")
	// ErrInvalidConfig reports a Config whose fields contradict each other,
	// such as CertFile without KeyFile.
	ErrInvalidConfig = errors.New("tlsconfig: invalid config")
)

// DefaultReloadInterval is how often, at most, certificate files are checked
// for changes when [Config.ReloadInterval] is zero.
const DefaultReloadInterval = 10 * time.Second

// minRSABits is the shortest RSA modulus accepted (Mozilla, BSI TR-02102-2).
const minRSABits = 2048

// Config describes a TLS endpoint. Its zero value is the strict profile:
// TLS 1.3 only, X25519MLKEM768 preferred, then X25519 and P-256, no session
// tickets, no client certificates. A server additionally needs a
// certificate.
//
// A Config is read by [Server] and [Client]; changing it afterwards has no
// effect on the returned *tls.Config.
type Config struct {
	// Certificates are served as given. Each is checked by [Server] and
	// [Client] like [ParseKeyPair] checks a PEM pair. Use CertFile and
	// KeyFile instead to have the pair reloaded when it changes on disk;
	// setting both is refused with [ErrInvalidConfig].
	Certificates []tls.Certificate

	// CertFile and KeyFile name a PEM certificate chain and its private
	// key. They are read by [Server] (or [Client], for a client
	// certificate) and re-read when either file changes: see the package
	// documentation on hot reload. Both or neither must be set.
	CertFile, KeyFile string

	// ReloadInterval is how often, at most, CertFile and KeyFile are
	// checked for changes. The check runs during a handshake, so an idle
	// server checks no files. Zero means [DefaultReloadInterval].
	ReloadInterval time.Duration

	// ClientCAs, when non-nil, turns on mutual TLS for a server: every
	// client must present a certificate that verifies against this pool
	// (tls.RequireAndVerifyClientCert). Nil means no client certificates
	// are requested. Ignored by [Client].
	ClientCAs *x509.CertPool

	// RootCAs are the roots a client verifies servers against. Nil means
	// the system roots. Ignored by [Server].
	RootCAs *x509.CertPool

	// ServerName is the name a client verifies in the server certificate
	// and sends as SNI. Empty means it is taken from the address dialled
	// (as crypto/tls does). Ignored by [Server].
	ServerName string

	// MinVersion is the lowest protocol version accepted. Zero means
	// TLS 1.3, or TLS 1.2 when InsecureLegacyTLS12 is set.
	// tls.VersionTLS12 is accepted only together with InsecureLegacyTLS12;
	// anything lower is refused with [ErrVersionTooLow]. tls.VersionTLS13
	// together with InsecureLegacyTLS12 is refused as contradictory
	// ([ErrInvalidConfig]).
	MinVersion uint16

	// InsecureLegacyTLS12 enables TLS 1.2 next to TLS 1.3.
	//
	// WARNING: this weakens the strict profile and breaks the TOM clause
	// "TLS 1.3 für Daten in Transit". Set it only for a documented,
	// time-boxed exception for clients that cannot speak TLS 1.3. TLS 1.2
	// then follows Mozilla's "intermediate" profile: ECDHE key exchange
	// with AES-GCM or ChaCha20-Poly1305 only — no CBC, no RSA key
	// exchange, no SHA-1 MACs, never anything below TLS 1.2. When an audit
	// Logger is configured, [Server] records a warning event naming the
	// exception.
	InsecureLegacyTLS12 bool

	// InsecureNoPostQuantum lets [Server] and [Client] run while GODEBUG
	// tlsmlkem=0 keeps crypto/tls from offering X25519MLKEM768, instead of
	// refusing with [ErrPostQuantumDisabled]. Connections then use X25519
	// or P-256, which a future quantum computer can break retroactively.
	//
	// WARNING: fix go.mod (go 1.24 or newer) instead. Set this only for a
	// documented exception, for example a middlebox that drops the larger
	// post-quantum ClientHello. When an audit Logger is configured, it is
	// recorded as a warning event.
	InsecureNoPostQuantum bool

	// SessionTickets enables TLS session resumption with tickets. The
	// zero value disables it: see "Session tickets" in docs/TLSCONFIG.md for why.
	SessionTickets bool

	// Logger, when non-nil, receives an audit event "tlsconfig.reload" for
	// every certificate reload (outcome allow or error) and an event
	// "tlsconfig.legacy" for each Insecure exception [Server] applies.
	// Auditing is optional here: a TLS config is needed in places (tests,
	// CLIs, clients) where no audit log exists, and nothing in a TLS
	// handshake is an access decision. When a Logger is set, tomkit never
	// logs and allows: Server refuses an exception it cannot record, and a
	// new certificate pair whose reload cannot be recorded is not swapped
	// in (the old pair keeps serving and the reload is retried at the next
	// interval). Such audit errors go to OnReloadError.
	Logger audit.Logger

	// OnReloadError, when non-nil, is called with every failed reload of
	// CertFile and KeyFile, and every audit error during one. The previous
	// pair keeps being served. It runs during a handshake and must not
	// block.
	OnReloadError func(error)

	// Clock gives the time of certificate validity checks, the reload
	// interval and the handshake. Nil means the system clock.
	Clock audit.Clock
}

func (c *Config) now() time.Time {
	if c.Clock != nil {
		return c.Clock.Now()
	}
	return time.Now()
}

// curves is the key-exchange preference of the strict profile. crypto/tls
// orders them itself (post-quantum hybrid first); the list bounds the set.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}

// legacySuites are the TLS 1.2 suites of Mozilla's intermediate profile
// that crypto/tls implements: ECDHE with an AEAD. TLS 1.3 suites are not
// configurable and all three are AEADs.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Server returns a *tls.Config for a server built from c, or an error
// matching one of the package's ErrXxx values when c is refused. A server
// needs a certificate: Certificates, or CertFile and KeyFile.
func Server(c Config) (*tls.Config, error) {
	tc, err := base(&c)
	if err != nil {
		return nil, err
	}
	switch {
	case c.CertFile != "":
		fc, err := newFileCert(&c)
		if err != nil {
			return nil, err
		}
		tc.GetCertificate = fc.getCertificate
	case len(c.Certificates) > 0:
		tc.Certificates = c.Certificates
	default:
		return nil, ErrNoCertificate
	}
	if c.ClientCAs != nil {
		tc.ClientCAs = c.ClientCAs
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	// Exceptions to the strict profile are recorded so that they show in
	// the evidence trail. An exception that cannot be recorded is refused.
	if c.InsecureNoPostQuantum && postQuantumDisabled() {
		if err := logException(&c, "post-quantum key exchange disabled by GODEBUG tlsmlkem=0, allowed by InsecureNoPostQuantum"); err != nil {
			return nil, err
		}
	}
	if c.InsecureLegacyTLS12 {
		if err := logException(&c, "tls 1.2 (mozilla intermediate) enabled by InsecureLegacyTLS12"); err != nil {
			return nil, err
		}
	}
	return tc, nil
}

// logException records an exception to the strict profile when c has a
// Logger.
func logException(c *Config, reason string) error {
	if c.Logger == nil {
		return nil
	}
	err := c.Logger.Log(context.Background(), audit.Event{
		Time:     c.now(),
		Action:   "tlsconfig.legacy",
		Outcome:  audit.OutcomeAllow,
		Severity: audit.SeverityWarning,
		Reason:   reason,
	})
	if err != nil {
		return errtext.Errorf("tlsconfig: audit: %w", err)
	}
	return nil
}

// Client returns a *tls.Config for a client built from c, or an error
// matching one of the package's ErrXxx values when c is refused.
// Certificates, or CertFile and KeyFile, are the client certificate
// presented for mutual TLS; a client needs none.
func Client(c Config) (*tls.Config, error) {
	tc, err := base(&c)
	if err != nil {
		return nil, err
	}
	tc.RootCAs = c.RootCAs
	tc.ServerName = c.ServerName
	switch {
	case c.CertFile != "":
		fc, err := newFileCert(&c)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = fc.getClientCertificate
	case len(c.Certificates) > 0:
		tc.Certificates = c.Certificates
	}
	return tc, nil
}

// base checks what Server and Client share and builds the common part.
func base(c *Config) (*tls.Config, error) {
	minVersion := uint16(tls.VersionTLS13)
	switch c.MinVersion {
	case 0, tls.VersionTLS13:
	case tls.VersionTLS12:
		if !c.InsecureLegacyTLS12 {
			return nil, fmt.Errorf("%w: tls 1.2 needs InsecureLegacyTLS12", ErrVersionTooLow)
		}
		minVersion = tls.VersionTLS12
	default:
		if c.MinVersion < tls.VersionTLS12 {
			return nil, fmt.Errorf("%w: %s", ErrVersionTooLow, tls.VersionName(c.MinVersion))
		}
		return nil, fmt.Errorf("%w: unknown min version %#04x", ErrInvalidConfig, c.MinVersion)
	}
	if c.InsecureLegacyTLS12 {
		if c.MinVersion == tls.VersionTLS13 {
			return nil, fmt.Errorf("%w: MinVersion TLS 1.3 contradicts InsecureLegacyTLS12", ErrInvalidConfig)
		}
		minVersion = tls.VersionTLS12
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("%w: CertFile and KeyFile must be set together", ErrInvalidConfig)
	}
	if c.CertFile != "" && len(c.Certificates) > 0 {
		return nil, fmt.Errorf("%w: both Certificates and CertFile set", ErrInvalidConfig)
	}
	if !c.InsecureNoPostQuantum && postQuantumDisabled() {
		return nil, ErrPostQuantumDisabled
	}
	if c.ReloadInterval < 0 {
		return nil, fmt.Errorf("%w: negative ReloadInterval", ErrInvalidConfig)
	}
	// Copy first: checkCertificate sets Leaf, and the caller's slice must
	// neither change nor be aliased by the returned config.
	c.Certificates = append([]tls.Certificate(nil), c.Certificates...)
	now := c.now()
	for i := range c.Certificates {
		if err := checkCertificate(&c.Certificates[i], now); err != nil {
			return nil, fmt.Errorf("%w (Certificates[%d])", err, i)
		}
	}
	tc := &tls.Config{
		MinVersion:             minVersion,
		MaxVersion:             tls.VersionTLS13,
		CurvePreferences:       append([]tls.CurveID(nil), curves...),
		SessionTicketsDisabled: !c.SessionTickets,
		Renegotiation:          tls.RenegotiateNever,
	}
	if c.Clock != nil {
		tc.Time = c.Clock.Now
	}
	if minVersion == tls.VersionTLS12 {
		tc.CipherSuites = append([]uint16(nil), legacySuites...)
	}
	return tc, nil
}

// postQuantumDisabled reports whether GODEBUG tlsmlkem=0 is in effect: from
// the binary's defaults (the main module's go directive and //go:debug
// lines) or from the GODEBUG environment variable, which crypto/tls also
// reads when it changes at run time. As in the runtime, the environment
// overrides the defaults and a later setting overrides an earlier one.
func postQuantumDisabled() bool {
	v := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "DefaultGODEBUG" {
				v = godebug(s.Value, "tlsmlkem", v)
			}
		}
	}
	return godebug(os.Getenv("GODEBUG"), "tlsmlkem", v) == "0"
}

// godebug returns the last value of key in a comma-separated GODEBUG list,
// or def when the list does not set it.
func godebug(list, key, def string) string {
	for kv := range strings.SplitSeq(list, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == key {
			def = v
		}
	}
	return def
}

// ParseKeyPair parses a PEM certificate chain and its PEM private key and
// checks the pair as [Server] does: the key must match the leaf
// certificate ([ErrKeyMismatch]), the leaf must not have expired at now
// ([ErrCertificateExpired]) and an RSA key must have at least 2048 bits
// ([ErrWeakKey]). Unparseable input yields [ErrInvalidCertificate]. The
// returned certificate has Leaf set.
func ParseKeyPair(certPEM, keyPEM []byte, now time.Time) (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if isMismatch(err) {
			return tls.Certificate{}, fmt.Errorf("%w: %v", ErrKeyMismatch, err)
		}
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
	}
	if err := checkCertificate(&cert, now); err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}

// isMismatch tells a key/certificate mismatch apart from unparseable input in
// tls.X509KeyPair's errors, which are not typed.
func isMismatch(err error) bool {
	switch err.Error() {
	case "tls: private key type does not match public key type",
		"tls: private key does not match public key":
		return true
	}
	return false
}

// checkCertificate checks one certificate as documented on ParseKeyPair, and
// sets its Leaf.
func checkCertificate(cert *tls.Certificate, now time.Time) error {
	if len(cert.Certificate) == 0 {
		return fmt.Errorf("%w: empty certificate chain", ErrInvalidCertificate)
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		leaf, err = x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
		}
		cert.Leaf = leaf
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%w: private key is %T, not a crypto.Signer", ErrInvalidCertificate, cert.PrivateKey)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: certificate %q", ErrKeyMismatch, leaf.Subject)
	}
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return fmt.Errorf("%w: rsa key has %d bits, need %d", ErrWeakKey, k.N.BitLen(), minRSABits)
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: certificate %q expired at %s", ErrCertificateExpired, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Group returns the name of the key exchange negotiated on a connection,
// as crypto/tls names it: "X25519MLKEM768" (the post-quantum hybrid),
// "X25519" or "CurveP256".
// It returns "" when none was negotiated (for example, a TLS 1.2
// resumption).
func Group(cs tls.ConnectionState) string {
	if cs.CurveID == 0 {
		return ""
	}
	return cs.CurveID.String()
}
