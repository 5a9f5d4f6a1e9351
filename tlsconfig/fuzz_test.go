package tlsconfig_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/tomkit/tomkit/tlsconfig"
)

// FuzzParseKeyPair feeds arbitrary PEM to ParseKeyPair. It must never
// panic, must fail only with the package's typed errors, and whatever it
// accepts must be a usable pair: the key signs and the leaf verifies it.
func FuzzParseKeyPair(f *testing.F) {
	ca := newCA(f, "fuzz ca")
	a, b := ca.leaf(f, leafOpts{}), ca.leaf(f, leafOpts{rsaBits: 2048})
	f.Add(a.certPEM, a.keyPEM)
	f.Add(b.certPEM, b.keyPEM)
	f.Add(a.certPEM, b.keyPEM)
	f.Add(a.keyPEM, a.certPEM)
	f.Add(append(a.certPEM, b.certPEM...), a.keyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte{})
	now := time.Now()
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := tlsconfig.ParseKeyPair(certPEM, keyPEM, now)
		if err != nil {
			for _, want := range []error{
				tlsconfig.ErrInvalidCertificate, tlsconfig.ErrKeyMismatch,
				tlsconfig.ErrCertificateExpired, tlsconfig.ErrWeakKey,
			} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		if cert.Leaf == nil || now.After(cert.Leaf.NotAfter) {
			t.Fatalf("accepted a pair without a valid leaf")
		}
		if cert.Leaf.PublicKeyAlgorithm == x509.Ed25519 {
			return // Ed25519 signs the message, not a digest; ParseKeyPair's Equal check covers it
		}
		signer := cert.PrivateKey.(crypto.Signer)
		digest := sha256.Sum256([]byte("tomkit"))
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
		alg := x509.ECDSAWithSHA256
		if cert.Leaf.PublicKeyAlgorithm == x509.RSA {
			alg = x509.SHA256WithRSA
		}
		if err := cert.Leaf.CheckSignature(alg, []byte("tomkit"), sig); err != nil {
			t.Fatalf("accepted key does not match leaf: %v", err)
		}
	})
}
