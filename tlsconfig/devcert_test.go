package tlsconfig_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tomkit/tomkit/tlsconfig"
)

// devHandshake serves d over loopback with tlsconfig.Server and connects
// with a tlsconfig.Client that trusts only d.CAFile, as name.
func devHandshake(t *testing.T, d tlsconfig.DevCert, name string) error {
	t.Helper()
	srv, err := tlsconfig.Server(tlsconfig.Config{CertFile: d.CertFile, KeyFile: d.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	caPEM, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cli, err := tlsconfig.Client(tlsconfig.Config{RootCAs: pool, ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err != nil {
		return err
	}
	return c.Close()
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDevCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	d, err := tlsconfig.DevCertificate(dir, "notes.internal", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700, d.KeyFile: 0o600, filepath.Join(dir, "ca-key.pem"): 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode().Perm(), err, want)
		}
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "notes.internal", "10.1.2.3"} {
		if err := devHandshake(t, d, name); err != nil {
			t.Errorf("handshake as %s: %v", name, err)
		}
	}
	if err := devHandshake(t, d, "other.internal"); err == nil {
		t.Error("handshake as a host the certificate does not name succeeded")
	}

	// Loaded again, nothing changes.
	ca, cert := readFile(t, d.CAFile), readFile(t, d.CertFile)
	d2, err := tlsconfig.DevCertificate(dir, "notes.internal", "10.1.2.3")
	if err != nil || d2 != d {
		t.Fatalf("reload: %v, %v", d2, err)
	}
	if !bytes.Equal(readFile(t, d.CertFile), cert) {
		t.Error("a valid certificate was replaced")
	}

	// A new host gets a new certificate from the same CA, so clients
	// that trust ca.pem keep working.
	if _, err := tlsconfig.DevCertificate(dir, "api.internal"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, d.CAFile), ca) || bytes.Equal(readFile(t, d.CertFile), cert) {
		t.Error("new host: want the same CA and a new certificate")
	}
	if err := devHandshake(t, d, "api.internal"); err != nil {
		t.Errorf("handshake as the new host: %v", err)
	}

	// A damaged certificate is replaced, not served.
	if err := os.WriteFile(d.CertFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconfig.DevCertificate(dir); err != nil {
		t.Fatal(err)
	}
	if err := devHandshake(t, d, "localhost"); err != nil || !bytes.Equal(readFile(t, d.CAFile), ca) {
		t.Errorf("after repair: %v (CA kept: %v)", err, bytes.Equal(readFile(t, d.CAFile), ca))
	}
}

func TestDevCertificateLoosePermissions(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode
	}{{"key.pem", 0o644}, {"ca-key.pem", 0o640}, {"", 0o777}, {"", 0o770}} {
		dir := t.TempDir()
		if _, err := tlsconfig.DevCertificate(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, c.name), c.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := tlsconfig.DevCertificate(dir); !errors.Is(err, tlsconfig.ErrLoosePermissions) {
			t.Errorf("%q at %v: %v, want ErrLoosePermissions", c.name, c.mode, err)
		}
	}
}

func ExampleDevCertificate() {
	dir, _ := os.MkdirTemp("", "devpki")
	defer os.RemoveAll(dir)
	d, err := tlsconfig.DevCertificate(dir, "notes.localhost")
	if err != nil {
		panic(err)
	}
	cfg, err := tlsconfig.Server(tlsconfig.Config{CertFile: d.CertFile, KeyFile: d.KeyFile})
	if err != nil {
		panic(err)
	}
	_ = cfg // tlsconfig.HTTPServer(addr, handler, cfg).ListenAndServeTLS("", "")
	// Output:
}
