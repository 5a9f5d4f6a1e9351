package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tomkit/tomkit/internal/errtext"
)

// ErrLoosePermissions reports a private key file that others than its
// owner may read or write, or a key directory that others may write.
var ErrLoosePermissions = errors.New("tlsconfig: key file permissions looser than 0600")

// DevCert names the files of a development PKI made by [DevCertificate].
type DevCert struct {
	// CAFile is the development CA's certificate (PEM). Clients trust
	// it: curl --cacert, or [Config.RootCAs].
	CAFile string
	// CertFile and KeyFile are the server's certificate chain and key,
	// ready for [Config.CertFile] and [Config.KeyFile].
	CertFile, KeyFile string
}

// The lifetimes of a development PKI. A server certificate is replaced
// when it has less than devRenewBefore left or does not cover a host, so
// that a scanner (testssl.sh warns under 60 days) never sees it about to
// expire.
const (
	devCALifetime   = 2 * 365 * 24 * time.Hour
	devCertLifetime = 90 * 24 * time.Hour
	devRenewBefore  = 61 * 24 * time.Hour
)

// DevCertificate loads or creates a development PKI in dir: a CA
// (ca.pem, ca-key.pem) and an ECDSA P-256 server certificate it signed
// (cert.pem, key.pem) for localhost, the loopback addresses and hosts.
// It is for development and tests only: production certificates come
// from a real CA.
//
// An existing PKI is reused while its server certificate is valid for at
// least 61 more days, covers every host, chains to the CA and matches its
// key; otherwise a new server certificate is issued by the same CA (and a
// new CA made if the old one is unusable), so clients that trust ca.pem
// keep working. dir is created with mode 0700 and the keys are written
// 0600; an existing key file that others may read or write, or a dir that
// others may write, is refused with [ErrLoosePermissions] rather than
// used.
func DevCertificate(dir string, hosts ...string) (DevCert, error) {
	d := DevCert{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	caKeyFile := filepath.Join(dir, "ca-key.pem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevCert{}, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	for _, p := range []string{dir, caKeyFile, d.KeyFile} {
		loose := os.FileMode(0o077) // a key: owner only
		if p == dir {
			loose = 0o022 // the directory: nobody else may replace a file
		}
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return DevCert{}, errtext.Errorf("tlsconfig: dev certificate: %w", err)
		}
		if fi.Mode().Perm()&loose != 0 {
			return DevCert{}, fmt.Errorf("%w: %s is %v", ErrLoosePermissions, p, fi.Mode().Perm())
		}
	}
	names, ips := devHosts(hosts)
	now := time.Now()

	ca, caKey := loadDevCA(d.CAFile, caKeyFile, now)
	if ca == nil {
		var err error
		if ca, caKey, err = newDevCA(now); err != nil {
			return DevCert{}, err
		}
		if err := writeDevKey(caKeyFile, caKey); err != nil {
			return DevCert{}, err
		}
		if err := writeAtomic(d.CAFile, pemBlock("CERTIFICATE", ca.Raw), 0o644); err != nil {
			return DevCert{}, err
		}
	} else if devCertValid(d, ca, names, ips, now) {
		return d, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DevCert{}, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: devSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(devCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return DevCert{}, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	// Key first: a reloading server that sees the new certificate must
	// find its key (a mismatched pair is refused and retried anyway).
	if err := writeDevKey(d.KeyFile, key); err != nil {
		return DevCert{}, err
	}
	chain := append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", ca.Raw)...)
	if err := writeAtomic(d.CertFile, chain, 0o644); err != nil {
		return DevCert{}, err
	}
	return d, nil
}

// devHosts returns the DNS names and IP addresses to certify: localhost
// and the loopback addresses, then hosts.
func devHosts(hosts []string) ([]string, []net.IP) {
	names := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return names, ips
}

func loadDevCA(certFile, keyFile string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	certPEM, err1 := os.ReadFile(certFile)
	keyPEM, err2 := os.ReadFile(keyFile)
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	pair, err := ParseKeyPair(certPEM, keyPEM, now.Add(devCertLifetime))
	if err != nil || !pair.Leaf.IsCA {
		return nil, nil
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil
	}
	return pair.Leaf, key
}

func devCertValid(d DevCert, ca *x509.Certificate, names []string, ips []net.IP, now time.Time) bool {
	certPEM, err := os.ReadFile(d.CertFile)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(d.KeyFile)
	if err != nil {
		return false
	}
	pair, err := ParseKeyPair(certPEM, keyPEM, now.Add(devRenewBefore))
	if err != nil || pair.Leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	for _, n := range names {
		if pair.Leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	for _, ip := range ips {
		if pair.Leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

func newDevCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          devSerial(),
		Subject:               pkix.Name{CommonName: "tomkit development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	return ca, key, nil
}

func devSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand never fails
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeDevKey(name string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	return writeAtomic(name, pemBlock("PRIVATE KEY", der), 0o600)
}

// writeAtomic replaces name with data through a temporary file and a
// rename, so a reader sees the old or the new content, never a part.
func writeAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return errtext.Errorf("tlsconfig: dev certificate: %w", err)
	}
	return nil
}
