package retention_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
)

// dataPath is the blessed per-tenant data path: a Store over an
// Encrypted backend over raw.
type dataPath struct {
	ring  *kms.Keyring
	enc   *retention.Encrypted
	raw   retention.Backend
	store *retention.Store
}

func newDataPath(t *testing.T, log audit.Logger, ecfg retention.EncryptConfig, scfg retention.Config) *dataPath {
	t.Helper()
	d := &dataPath{ring: testKeyring(t, log), raw: memBackend(t)}
	ecfg.Keyring, ecfg.Logger = d.ring, log
	var err error
	if d.enc, err = retention.NewEncrypted(d.raw, ecfg); err != nil {
		t.Fatal(err)
	}
	scfg.Logger = log
	if d.store, err = retention.New(d.enc, scfg); err != nil {
		t.Fatal(err)
	}
	return d
}

func actorCtx(tenant, subject string) context.Context {
	return audit.WithActor(context.Background(), audit.Actor{Tenant: tenant, Subject: subject})
}

func (d *dataPath) put(t *testing.T, ctx context.Context, key, data string) {
	t.Helper()
	if _, err := d.store.Put(ctx, key, strings.NewReader(data), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (d *dataPath) read(ctx context.Context, key string) (string, error) {
	rc, _, err := d.store.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// rawCiphertext returns what the backend holds for tenant's key.
func (d *dataPath) rawCiphertext(t *testing.T, tenant, key string) ([]byte, retention.Meta) {
	t.Helper()
	rc, m, err := part(t, d.raw, tenant).Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func keyCreates(rec *audit.Recorder, tenant string) int {
	n := 0
	for _, ev := range rec.Events() {
		if ev.Action != "crypto.key_create" {
			continue
		}
		for _, a := range ev.Attributes {
			if a.Key == "scope_tenant" && a.Value == tenant {
				n++
			}
		}
	}
	return n
}

// TestDataPathTwoTenants puts the same key for two tenants through one
// store: each reads its own object, under its own KEK, and the ciphertext
// of one does not open under the other's key even with the right
// encryption context.
func TestDataPathTwoTenants(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{})
	acme, globex := actorCtx("acme", "alice"), actorCtx("globex", "alice")
	d.put(t, acme, "note/1", "acme's note")
	d.put(t, globex, "note/1", "globex's note")
	for ctx, want := range map[context.Context]string{acme: "acme's note", globex: "globex's note"} {
		if got, err := d.read(ctx, "note/1"); err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	ka, err := d.ring.Primary(audit.Actor{Tenant: "acme", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	kg, err := d.ring.Primary(audit.Actor{Tenant: "globex", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if ka.Ring == kg.Ring {
		t.Fatal("two tenants share a KEK")
	}
	ct, m := d.rawCiphertext(t, "acme", "note/1")
	if id, _ := envelope.KeyIDOf(ct); id.Ring != ka.Ring {
		t.Fatalf("acme's object under key %v, want ring of %v", id, ka)
	}
	if bytes.Contains(ct, []byte("acme's note")) {
		t.Fatal("plaintext at rest")
	}
	// Under globex's KEK, with acme's own encryption context.
	envG, err := envelope.New(d.ring.KEK(audit.Actor{Tenant: "globex", Subject: "alice"}), envelope.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	ec := envelope.Context{"tomkit.retention.key": "note/1", "tenant": "acme", "class": string(m.Class)}
	r, err := envG.Decrypt(context.Background(), bytes.NewReader(ct), ec)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("acme's ciphertext under globex's KEK: %v", err)
	}
	// And moved into globex's partition, it is not globex's object.
	m.Tenant = "globex"
	if err := part(t, d.raw, "globex").Put(context.Background(), "moved", bytes.NewReader(ct), m); err != nil {
		t.Fatal(err)
	}
	if got, err := d.read(globex, "moved"); err == nil {
		t.Fatalf("acme's ciphertext read by globex: %q", got)
	}
}

// TestDataPathScopeCreatedOnce lets many goroutines make the first write
// of a tenant at once: the tenant's key is created once, audited once,
// and every write is readable.
func TestDataPathScopeCreatedOnce(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{})
	ctx := actorCtx("newco", "bob")
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := d.store.Put(ctx, fmt.Sprintf("k%d", i), strings.NewReader(fmt.Sprint("v", i)), retention.PutOptions{Class: retention.ClassContent})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := keyCreates(&rec, "newco"); got != 1 {
		t.Fatalf("%d crypto.key_create events for the tenant, want 1", got)
	}
	for _, ev := range rec.Events() {
		if ev.Action == "crypto.key_create" && ev.Actor.Subject != "bob" {
			t.Fatalf("key creation audited for actor %+v", ev.Actor)
		}
	}
	for i := range n {
		if got, err := d.read(ctx, fmt.Sprintf("k%d", i)); err != nil || got != fmt.Sprint("v", i) {
			t.Fatalf("k%d: %q, %v", i, got, err)
		}
	}
	// The Envelope of the tenant's own scope is created once as well.
	for range 3 {
		if _, err := d.enc.Envelope(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := keyCreates(&rec, "newco"); got != 2 {
		t.Fatalf("%d crypto.key_create events after Envelope, want 2 (subject and tenant scope)", got)
	}
}

// TestDataPathShredded checks that after a tenant's keys are shredded,
// by Erase or by the keyring directly (as `tomkit keys shred` does), its
// data is unreadable and its next write gets a new key, never the
// shredded one.
func TestDataPathShredded(t *testing.T) {
	for _, how := range []string{"erase", "keyring"} {
		t.Run(how, func(t *testing.T) {
			var rec audit.Recorder
			d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{})
			acme, globex := actorCtx("acme", "alice"), actorCtx("globex", "alice")
			scope := audit.Actor{Tenant: "acme", Subject: "alice"}
			d.put(t, acme, "old", "before")
			d.put(t, globex, "old", "globex")
			env, err := d.enc.Envelope(acme)
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := env.Seal(acme, nil, []byte("field"), retention.TenantContext(acme, "row/1"))
			if err != nil {
				t.Fatal(err)
			}
			old, _ := d.ring.Primary(scope)
			switch how {
			case "erase":
				if err := d.enc.Erase(actorCtx("acme", "dpo"), audit.Actor{Tenant: "acme"}); err != nil {
					t.Fatal(err)
				}
			case "keyring":
				for _, s := range []audit.Actor{scope, {Tenant: "acme"}} {
					if err := d.ring.Shred(context.Background(), s); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := d.read(acme, "old"); !errors.Is(err, retention.ErrErased) {
				t.Fatalf("read after shred: %v", err)
			}
			env, err = d.enc.Envelope(acme)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Open(acme, nil, sealed, retention.TenantContext(acme, "row/1")); !errors.Is(err, kms.ErrKeyDestroyed) {
				t.Fatalf("open after shred: %v", err)
			}
			d.put(t, acme, "new", "after")
			if got, err := d.read(acme, "new"); err != nil || got != "after" {
				t.Fatalf("new write: %q, %v", got, err)
			}
			ct, _ := d.rawCiphertext(t, "acme", "new")
			id, _ := envelope.KeyIDOf(ct)
			if id.Ring == old.Ring {
				t.Fatal("write after shred used the shredded key")
			}
			if got := keyCreates(&rec, "acme"); got != 4 {
				t.Fatalf("%d key creations for acme, want 4 (subject and tenant scope, before and after)", got)
			}
			if got, err := d.read(globex, "old"); err != nil || got != "globex" {
				t.Fatalf("other tenant after shred: %q, %v", got, err)
			}
		})
	}
}

// TestDataPathCacheBounded checks that the envelopes kept are bounded by
// MaxScopes, and that scopes dropped from the cache still work.
func TestDataPathCacheBounded(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{MaxScopes: 4}, retention.Config{})
	for i := range 20 {
		ctx := actorCtx("acme", fmt.Sprint("user", i))
		d.put(t, ctx, fmt.Sprint("k", i), fmt.Sprint("v", i))
		if n := retention.CachedScopes(d.enc); n > 4 {
			t.Fatalf("%d envelopes kept, bound 4", n)
		}
	}
	for i := range 20 {
		if got, err := d.read(actorCtx("acme", "reader"), fmt.Sprint("k", i)); err != nil || got != fmt.Sprint("v", i) {
			t.Fatalf("k%d: %q, %v", i, got, err)
		}
	}
	if n := retention.CachedScopes(d.enc); n != 4 {
		t.Fatalf("%d envelopes kept, want 4", n)
	}
	if _, err := retention.NewEncrypted(d.raw, retention.EncryptConfig{Keyring: d.ring, Logger: &rec, MaxScopes: -1}); err == nil {
		t.Fatal("negative MaxScopes accepted")
	}
}

// TestDataPathNoTenant checks that a ctx without a tenant stores nothing
// and creates no key.
func TestDataPathNoTenant(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{})
	for _, ctx := range []context.Context{context.Background(), audit.WithActor(context.Background(), audit.Actor{Subject: "alice"})} {
		_, err := d.store.Put(ctx, "k", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassContent})
		if !errors.Is(err, retention.ErrNoTenant) {
			t.Fatalf("put without tenant: %v", err)
		}
		if _, err := d.enc.Envelope(ctx); !errors.Is(err, retention.ErrNoTenant) {
			t.Fatalf("envelope without tenant: %v", err)
		}
	}
	if ts, err := d.raw.Tenants(context.Background(), "", 10); err != nil || len(ts) != 0 {
		t.Fatalf("backend tenants %v, %v", ts, err)
	}
	if ks := d.ring.List(); len(ks) != 0 {
		t.Fatalf("keys created without a tenant: %+v", ks)
	}
}

// TestZDRFor checks the per-call zero-data-retention rule: its mode
// applies per tenant, an error refuses and is matched, an unknown mode
// refuses, and the stricter of ZDR and ZDRFor applies.
func TestZDRFor(t *testing.T) {
	errRule := errors.New("test: rule says no")
	rule := func(ctx context.Context) (retention.ZDRMode, error) {
		switch audit.ActorFrom(ctx).Tenant {
		case "open":
			return retention.ZDROff, nil
		case "memory":
			return retention.ZDRMemory, nil
		case "refuse":
			return retention.ZDRRefuse, errRule
		}
		return retention.ZDRMode(99), nil
	}
	for _, c := range []struct {
		floor  retention.ZDRMode
		tenant string
		err    error
		stored bool
	}{
		{retention.ZDROff, "open", nil, true},
		{retention.ZDROff, "memory", nil, false},
		{retention.ZDROff, "refuse", errRule, false},
		{retention.ZDROff, "unknown", retention.ErrZeroRetention, false},
		{retention.ZDRMemory, "open", nil, false},
		{retention.ZDRRefuse, "memory", retention.ErrZeroRetention, false},
	} {
		var rec audit.Recorder
		d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{ZDR: c.floor, ZDRFor: rule})
		ctx := actorCtx(c.tenant, "u")
		_, err := d.store.Put(ctx, "chat", strings.NewReader("content"), retention.PutOptions{Class: retention.ClassContent})
		if c.err == nil && err != nil || c.err != nil && (!errors.Is(err, c.err) || !errors.Is(err, retention.ErrZeroRetention)) {
			t.Fatalf("floor %d, tenant %s: put %v, want %v", c.floor, c.tenant, err, c.err)
		}
		_, serr := part(t, d.raw, c.tenant).Stat(context.Background(), "chat")
		if stored := serr == nil; stored != c.stored {
			t.Fatalf("floor %d, tenant %s: stored %v, want %v", c.floor, c.tenant, stored, c.stored)
		}
		if err == nil {
			if got, err := d.read(ctx, "chat"); err != nil || got != "content" {
				t.Fatalf("floor %d, tenant %s: read %q, %v", c.floor, c.tenant, got, err)
			}
		}
		// Metadata is stored under every rule.
		if _, err := d.store.Put(ctx, "meta", strings.NewReader("m"), retention.PutOptions{Class: retention.ClassMetadata}); err != nil && c.floor == retention.ZDROff {
			t.Fatalf("tenant %s: metadata refused: %v", c.tenant, err)
		}
	}
}

// TestDataPathSizes round-trips objects on both sides of the size up to
// which Encrypted works in memory, and checks that tampering is detected
// on both paths.
func TestDataPathSizes(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{}, retention.Config{})
	ctx := actorCtx("acme", "alice")
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		key := fmt.Sprint("obj", n)
		data := strings.Repeat("z", n)
		d.put(t, ctx, key, data)
		if got, err := d.read(ctx, key); err != nil || got != data {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		ct, m := d.rawCiphertext(t, "acme", key)
		ct[len(ct)-1] ^= 1
		if err := part(t, d.raw, "acme").Put(context.Background(), key, bytes.NewReader(ct), m); err != nil {
			t.Fatal(err)
		}
		if got, err := d.read(ctx, key); !errors.Is(err, envelope.ErrAuthentication) {
			t.Fatalf("%d bytes tampered: got %d bytes, %v", n, len(got), err)
		}
	}
}

// TestDataPathConcurrent writes and reads through a small envelope cache
// from many goroutines while the keys rotate: every read returns what was
// written, under -race.
func TestDataPathConcurrent(t *testing.T) {
	var rec audit.Recorder
	d := newDataPath(t, &rec, retention.EncryptConfig{MaxScopes: 3}, retention.Config{})
	const workers, ops, subjects = 6, 40, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops+1)
	stop := make(chan struct{})
	var rot sync.WaitGroup
	rot.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			scope := audit.Actor{Tenant: "acme", Subject: fmt.Sprint("u", i%subjects)}
			if _, err := d.ring.Rotate(context.Background(), scope); err != nil && !errors.Is(err, kms.ErrUnknownKey) {
				errs <- err
				return
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				ctx := actorCtx("acme", fmt.Sprint("u", (w+i)%subjects))
				key, want := fmt.Sprintf("w%d/%d", w, i), fmt.Sprint("v", w, i)
				if _, err := d.store.Put(ctx, key, strings.NewReader(want), retention.PutOptions{Class: retention.ClassContent}); err != nil {
					errs <- err
					return
				}
				if got, err := d.read(actorCtx("acme", "reader"), key); err != nil || got != want {
					errs <- fmt.Errorf("%s: %q, %v", key, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rot.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := retention.CachedScopes(d.enc); n > 3 {
		t.Fatalf("%d envelopes kept, bound 3", n)
	}
}

// TestDataPathFileKeyring runs concurrent first writes of a tenant
// against a keyring file: the key is created and audited once.
func TestDataPathFileKeyring(t *testing.T) {
	var rec audit.Recorder
	ctx := context.Background()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := kms.OpenOrCreate(ctx, t.TempDir()+"/keyring.json", kms.Config{Master: master, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := retention.NewEncrypted(memBackend(t), retention.EncryptConfig{Keyring: ring, Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	store, err := retention.New(enc, retention.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			_, err := store.Put(actorCtx("filetenant", "svc"), fmt.Sprint("k", i), strings.NewReader("x"), retention.PutOptions{Class: retention.ClassContent})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := keyCreates(&rec, "filetenant"); got != 1 {
		t.Fatalf("%d crypto.key_create events, want 1", got)
	}
}
