package section203_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/section203"
)

// TestZeroRetention runs tenants in § 203 mode and in normal operation
// through one encrypted store: a § 203 tenant's content follows its own
// rule (refused, or kept in memory only), a normal tenant's is stored,
// and metadata is stored for both.
func TestZeroRetention(t *testing.T) {
	var rec audit.Recorder
	ctx := context.Background()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := blobstore.Open(ctx, memblob.OpenBucket(nil))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := retention.NewEncrypted(raw, retention.EncryptConfig{Keyring: ring, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	store, err := retention.New(enc, retention.Config{
		Logger: &rec,
		Clock:  audit.ClockFunc(func() time.Time { return now }),
		ZDRFor: section203.ZeroRetention{Tenants: map[string]retention.ZDRMode{"praxis": retention.ZDRMemory}}.ZDR,
	})
	if err != nil {
		t.Fatal(err)
	}
	modes := mustModes(t, &rec, map[string]section203.Mode{"shop": section203.Off, "kanzlei": section203.On, "praxis": section203.On})
	stored := func(tenant, key string) bool {
		p, err := raw.Partition(tenant)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Stat(ctx, key)
		return err == nil
	}
	put := func(c context.Context, key string, class retention.Class) error {
		_, err := store.Put(c, key, strings.NewReader("client secret"), retention.PutOptions{Class: class})
		return err
	}
	read := func(c context.Context, key string) (string, error) {
		rc, _, err := store.Get(c, key)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}

	shop, kanzlei, praxis := bound(modes, "shop"), bound(modes, "kanzlei"), bound(modes, "praxis")
	if err := put(shop, "doc", retention.ClassContent); err != nil || !stored("shop", "doc") {
		t.Fatalf("normal tenant's content: %v, stored %v", err, stored("shop", "doc"))
	}

	err = put(kanzlei, "doc", retention.ClassContent)
	if !errors.Is(err, section203.ErrZeroRetention) || !errors.Is(err, retention.ErrZeroRetention) || !strings.Contains(err.Error(), "§ 203 zero retention") {
		t.Fatalf("§ 203 tenant's content under refuse: %v", err)
	}
	if stored("kanzlei", "doc") {
		t.Fatal("§ 203 content reached the backend")
	}
	var denied bool
	for _, ev := range rec.Events() {
		if ev.Action == "retention.put" && ev.Outcome == audit.OutcomeDeny && ev.Actor.Tenant == "kanzlei" && strings.Contains(ev.Reason, "§ 203") {
			denied = true
		}
	}
	if !denied {
		t.Fatal("refused § 203 content not audited as a deny naming § 203")
	}
	if err := put(kanzlei, "index", retention.ClassMetadata); err != nil || !stored("kanzlei", "index") {
		t.Fatalf("§ 203 tenant's metadata: %v", err)
	}

	if err := put(praxis, "draft", retention.ClassContent); err != nil {
		t.Fatalf("§ 203 tenant under memory: %v", err)
	}
	if stored("praxis", "draft") {
		t.Fatal("§ 203 content kept in memory reached the backend")
	}
	if got, err := read(praxis, "draft"); err != nil || got != "client secret" {
		t.Fatalf("read of in-memory content: %q, %v", got, err)
	}
	if _, err := read(bound(modes, "shop"), "draft"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("another tenant read in-memory content: %v", err)
	}
	now = now.Add(retention.DefaultZDRTTL)
	if _, err := read(praxis, "draft"); err == nil {
		t.Fatal("in-memory content outlived its ttl")
	}

	// Fail closed: a normal tenant whose mode is not bound in ctx, and a
	// tenant turned on, are treated as § 203 tenants.
	unbound := audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: "shop"})
	if err := put(unbound, "doc2", retention.ClassContent); !errors.Is(err, section203.ErrZeroRetention) {
		t.Fatalf("unbound ctx: %v", err)
	}
	if err := modes.TurnOn(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := put(shop, "doc3", retention.ClassContent); !errors.Is(err, section203.ErrZeroRetention) {
		t.Fatalf("after turning § 203 mode on: %v", err)
	}
}

// TestZeroRetentionRules checks the rule of each case directly: normal
// operation stores, § 203 mode follows the tenant's rule, and a rule that
// is off or unknown refuses.
func TestZeroRetentionRules(t *testing.T) {
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"shop": section203.Off})
	z := section203.ZeroRetention{Default: retention.ZDRMode(99), Tenants: map[string]retention.ZDRMode{
		"praxis": retention.ZDRMemory, "lax": retention.ZDROff, "shop": retention.ZDRRefuse}}
	for _, c := range []struct {
		tenant string
		mode   retention.ZDRMode
		err    error
	}{
		{"shop", retention.ZDROff, nil}, // normal operation: its rule does not apply
		{"praxis", retention.ZDRMemory, nil},
		{"lax", retention.ZDRRefuse, section203.ErrZeroRetention},
		{"other", retention.ZDRRefuse, section203.ErrZeroRetention},
		{"", retention.ZDRRefuse, section203.ErrZeroRetention},
	} {
		mode, err := z.ZDR(bound(modes, c.tenant))
		if mode != c.mode || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%q: %v, %v; want %v, %v", c.tenant, mode, err, c.mode, c.err)
		}
	}
}
