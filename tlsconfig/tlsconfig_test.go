package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tlsconfig"
)

func TestConfigRefused(t *testing.T) {
	ca := newCA(t, "test ca")
	good := ca.leaf(t, leafOpts{})
	other := ca.leaf(t, leafOpts{})
	expired := ca.leaf(t, leafOpts{notAfter: time.Now().Add(-time.Minute)})
	weak := ca.leaf(t, leafOpts{rsaBits: 1024})
	mismatched := good.cert
	mismatched.PrivateKey = other.cert.PrivateKey
	mismatched.Leaf = nil

	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, good)
	badKey := filepath.Join(dir, "other.key")
	writeAtomic(t, badKey, other.keyPEM)
	garbage := filepath.Join(dir, "garbage.pem")
	writeAtomic(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))

	tests := []struct {
		name string
		cfg  tlsconfig.Config
		want error
	}{
		{"no certificate", tlsconfig.Config{}, tlsconfig.ErrNoCertificate},
		{"key mismatch", tlsconfig.Config{Certificates: []tls.Certificate{mismatched}}, tlsconfig.ErrKeyMismatch},
		{"key mismatch in files", tlsconfig.Config{CertFile: certFile, KeyFile: badKey}, tlsconfig.ErrKeyMismatch},
		{"expired", tlsconfig.Config{Certificates: []tls.Certificate{expired.cert}}, tlsconfig.ErrCertificateExpired},
		{"expired by clock", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, Clock: audit.ClockFunc(func() time.Time { return time.Now().Add(48 * time.Hour) })}, tlsconfig.ErrCertificateExpired},
		{"rsa 1024", tlsconfig.Config{Certificates: []tls.Certificate{weak.cert}}, tlsconfig.ErrWeakKey},
		{"tls 1.0", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: tls.VersionTLS10}, tlsconfig.ErrVersionTooLow},
		{"tls 1.1", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: tls.VersionTLS11}, tlsconfig.ErrVersionTooLow},
		{"tls 1.1 even with legacy", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: tls.VersionTLS11, InsecureLegacyTLS12: true}, tlsconfig.ErrVersionTooLow},
		{"ssl 3.0", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: 0x0300}, tlsconfig.ErrVersionTooLow},
		{"tls 1.2 without opt-in", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: tls.VersionTLS12}, tlsconfig.ErrVersionTooLow},
		{"tls 1.3 and legacy", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: tls.VersionTLS13, InsecureLegacyTLS12: true}, tlsconfig.ErrInvalidConfig},
		{"unknown version", tlsconfig.Config{Certificates: []tls.Certificate{good.cert}, MinVersion: 0x0305}, tlsconfig.ErrInvalidConfig},
		{"cert file without key file", tlsconfig.Config{CertFile: certFile}, tlsconfig.ErrInvalidConfig},
		{"key file without cert file", tlsconfig.Config{KeyFile: keyFile}, tlsconfig.ErrInvalidConfig},
		{"files and certificates", tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, Certificates: []tls.Certificate{good.cert}}, tlsconfig.ErrInvalidConfig},
		{"negative interval", tlsconfig.Config{CertFile: certFile, KeyFile: keyFile, ReloadInterval: -time.Second}, tlsconfig.ErrInvalidConfig},
		{"missing file", tlsconfig.Config{CertFile: filepath.Join(dir, "nope"), KeyFile: keyFile}, tlsconfig.ErrInvalidCertificate},
		{"garbage file", tlsconfig.Config{CertFile: garbage, KeyFile: keyFile}, tlsconfig.ErrInvalidCertificate},
		{"empty chain", tlsconfig.Config{Certificates: []tls.Certificate{{PrivateKey: good.cert.PrivateKey}}}, tlsconfig.ErrInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tlsconfig.Server(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Server: got %v, want %v", err, tt.want)
			}
			if tc != nil {
				t.Fatalf("Server returned a config with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "tlsconfig: ") || strings.Count(err.Error(), "tlsconfig:") > 1 {
				t.Errorf("error %q: want one package prefix", err)
			}
			if tt.want == tlsconfig.ErrNoCertificate {
				return // a client needs no certificate
			}
			if _, err := tlsconfig.Client(tt.cfg); !errors.Is(err, tt.want) {
				t.Fatalf("Client: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestServerCopiesCertificates(t *testing.T) {
	ca := newCA(t, "test ca")
	cert := ca.leaf(t, leafOpts{}).cert
	cert.Leaf = nil
	certs := []tls.Certificate{cert}
	sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: certs})
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].Leaf != nil || &sc.Certificates[0] == &certs[0] {
		t.Fatal("Server changed or aliased the caller's Certificates")
	}
	if sc.Certificates[0].Leaf == nil {
		t.Fatal("Leaf not set on the served certificate")
	}
}

func TestParseKeyPair(t *testing.T) {
	ca := newCA(t, "test ca")
	good := ca.leaf(t, leafOpts{})
	other := ca.leaf(t, leafOpts{})
	rsaPair := ca.leaf(t, leafOpts{rsaBits: 2048})
	now := time.Now()
	tests := []struct {
		name      string
		cert, key []byte
		want      error
	}{
		{"ok", good.certPEM, good.keyPEM, nil},
		{"rsa 2048 ok", rsaPair.certPEM, rsaPair.keyPEM, nil},
		{"mismatch", good.certPEM, other.keyPEM, tlsconfig.ErrKeyMismatch},
		{"mismatched key type", good.certPEM, rsaPair.keyPEM, tlsconfig.ErrKeyMismatch},
		{"swapped", good.keyPEM, good.certPEM, tlsconfig.ErrInvalidCertificate},
		{"empty", nil, nil, tlsconfig.ErrInvalidCertificate},
		{"truncated", good.certPEM[:len(good.certPEM)/2], good.keyPEM, tlsconfig.ErrInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := tlsconfig.ParseKeyPair(tt.cert, tt.key, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err == nil && cert.Leaf == nil {
				t.Fatal("Leaf not set")
			}
		})
	}
}

func TestDefaultServerVersions(t *testing.T) {
	ca := newCA(t, "test ca")
	sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{ca.leaf(t, leafOpts{}).cert}})
	if err != nil {
		t.Fatal(err)
	}
	if sc.MinVersion != tls.VersionTLS13 || !sc.SessionTicketsDisabled {
		t.Fatalf("strict profile: MinVersion %x, SessionTicketsDisabled %v", sc.MinVersion, sc.SessionTicketsDisabled)
	}
	addr, _ := serve(t, sc)
	tests := []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"tls 1.0", tls.VersionTLS10, false},
		{"tls 1.1", tls.VersionTLS11, false},
		{"tls 1.2", tls.VersionTLS12, false},
		{"tls 1.3", tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := dial(addr, &tls.Config{RootCAs: ca.pool, MinVersion: tt.version, MaxVersion: tt.version})
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("accepted %s", tls.VersionName(cs.Version))
			}
			if tt.ok && cs.Version != tls.VersionTLS13 {
				t.Fatalf("negotiated %s", tls.VersionName(cs.Version))
			}
		})
	}
}

func TestLegacyProfile(t *testing.T) {
	ca := newCA(t, "test ca")
	// RSA, so that RSA-key-exchange suites are possible at all: the
	// refusal below is tlsconfig's doing, not the certificate's.
	leaf := ca.leaf(t, leafOpts{rsaBits: 2048})
	var rec audit.Recorder
	sc, err := tlsconfig.Server(tlsconfig.Config{
		Certificates:        []tls.Certificate{leaf.cert},
		MinVersion:          tls.VersionTLS12,
		InsecureLegacyTLS12: true,
		Logger:              &rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := rec.Events(); len(ev) != 1 || ev[0].Action != "tlsconfig.legacy" || ev[0].Severity != audit.SeverityWarning {
		t.Fatalf("legacy opt-in not audited: %+v", ev)
	}
	addr, _ := serve(t, sc)
	// Control: a server that does allow these suites, so that a refusal
	// below cannot come from a broken client config.
	control, _ := serve(t, &tls.Config{
		Certificates: []tls.Certificate{leaf.cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		},
	})
	tests := []struct {
		name    string
		version uint16
		suites  []uint16
		ok      bool
	}{
		{"tls 1.3", tls.VersionTLS13, nil, true},
		{"tls 1.2 ecdhe gcm", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, true},
		{"tls 1.2 ecdhe chacha20", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, true},
		{"tls 1.2 rsa kex gcm", tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, false},
		{"tls 1.2 rsa kex cbc", tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}, false},
		{"tls 1.2 ecdhe cbc", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, false},
		{"tls 1.2 ecdhe cbc sha256", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}, false},
		{"tls 1.1", tls.VersionTLS11, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &tls.Config{RootCAs: ca.pool, MinVersion: tt.version, MaxVersion: tt.version, CipherSuites: tt.suites}
			cs, err := dial(addr, cc)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("accepted %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
			}
			if !tt.ok && tt.version == tls.VersionTLS12 {
				if _, err := dial(control, cc); err != nil {
					t.Fatalf("control server refused the client too, test is void: %v", err)
				}
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newCA(t, "server ca"), newCA(t, "client ca"), newCA(t, "other ca")
	sc, err := tlsconfig.Server(tlsconfig.Config{
		Certificates: []tls.Certificate{serverCA.leaf(t, leafOpts{}).cert},
		ClientCAs:    clientCA.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("ClientAuth = %v", sc.ClientAuth)
	}
	addr, serverErrs := serve(t, sc)
	tests := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no certificate", nil, false},
		{"other ca", []tls.Certificate{otherCA.leaf(t, leafOpts{client: true}).cert}, false},
		{"server ca", []tls.Certificate{serverCA.leaf(t, leafOpts{client: true}).cert}, false},
		{"client ca", []tls.Certificate{clientCA.leaf(t, leafOpts{client: true}).cert}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: serverCA.pool, Certificates: tt.certs})
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(addr, cc)
			if tt.ok != (err == nil) {
				t.Fatalf("dial: %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				select {
				case serr := <-serverErrs:
					if !strings.Contains(serr.Error(), "certificate") {
						t.Errorf("server refused for another reason: %v", serr)
					}
				case <-time.After(10 * time.Second):
					t.Error("server reported no handshake error")
				}
			}
		})
	}
}

func TestGroup(t *testing.T) {
	ca := newCA(t, "test ca")
	sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{ca.leaf(t, leafOpts{}).cert}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := dial(addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	if got := tlsconfig.Group(cs); got != "X25519MLKEM768" {
		t.Fatalf("tomkit client and server agreed on %q, want X25519MLKEM768", got)
	}
	// A classical-only client still gets in, on X25519; one offering a
	// group outside the profile does not.
	cs, err = dial(addr, &tls.Config{RootCAs: ca.pool, CurvePreferences: []tls.CurveID{tls.X25519}})
	if err != nil || tlsconfig.Group(cs) != "X25519" {
		t.Fatalf("X25519 client: %q, %v", tlsconfig.Group(cs), err)
	}
	if _, err := dial(addr, &tls.Config{RootCAs: ca.pool, CurvePreferences: []tls.CurveID{tls.CurveP521}}); err == nil {
		t.Fatal("P-521-only client accepted; the profile allows X25519MLKEM768, X25519 and P-256 only")
	}
	if got := tlsconfig.Group(tls.ConnectionState{}); got != "" {
		t.Fatalf("Group of zero state = %q", got)
	}
}

func TestClientRefusesTLS12Server(t *testing.T) {
	ca := newCA(t, "test ca")
	addr, _ := serve(t, &tls.Config{
		Certificates: []tls.Certificate{ca.leaf(t, leafOpts{}).cert},
		MaxVersion:   tls.VersionTLS12,
	})
	cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cc); err == nil {
		t.Fatal("strict client accepted a TLS 1.2 server")
	}
	// And it verifies: a server from another CA is refused.
	other := newCA(t, "other")
	addr2, _ := serve(t, &tls.Config{Certificates: []tls.Certificate{other.leaf(t, leafOpts{}).cert}})
	var uerr x509.UnknownAuthorityError
	if _, err := dial(addr2, cc); !errors.As(err, &uerr) {
		t.Fatalf("untrusted server: got %v, want x509.UnknownAuthorityError", err)
	}
}

func TestClientStrictProfile(t *testing.T) {
	cc, err := tlsconfig.Client(tlsconfig.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cc.MinVersion != tls.VersionTLS13 || cc.MaxVersion != tls.VersionTLS13 {
		t.Fatalf("client versions %x..%x", cc.MinVersion, cc.MaxVersion)
	}
	if cc.InsecureSkipVerify {
		t.Fatal("InsecureSkipVerify set")
	}
}

// TestGoDirectiveTrap shows the trap the package documentation warns
// about: with GODEBUG tlsmlkem=0 in effect (the default for a go.mod that
// says go 1.23), crypto/tls drops X25519MLKEM768 even though tlsconfig
// lists it. tlsconfig refuses to run that way unless told to, and then the
// connection really does fall back to X25519.
func TestGoDirectiveTrap(t *testing.T) {
	ca := newCA(t, "test ca")
	cert := ca.leaf(t, leafOpts{}).cert
	t.Setenv("GODEBUG", "tlsmlkem=1,tlsmlkem=0")

	if _, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}}); !errors.Is(err, tlsconfig.ErrPostQuantumDisabled) {
		t.Fatalf("Server: got %v, want ErrPostQuantumDisabled", err)
	}
	if _, err := tlsconfig.Client(tlsconfig.Config{RootCAs: ca.pool}); !errors.Is(err, tlsconfig.ErrPostQuantumDisabled) {
		t.Fatalf("Client: got %v, want ErrPostQuantumDisabled", err)
	}

	var rec audit.Recorder
	sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}, InsecureNoPostQuantum: true, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if ev := rec.Events(); len(ev) != 1 || ev[0].Severity != audit.SeverityWarning {
		t.Fatalf("exception not audited: %+v", ev)
	}
	cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: ca.pool, InsecureNoPostQuantum: true})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, sc)
	cs, err := dial(addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	if got := tlsconfig.Group(cs); got != "X25519" {
		t.Fatalf("with tlsmlkem=0 negotiated %q; the trap is gone or different, update the docs", got)
	}

	// The later setting wins, as in the runtime.
	t.Setenv("GODEBUG", "tlsmlkem=0,tlsmlkem=1")
	if _, err := tlsconfig.Client(tlsconfig.Config{}); err != nil {
		t.Fatalf("tlsmlkem=1 last: %v", err)
	}
}

// TestSessionTickets: by default no ticket is issued, so a client with a
// session cache still does a full handshake; with SessionTickets it
// resumes.
func TestSessionTickets(t *testing.T) {
	ca := newCA(t, "test ca")
	cert := ca.leaf(t, leafOpts{}).cert
	for _, tickets := range []bool{false, true} {
		sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{cert}, SessionTickets: tickets})
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := serve(t, sc)
		cc := &tls.Config{RootCAs: ca.pool, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		if _, err := dial(addr, cc); err != nil {
			t.Fatal(err)
		}
		cs, err := dial(addr, cc)
		if err != nil {
			t.Fatal(err)
		}
		if cs.DidResume != tickets {
			t.Errorf("SessionTickets=%v: second connection resumed=%v", tickets, cs.DidResume)
		}
	}
}
