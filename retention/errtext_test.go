package retention_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// TestErrorTextSaysPrefixOnce checks real error strings from the store,
// its backends and the encrypted path: each names a package once.
func TestErrorTextSaysPrefixOnce(t *testing.T) {
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})
	var rec audit.Recorder
	b, err := fsstore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := retention.New(b, retention.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := retention.NewEncrypted(b, retention.EncryptConfig{Keyring: ring, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	es, err := retention.New(enc, retention.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.Put(ctx, "cv", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Erase(ctx, audit.Actor{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}

	errOf := func(_ any, err error) error { return err }
	get := func(s *retention.Store, key string) error { _, _, err := s.Get(ctx, key); return err }
	for _, c := range []struct {
		err  error
		want string // "" checks the prefix count only
	}{
		{get(s, "k"), `retention: get "k": object not found: "k"`},
		{errOf(s.Stat(ctx, "k")), `retention: stat "k": object not found: "k"`},
		{s.Delete(ctx, "k"), `retention: delete "k": object not found: "k"`},
		{s.SetLegalHold(ctx, "k", true), `retention: hold "k": object not found: "k"`},
		{errOf(s.Put(ctx, "", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassContent})), `retention: invalid key: ""`},
		{get(es, "cv"), ""},
	} {
		if c.err == nil {
			t.Fatalf("no error (want %q)", c.want)
		}
		msg := c.err.Error()
		if c.want != "" && msg != c.want {
			t.Errorf("error text %q, want %q", msg, c.want)
		}
		for _, p := range []string{"retention: ", "fsstore: ", "envelope: ", "kms: "} {
			if n := strings.Count(msg, p); n > 1 {
				t.Errorf("%q says %q %d times", msg, p, n)
			}
		}
		if strings.Contains(msg, `get "cv": get "cv"`) {
			t.Errorf("%q repeats its operation", msg)
		}
	}
}
