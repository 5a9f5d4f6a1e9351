package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The demo tenants: one ordinary tenant and one law firm that runs in
// § 203 StGB mode (professional secrecy).
const (
	tenantOrdinary = "acme"
	tenantLawFirm  = "kanzlei-mueller"
)

// dataDir is the service's on-disk state. Every file is created on first
// start; secrets are 0600 and the directory 0700.
type dataDir struct {
	root string
}

func (d dataDir) path(name ...string) string {
	return filepath.Join(append([]string{d.root}, name...)...)
}

// Files in the data directory.
const (
	fileCA          = "ca.pem"           // development CA certificate (pass to curl --cacert)
	fileCAKey       = "ca-key.pem"       // development CA key (0600)
	fileCert        = "server.pem"       // server certificate chain
	fileKey         = "server-key.pem"   // server key (0600)
	fileMasterKey   = "master.key"       // master key (0600) that wraps the per-tenant keysets
	dirKeysets      = "keysets"          // one wrapped keyset (KEK) per tenant
	fileAuditKey    = "audit.key"        // audit signing key (0600), golang.org/x/mod/sumdb/note format
	fileAuditPub    = "audit.pub"        // audit verifier key
	dirAudit        = "audit"            // the audit log
	filePolicy      = "policy.csv"       // RBAC policy (casbin CSV)
	filePrincipals  = "principals.json"  // demo principals: token hash, tenant, roles, MFA flag
	fileDemoTokens  = "demo-tokens.json" // the demo tokens in clear (0600): a development convenience
	dirDocuments    = "documents"        // encrypted documents
	fileTenantsJSON = "tenants.json"     // tenant directory: which tenant runs in § 203 mode
)

// openDataDir opens root, creating and populating it when it does not
// exist yet. created reports a first start.
func openDataDir(root string) (d dataDir, created bool, err error) {
	d = dataDir{root: root}
	if _, err := os.Stat(d.path(filePrincipals)); err == nil {
		return d, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return d, false, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return d, false, fmt.Errorf("create data directory: %w", err)
	}
	for _, sub := range []string{dirKeysets, dirAudit, dirDocuments} {
		if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
			return d, false, err
		}
	}
	steps := []func() error{d.createPKI, d.createMasterKey, d.createAuditKey, d.createPolicy, d.createTenants, d.createPrincipals}
	for _, s := range steps {
		if err := s(); err != nil {
			return d, false, fmt.Errorf("initialise data directory %s: %w", root, err)
		}
	}
	return d, true, nil
}

func writeSecret(path string, b []byte) error {
	return os.WriteFile(path, b, 0o600)
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// createPKI makes a development CA and a server certificate for
// localhost, 127.0.0.1 and ::1, valid for one year.
func (d dataDir) createPKI() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		return n
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tomkit refapp development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caKeyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.path(fileCA), pemEncode("CERTIFICATE", caDER), 0o644); err != nil {
		return err
	}
	if err := writeSecret(d.path(fileCAKey), pemEncode("PRIVATE KEY", caKeyDER)); err != nil {
		return err
	}
	chain := append(pemEncode("CERTIFICATE", srvDER), pemEncode("CERTIFICATE", caDER)...)
	if err := os.WriteFile(d.path(fileCert), chain, 0o644); err != nil {
		return err
	}
	return writeSecret(d.path(fileKey), pemEncode("PRIVATE KEY", srvKeyDER))
}

// defaultPolicy is the RBAC policy in rbac's CSV form: p lines grant a
// role an action on an object in a tenant ("mfa" marks a privileged
// permission that needs fresh MFA); g lines put a subject in a role in a
// tenant. Anything not granted is denied.
const defaultPolicy = `# tomkit refapp RBAC policy (see go doc github.com/tomkit/tomkit/rbac).
# Anything not granted here is denied.
# p, role, tenant, object, action, effect[, mfa]
p, editor, acme, /documents/*, create, allow
p, editor, acme, /documents/*, read, allow
p, editor, acme, /documents/*, delete, allow, mfa
p, editor, acme, /ai/models/*, call, allow
p, editor, acme, /ai/web-search, search, allow
p, viewer, acme, /documents/*, read, allow
p, eraser, acme, /tenant, erase, allow, mfa
p, reader, acme, /documents/*, read, allow, mfa
p, editor, kanzlei-mueller, /documents/*, create, allow
p, editor, kanzlei-mueller, /documents/*, read, allow
p, editor, kanzlei-mueller, /documents/*, delete, allow, mfa
p, editor, kanzlei-mueller, /ai/models/*, call, allow
p, editor, kanzlei-mueller, /ai/web-search, search, allow
p, eraser, kanzlei-mueller, /tenant, erase, allow, mfa
# g, subject, role, tenant
g, alice, editor, acme
g, bob, viewer, acme
g, carol, approver, acme
g, dave, approver, acme
g, erin, approver, acme
g, oncall, breakglass, acme
g, lena, editor, kanzlei-mueller
g, max, approver, kanzlei-mueller
g, olga, approver, kanzlei-mueller
`

func (d dataDir) createPolicy() error {
	return os.WriteFile(d.path(filePolicy), []byte(defaultPolicy), 0o600)
}

// tenantInfo describes a tenant.
type tenantInfo struct {
	Name       string `json:"name"`
	Section203 bool   `json:"section203"`
}

func (d dataDir) createTenants() error {
	b, _ := json.MarshalIndent([]tenantInfo{
		{Name: tenantOrdinary},
		{Name: tenantLawFirm, Section203: true},
	}, "", "  ")
	return os.WriteFile(d.path(fileTenantsJSON), b, 0o600)
}

func (d dataDir) tenants() (map[string]tenantInfo, error) {
	b, err := os.ReadFile(d.path(fileTenantsJSON))
	if err != nil {
		return nil, err
	}
	var list []tenantInfo
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", fileTenantsJSON, err)
	}
	m := make(map[string]tenantInfo, len(list))
	for _, t := range list {
		m[t.Name] = t
	}
	return m, nil
}

// principal is an authenticated caller. Tenant and Subject become the
// request's audit.Actor.
type principal struct {
	Subject string `json:"subject"`
	Tenant  string `json:"tenant"`
	// MFA reports that the principal's credential was issued after a
	// second factor. Administrative actions require it (TOM 000 §2,
	// 004 §1).
	MFA bool `json:"mfa"`
	// TokenSHA256 is the hex SHA-256 of the bearer token. The token
	// itself is not stored here.
	TokenSHA256 string `json:"token_sha256"`
	Description string `json:"description"`
}

type demoToken struct {
	Subject string `json:"subject"`
	Token   string `json:"token"`
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func (d dataDir) createPrincipals() error {
	specs := []principal{
		{Subject: "alice", Tenant: tenantOrdinary, MFA: true, Description: "editor at acme"},
		{Subject: "bob", Tenant: tenantOrdinary, Description: "viewer at acme, no MFA"},
		{Subject: "carol", Tenant: tenantOrdinary, MFA: true, Description: "approver at acme (four-eyes)"},
		{Subject: "dave", Tenant: tenantOrdinary, MFA: true, Description: "second approver at acme (four-eyes)"},
		{Subject: "erin", Tenant: tenantOrdinary, Description: "approver at acme without MFA (refused for privileged actions)"},
		{Subject: "lena", Tenant: tenantLawFirm, MFA: true, Description: "lawyer (editor) at the § 203 law firm"},
		{Subject: "max", Tenant: tenantLawFirm, MFA: true, Description: "approver at the law firm"},
		{Subject: "olga", Tenant: tenantLawFirm, MFA: true, Description: "second approver at the law firm (four-eyes)"},
		{Subject: "oncall", Tenant: tenantOrdinary, MFA: true, Description: "on-call operator for acme (break-glass only)"},
	}
	var toks []demoToken
	for i := range specs {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		tok := "tk_" + specs[i].Subject + "_" + base64.RawURLEncoding.EncodeToString(raw)
		specs[i].TokenSHA256 = tokenHash(tok)
		toks = append(toks, demoToken{Subject: specs[i].Subject, Token: tok})
	}
	tb, _ := json.MarshalIndent(toks, "", "  ")
	if err := writeSecret(d.path(fileDemoTokens), tb); err != nil {
		return err
	}
	pb, _ := json.MarshalIndent(specs, "", "  ")
	// principals.json is written last: its presence marks a complete
	// data directory.
	return writeSecret(d.path(filePrincipals), pb)
}

func (d dataDir) principals() ([]principal, error) {
	b, err := os.ReadFile(d.path(filePrincipals))
	if err != nil {
		return nil, err
	}
	var ps []principal
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("%s: %w", filePrincipals, err)
	}
	return ps, nil
}

func (d dataDir) demoTokens() (map[string]string, error) {
	b, err := os.ReadFile(d.path(fileDemoTokens))
	if err != nil {
		return nil, err
	}
	var ts []demoToken
	if err := json.Unmarshal(bytes.TrimSpace(b), &ts); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, t := range ts {
		m[t.Subject] = t.Token
	}
	return m, nil
}
