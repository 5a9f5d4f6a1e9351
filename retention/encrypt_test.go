package retention_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/internal/storetest"
)

func testKeyring(t testing.TB, log audit.Logger) *kms.Keyring {
	t.Helper()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Create(context.Background(), "", kms.Config{Master: master, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func testEnvelope(t testing.TB, log audit.Logger) *envelope.Envelope {
	t.Helper()
	ring := testKeyring(t, log)
	scope := audit.Actor{Tenant: "backup"}
	if err := ring.Create(context.Background(), scope); err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(ring.KEK(scope), envelope.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// part returns tenant's partition of b.
func part(t testing.TB, b retention.Backend, tenant string) retention.Partition {
	t.Helper()
	p, err := b.Partition(tenant)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEncrypted(t testing.TB, ring *kms.Keyring, log audit.Logger) (*retention.Encrypted, retention.Backend) {
	t.Helper()
	raw, err := fsstore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := retention.NewEncrypted(raw, retention.EncryptConfig{Keyring: ring, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return e, raw
}

func TestEncryptedConformance(t *testing.T) {
	var rec audit.Recorder
	ring := testKeyring(t, &rec)
	storetest.Run(t, func(t *testing.T) retention.Backend {
		e, _ := newEncrypted(t, ring, &rec)
		return e
	})
}

func TestEncryptedAtRestAndBound(t *testing.T) {
	var rec audit.Recorder
	ctx := context.Background()
	eb, rawb := newEncrypted(t, testKeyring(t, &rec), &rec)
	secret := strings.Repeat("confidential client file ", 1000)
	m := storetest.Meta(retention.ClassContent, day)
	e, raw, eB, rawB := part(t, eb, m.Tenant), part(t, rawb, m.Tenant), part(t, eb, "tenant-b"), part(t, rawb, "tenant-b")
	if err := e.Put(ctx, "doc", strings.NewReader(secret), m); err != nil {
		t.Fatal(err)
	}
	rc, _, err := raw.Get(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := io.ReadAll(rc)
	rc.Close()
	if bytes.Contains(ct, []byte("confidential")) {
		t.Fatal("plaintext at rest")
	}
	// The same ciphertext under another key, or relabelled, does not open.
	if err := raw.Put(ctx, "other", bytes.NewReader(ct), m); err != nil {
		t.Fatal(err)
	}
	m2 := m
	m2.Class = retention.ClassMetadata
	if err := raw.Put(ctx, "relabelled", bytes.NewReader(ct), m2); err != nil {
		t.Fatal(err)
	}
	m3 := m
	m3.Tenant = "tenant-b"
	if err := rawB.Put(ctx, "doc", bytes.NewReader(ct), m3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p retention.Partition
		k string
	}{{e, "other"}, {e, "relabelled"}, {eB, "doc"}} {
		rc, _, err := c.p.Get(ctx, c.k)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil {
			t.Fatalf("%s: ciphertext opened outside its context", c.k)
		}
	}
	if err := e.SetMeta(ctx, "doc", m2); err == nil {
		t.Fatal("class change of an encrypted object accepted")
	}
	if err := e.Put(ctx, "x", strings.NewReader("x"), retention.Meta{Class: retention.ClassLog, Created: m.Created, RetainUntil: m.RetainUntil}); !errors.Is(err, retention.ErrNoTenant) {
		t.Fatalf("put without tenant = %v", err)
	}
	rc, _, err = e.Get(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != secret {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
	// Tampering with the stored ciphertext is detected; nothing
	// unauthenticated is returned.
	ct[len(ct)-5] ^= 1
	if err := raw.Put(ctx, "doc", bytes.NewReader(ct), m); err != nil {
		t.Fatal(err)
	}
	rc, _, err = e.Get(ctx, "doc")
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("tampered read = %v", err)
	}
}

func TestEraseReachesBackups(t *testing.T) {
	var rec audit.Recorder
	ctx := context.Background()
	clk := newClock()
	ring := testKeyring(t, &rec)
	e, _ := newEncrypted(t, ring, &rec)
	s, err := retention.New(e, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if err != nil {
		t.Fatal(err)
	}
	put := func(tenant, subject, key string) {
		c := audit.WithActor(ctx, audit.Actor{Tenant: tenant, Subject: subject})
		if _, err := s.Put(c, key, strings.NewReader("data of "+key), retention.PutOptions{Class: retention.ClassContent}); err != nil {
			t.Fatal(err)
		}
	}
	put("acme", "alice", "a1")
	put("acme", "alice", "a2")
	put("acme", "bob", "b1")
	put("globex", "carol", "c1")
	dst, _ := retention.New(memBackend(t), retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	bk, err := retention.NewBackups(retention.BackupConfig{Target: dst, Envelope: testEnvelope(t, &rec)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := bk.Snapshot(opCtx, s)
	if err != nil {
		t.Fatal(err)
	}

	dpo := audit.WithActor(ctx, audit.Actor{Tenant: "acme", Subject: "dpo"})
	if err := e.Erase(dpo, audit.Actor{Tenant: "acme", Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	read := func(st *retention.Store, k string) error {
		tenant := map[string]string{"a1": "acme", "a2": "acme", "b1": "acme", "c1": "globex"}[k]
		rc, _, err := st.Get(audit.WithActor(ctx, audit.Actor{Tenant: tenant, Subject: "reader"}), k)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.ReadAll(rc)
		return err
	}
	for k, want := range map[string]error{"a1": retention.ErrErased, "a2": retention.ErrErased, "b1": nil, "c1": nil} {
		if err := read(s, k); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("after erasing alice, %s: %v, want %v", k, err, want)
		}
	}
	// The backup taken before the erasure still verifies (it holds the
	// ciphertext) but alice's objects restored from it are unreadable.
	scratch := memBackend(t)
	if _, err := bk.RestoreVerify(opCtx, info.ID, scratch); err != nil {
		t.Fatal(err)
	}
	restored, _ := retention.NewEncrypted(scratch, retention.EncryptConfig{Keyring: ring, Logger: &rec})
	rs, _ := retention.New(restored, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if err := read(rs, "a1"); !errors.Is(err, retention.ErrErased) {
		t.Fatalf("restored a1 after erase: %v", err)
	}
	if err := read(rs, "b1"); err != nil {
		t.Fatalf("restored b1: %v", err)
	}
	// Erasing a tenant takes every subject's key of that tenant.
	if err := e.Erase(dpo, audit.Actor{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := read(s, "b1"); !errors.Is(err, retention.ErrErased) {
		t.Fatalf("after erasing acme, b1: %v", err)
	}
	if err := read(s, "c1"); err != nil {
		t.Fatalf("other tenant affected: %v", err)
	}
	var erase []audit.Event
	for _, ev := range rec.Events() {
		if ev.Action == "retention.erase" {
			erase = append(erase, ev)
		}
	}
	if len(erase) != 2 || erase[0].Actor.Subject != "dpo" || !erase[0].Attributes[1].Personal || erase[0].Severity != audit.SeverityWarning {
		t.Fatalf("erase events %+v", erase)
	}
	if err := e.Erase(dpo, audit.Actor{}); !errors.Is(err, retention.ErrNoTenant) {
		t.Fatalf("erase without tenant = %v", err)
	}
}

// batchCounter is a backend whose partitions have a one-step purge that
// counts its calls.
type batchCounter struct {
	retention.Backend
	calls int
}

func (c *batchCounter) Partition(tenant string) (retention.Partition, error) {
	p, err := c.Backend.Partition(tenant)
	if err != nil {
		return nil, err
	}
	return &batchPart{p, c}, nil
}

type batchPart struct {
	retention.Partition
	c *batchCounter
}

func (c *batchPart) PurgeBatch(ctx context.Context, cut retention.Cutoff, after string, limit int, deleted func([]byte)) (retention.PurgedBatch, error) {
	c.c.calls++
	es, err := c.ListExpired(ctx, cut, after, limit)
	if err != nil || len(es) == 0 {
		return retention.PurgedBatch{}, err
	}
	pb := retention.PurgedBatch{Listed: len(es), First: es[0].Key, Last: es[len(es)-1].Key}
	var keys []string
	for _, e := range es {
		if e.Err == nil && cut.Deletable(e.Meta) {
			keys = append(keys, e.Key)
		} else {
			pb.Kept = append(pb.Kept, e)
		}
	}
	gone, err := c.DeleteExpired(ctx, cut, keys)
	for _, k := range gone {
		deleted([]byte(k))
	}
	return pb, err
}

// TestEncryptedUsesBatchPurger checks that a purge through an Encrypted
// backend uses the one-step purge of the backend it wraps, and that a dry
// run does not.
func TestEncryptedUsesBatchPurger(t *testing.T) {
	var rec audit.Recorder
	raw, err := fsstore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bc := &batchCounter{Backend: raw}
	e, err := retention.NewEncrypted(bc, retention.EncryptConfig{Keyring: testKeyring(t, &rec), Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	s, err := retention.New(e, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(userCtx, k, strings.NewReader("secret "+k), retention.PutOptions{Class: retention.ClassLog, RetainFor: day}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(userCtx, "live", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog, RetainFor: 3 * day}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(day)
	dry, err := s.Purge(opCtx, retention.PurgeOptions{DryRun: true, BatchSize: 2})
	if err != nil || dry.Deleted != 3 || bc.calls != 0 {
		t.Fatalf("dry run %+v, %v, %d one-step calls", dry, err, bc.calls)
	}
	rep, err := s.Purge(opCtx, retention.PurgeOptions{BatchSize: 2})
	if err != nil || rep.Deleted != 3 || rep.Digest != dry.Digest {
		t.Fatalf("purge %+v, %v (dry run %+v)", rep, err, dry)
	}
	if bc.calls == 0 {
		t.Fatal("purge through Encrypted did not use the wrapped backend's PurgeBatch")
	}
	if _, err := part(t, raw, "acme").Stat(context.Background(), "a"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("purged object still stored: %v", err)
	}
	rc, _, err := s.Get(userCtx, "live")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "x" {
		t.Fatalf("live object: %q %v", b, err)
	}
}

// TestEraseSubjectsCreatedElsewhere erases a tenant whose subject key
// another process (or instance) sharing the keyring created: it is
// shredded too.
func TestEraseSubjectsCreatedElsewhere(t *testing.T) {
	var rec audit.Recorder
	ctx := context.Background()
	master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg := kms.Config{Master: master, Logger: &rec}
	path := filepath.Join(t.TempDir(), "keyring.json")
	ringA, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ringB, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ringA.Create(ctx, audit.Actor{Tenant: "acme", Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := ringB.Create(ctx, audit.Actor{Tenant: "acme", Subject: "bob"}); err != nil {
		t.Fatal(err)
	}
	e, _ := newEncrypted(t, ringA, &rec)
	if err := e.Erase(opCtx, audit.Actor{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := ringA.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, si := range ringA.List() {
		if si.Destroyed.IsZero() && si.Scope.Tenant == "acme" {
			t.Errorf("scope %+v still live after the tenant's erasure", si.Scope)
		}
	}
}
