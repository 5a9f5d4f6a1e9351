package tomtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/section203"
	"github.com/tomkit/tomkit/tlsconfig"
	"github.com/tomkit/tomkit/tomtest"
)

// These tests run the kit against tomkit's own packages, the way a
// downstream CI would against its configuration of them.

const testPolicy = `p, editor, acme, /documents/*, read, allow
p, editor, acme, /documents/*, delete, allow, mfa
g, alice, editor, acme
p, editor, beta, /documents/*, read, allow
g, bob, editor, beta
`

func TestKitAgainstRBAC(t *testing.T) {
	var rec audit.Recorder
	enf, err := rbac.New(t.Context(), rbac.Config{Logger: &rec, Policy: []byte(testPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	defer enf.Close()
	decide := func(ctx context.Context, action, object string) error { return enf.Check(ctx, object, action) }
	withMFA := func(ctx context.Context) context.Context { return rbac.WithMFA(ctx, time.Now()) }
	tomtest.Require(t,
		tomtest.DenyByDefault(decide,
			tomtest.Probe{Actor: audit.Actor{Subject: "alice", Tenant: "beta"}, Action: "read", Resource: "/documents/x", Why: "cross-tenant"},
			tomtest.Probe{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "read", Resource: "/documents/../secret", Why: "path traversal"},
		),
		tomtest.MFARequired(decide, withMFA,
			tomtest.Probe{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "delete", Resource: "/documents/x"}),
	)
}

func TestKitAgainstTLSConfig(t *testing.T) {
	srv := httptest.NewUnstartedServer(tlsconfig.HSTS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	tc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{testCert(t)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = tc
	srv.StartTLS()
	defer srv.Close()
	tomtest.Require(t, tomtest.TLS13Only(srv.URL, testRoots(t)), tomtest.HSTS(srv.URL, testRoots(t)))
}

// asAcme returns ctx acting for tenant acme: the retention store keeps
// objects per tenant.
func asAcme(ctx context.Context) context.Context {
	return audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "acme"})
}

func TestKitAgainstEnvelopeAndRetention(t *testing.T) {
	ctx := t.Context()
	var rec audit.Recorder
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	scope := audit.Actor{Tenant: "acme"}
	if err := ring.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(ring.KEK(scope), envelope.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	be, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := retention.New(be, retention.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	put := func(ctx context.Context, b []byte) error {
		ct, err := env.Seal(ctx, nil, b, envelope.Context{"tenant": "acme"})
		if err != nil {
			return err
		}
		n++
		_, err = st.Put(asAcme(ctx), "doc"+strings.Repeat("x", n), bytes.NewReader(ct), retention.PutOptions{Class: retention.ClassContent})
		return err
	}
	probe := func(ctx context.Context, age time.Duration) (bool, error) {
		now := time.Now()
		s, err := retention.New(be, retention.Config{Logger: &rec, Clock: audit.ClockFunc(func() time.Time { return now })})
		if err != nil {
			return false, err
		}
		key := "probe-" + age.String()
		if _, err := s.Put(asAcme(ctx), key, strings.NewReader("p"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
			return false, err
		}
		now = now.Add(age)
		op := retention.WithOperator(audit.WithActor(ctx, audit.Actor{Subject: "ops"}), "retention window probe")
		if _, err := s.Purge(op, retention.PurgeOptions{}); err != nil {
			return false, err
		}
		p, err := be.Partition("acme")
		if err != nil {
			return false, err
		}
		_, err = p.Stat(ctx, key)
		return err == nil, nil
	}
	tomtest.Require(t,
		tomtest.EncryptedAtRest(put, os.DirFS(dir)),
		tomtest.RetentionWindow(tomtest.MaxRetention000, probe),
	)
	// The same store without the envelope keeps plaintext, and the kit
	// says so.
	plain := func(ctx context.Context, b []byte) error {
		_, err := st.Put(asAcme(ctx), "plain", bytes.NewReader(b), retention.PutOptions{Class: retention.ClassContent})
		return err
	}
	if r := tomtest.Run(ctx, tomtest.EncryptedAtRest(plain, os.DirFS(dir)))[0]; r.Status != tomtest.StatusFail {
		t.Fatalf("plaintext store: %s %s", r.Status, r.Detail)
	}
}

func TestKitAgainstSection203(t *testing.T) {
	var rec audit.Recorder
	modes, err := section203.NewModes(section203.ModesConfig{Tenants: map[string]section203.Mode{"kanzlei": section203.On}, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	g, err := section203.New(section203.Config{
		Logger: &rec,
		Providers: []section203.Provider{
			{Name: "mistral", Jurisdiction: section203.EU, Models: []string{"mistral-large"},
				Endpoints: []section203.Endpoint{{URL: "https://api.mistral.ai/v1", Region: "FR"}}, ZDRAttestation: "zdr", Commitment: "c203"},
			{Name: "openai", Jurisdiction: section203.NonEU, Models: []string{"gpt-4o"},
				Endpoints: []section203.Endpoint{{URL: "https://api.openai.com/v1", Region: "global"}}},
		},
		Tools: []section203.Tool{{Name: "web_search", Kind: section203.ToolWebSearch}},
	})
	if err != nil {
		t.Fatal(err)
	}
	endpoint := map[string][2]string{"mistral-large": {"mistral", "https://api.mistral.ai/v1"}, "gpt-4o": {"openai", "https://api.openai.com/v1"}}
	bind := func(ctx context.Context) context.Context {
		return modes.Bind(audit.WithActor(ctx, audit.Actor{Subject: "lena", Tenant: "kanzlei"}))
	}
	tomtest.Require(t, tomtest.Section203(tomtest.Guard203{
		WebSearch: func(ctx context.Context) error { _, err := g.Tool(bind(ctx), "web_search"); return err },
		Model: func(ctx context.Context, m string) error {
			_, err := g.Model(bind(ctx), endpoint[m][0], m, endpoint[m][1])
			return err
		},
		NonEUModel: "gpt-4o",
		EUModel:    "mistral-large",
	}))
}

func TestKitAgainstAuditFileLog(t *testing.T) {
	ctx := t.Context()
	skey, vkey, err := audit.GenerateKey("tomtest.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := audit.NewSigner(skey)
	v, _ := audit.NewVerifier(vkey)
	dir := filepath.Join(t.TempDir(), "log")
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := l.Log(ctx, audit.Event{Actor: audit.Actor{Subject: "alice", Tenant: "acme"}, Action: "tomtest.read", Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tomtest.Require(t, tomtest.AuditIntegrity(dir, func(ctx context.Context, dir string) error {
		_, err := audit.Verify(ctx, dir, v)
		return err
	}))
}
