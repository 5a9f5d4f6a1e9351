package kms_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

func master(t *testing.T) kms.Config {
	t.Helper()
	m, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return kms.Config{Master: m, Logger: new(audit.Recorder)}
}

func TestParseMasterKey(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{kms.GenerateMasterKey(), nil},
		{" " + kms.GenerateMasterKey() + "\n", nil},
		{"", kms.ErrInvalidMasterKey},
		{"c2hvcnQ=", kms.ErrInvalidMasterKey},
		{"not base64 at all!", kms.ErrInvalidMasterKey},
		{strings.Repeat("A", 60), kms.ErrInvalidMasterKey},
	}
	for _, tt := range tests {
		if _, err := kms.ParseMasterKey(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("ParseMasterKey(%q) = %v; want %v", tt.in, err, tt.want)
		}
	}
}

func TestMasterKeyFromFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode os.FileMode
		body string
		want error
	}{
		{0o600, kms.GenerateMasterKey(), nil},
		{0o400, kms.GenerateMasterKey(), nil},
		{0o644, kms.GenerateMasterKey(), kms.ErrLoosePermissions},
		{0o640, kms.GenerateMasterKey(), kms.ErrLoosePermissions},
		{0o604, kms.GenerateMasterKey(), kms.ErrLoosePermissions},
		{0o660, kms.GenerateMasterKey(), kms.ErrLoosePermissions},
		{0o600, "garbage", kms.ErrInvalidMasterKey},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(tt.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tt.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := kms.MasterKeyFromFile(p); !errors.Is(err, tt.want) {
			t.Errorf("mode %#o: %v; want %v", tt.mode, err, tt.want)
		}
	}
	if _, err := kms.MasterKeyFromFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := kms.MasterKeyFromFile(dir); err == nil {
		t.Error("directory accepted")
	}
}

func TestMasterKeyFromEnv(t *testing.T) {
	t.Setenv(kms.MasterKeyEnv, "")
	if _, err := kms.MasterKeyFromEnv(); !errors.Is(err, kms.ErrNoMasterKey) {
		t.Fatalf("unset: %v", err)
	}
	t.Setenv(kms.MasterKeyEnv, "bad")
	if _, err := kms.MasterKeyFromEnv(); !errors.Is(err, kms.ErrInvalidMasterKey) {
		t.Fatalf("bad: %v", err)
	}
	t.Setenv(kms.MasterKeyEnv, kms.GenerateMasterKey())
	if _, err := kms.MasterKeyFromEnv(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRequired(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	if _, err := kms.Create(ctx, "", kms.Config{Logger: cfg.Logger}); !errors.Is(err, kms.ErrNoMasterKey) {
		t.Fatalf("no master: %v", err)
	}
	if _, err := kms.Create(ctx, "", kms.Config{Master: cfg.Master}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("no audit: %v", err)
	}
	r, _ := kms.Create(ctx, "", cfg)
	if err := r.Create(ctx, audit.Actor{Subject: "no tenant"}); !errors.Is(err, kms.ErrInvalidScope) {
		t.Fatalf("empty tenant: %v", err)
	}
	if _, err := r.Rotate(ctx, audit.Actor{Tenant: "nobody"}); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("rotate unknown: %v", err)
	}
}

func TestKeyringFile(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	r, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kms.Create(ctx, path, cfg); !errors.Is(err, kms.ErrExist) {
		t.Fatalf("create twice: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %#o", fi.Mode().Perm())
	}
	for _, sc := range []audit.Actor{{Tenant: "a"}, {Tenant: "b"}, {Tenant: "a", Subject: "s1"}} {
		if err := r.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Create(ctx, audit.Actor{Tenant: "a"}); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, audit.Actor{Tenant: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMinVersion(ctx, audit.Actor{Tenant: "b"}, 2); err != nil {
		t.Fatal(err)
	}
	r2, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := r2.List()
	if len(got) != 3 || got[0].Scope != (audit.Actor{Tenant: "a"}) || got[1].Scope != (audit.Actor{Tenant: "a", Subject: "s1"}) {
		t.Fatalf("List = %+v", got)
	}
	b := got[2]
	if b.MinVersion != 2 || len(b.Keys) != 2 || !b.Keys[0].Retired || !b.Keys[1].Primary || b.Keys[1].Version != 2 {
		t.Fatalf("scope b = %+v", b)
	}
	// Nothing in the file is key material in the clear.
	raw, _ := os.ReadFile(path)
	// (Tink's key type names; a short string such as "AES" could turn
	// up in the base64 of ciphertext by chance.)
	for _, clear := range []string{"AesGcmKey", "google.crypto.tink", "AES256_GCM"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Fatalf("keyring file mentions key material in the clear (%q)", clear)
		}
	}

	// Loose permissions, wrong master key.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kms.Open(ctx, path, cfg); !errors.Is(err, kms.ErrLoosePermissions) {
		t.Fatalf("loose: %v", err)
	}
	os.Chmod(path, 0o600)
	other := master(t)
	if _, err := kms.Open(ctx, path, kms.Config{Master: other.Master, Logger: cfg.Logger}); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Fatalf("wrong master: %v", err)
	}
}

// TestTamperedMetadata edits the keyring file's clear metadata: every
// change makes it fail to load.
func TestTamperedMetadata(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	r, _ := kms.Create(ctx, path, cfg)
	r.Create(ctx, audit.Actor{Tenant: "a"})
	r.Create(ctx, audit.Actor{Tenant: "b"})
	r.Rotate(ctx, audit.Actor{Tenant: "a"})
	r.SetMinVersion(ctx, audit.Actor{Tenant: "a"}, 2)
	orig, _ := os.ReadFile(path)
	edits := map[string]func(m map[string]any){
		"lower min version": func(m map[string]any) { scope(m, "a")["min_version"] = 1 },
		"rename tenant":     func(m map[string]any) { scope(m, "a")["tenant"] = "c" },
		"swap keysets": func(m map[string]any) {
			a, b := scope(m, "a"), scope(m, "b")
			a["keyset"], b["keyset"] = b["keyset"], a["keyset"]
		},
		"renumber versions": func(m map[string]any) {
			keys := scope(m, "a")["keys"].([]any)
			keys[0].(map[string]any)["version"] = 3
		},
		"format": func(m map[string]any) { m["format"] = "tomkit-keyring-v0" },
	}
	for name, edit := range edits {
		var m map[string]any
		json.Unmarshal(orig, &m)
		edit(m)
		b, _ := json.Marshal(m)
		os.WriteFile(path, b, 0o600)
		if _, err := kms.Open(ctx, path, cfg); !errors.Is(err, kms.ErrWrongMasterKey) {
			t.Errorf("%s: %v; want ErrWrongMasterKey", name, err)
		}
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := kms.Open(ctx, path, cfg); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Errorf("garbage: %v", err)
	}
}

func scope(m map[string]any, tenant string) map[string]any {
	for _, s := range m["scopes"].([]any) {
		if s := s.(map[string]any); s["tenant"] == tenant {
			return s
		}
	}
	panic("no scope " + tenant)
}

func TestAuditEvents(t *testing.T) {
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "ops", Tenant: "admin"})
	cfg := master(t)
	rec := cfg.Logger.(*audit.Recorder)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	cfg.Clock = audit.ClockFunc(func() time.Time { return now })
	path := filepath.Join(t.TempDir(), "k")
	r, _ := kms.Create(ctx, path, cfg)
	sc := audit.Actor{Tenant: "t", Subject: "alice@example.com"}
	r.Create(ctx, sc)
	r.Rotate(ctx, sc)
	r.SetMinVersion(ctx, sc, 2)
	r.Shred(ctx, sc)
	kms.Open(ctx, path, cfg)
	want := []string{"crypto.keyring_create", "crypto.key_create", "crypto.key_rotate", "crypto.key_min_version", "crypto.key_shred", "crypto.keyring_open"}
	evs := rec.Events()
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Action != want[i] || e.Outcome != audit.OutcomeAllow || e.Actor.Subject != "ops" || !e.Time.Equal(now) {
			t.Errorf("event %d = %+v; want %s", i, e, want[i])
		}
	}
	// The subject of a per-subject scope is personal data.
	for _, a := range evs[1].Attributes {
		if a.Key == "scope_subject" && !a.Personal {
			t.Error("scope_subject not marked personal")
		}
	}
}

// failLogger refuses every event.
type failLogger struct{}

func (failLogger) Log(context.Context, audit.Event) error { return errors.New("disk full") }

func TestAuditFailureFails(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = failLogger{}
	if _, err := kms.Create(ctx, "", cfg); err == nil {
		t.Fatal("keyring created without an audit record")
	}
	// A change that reached the file but not the audit log says so.
	var sw switchLogger
	cfg.Logger = &sw
	r, err := kms.Create(ctx, filepath.Join(t.TempDir(), "k"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw.fail = true
	err = r.Create(ctx, audit.Actor{Tenant: "t"})
	if err == nil || !strings.Contains(err.Error(), "is saved") {
		t.Fatalf("Create with failing audit: %v", err)
	}
}

type switchLogger struct{ fail bool }

func (s *switchLogger) Log(context.Context, audit.Event) error {
	if s.fail {
		return errors.New("disk full")
	}
	return nil
}

func TestKeyIDString(t *testing.T) {
	id := kms.KeyID{Ring: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Key: 0xdeadbeef}
	if got := id.String(); got != "0102030405060708/deadbeef" {
		t.Fatal(got)
	}
}

// TestManyScopes creates many per-subject scopes in a file-backed keyring:
// each change re-encrypts only its own scope.
func TestManyScopes(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	path := filepath.Join(t.TempDir(), "k")
	r, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := 0; i < n; i++ {
		if err := r.Create(ctx, audit.Actor{Tenant: "t", Subject: fmt.Sprint("s", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Shred(ctx, audit.Actor{Tenant: "t", Subject: "s7"}); err != nil {
		t.Fatal(err)
	}
	r2, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r2.List()); got != n {
		t.Fatalf("%d scopes listed, want %d (%d live + 1 shredded)", got, n, n-1)
	}
}

type nopLogger struct{}

func (nopLogger) Log(context.Context, audit.Event) error { return nil }

// TestTwoProcesses has a service and an operator's CLI share one keyring
// file: changes build on each other, and Reload brings a shred made
// elsewhere into the service.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	rec := cfg.Logger.(*audit.Recorder)
	path := filepath.Join(t.TempDir(), "k")
	svc, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tenant, subject := audit.Actor{Tenant: "t"}, audit.Actor{Tenant: "t", Subject: "s"}
	for _, sc := range []audit.Actor{tenant, subject} {
		if err := svc.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	dek := bytes.Repeat([]byte{1}, 32)
	id, w, err := svc.KEK(subject).Wrap(ctx, nil, dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Rotate(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	// The service's next change keeps the operator's rotation.
	if err := svc.Create(ctx, audit.Actor{Tenant: "u"}); err != nil {
		t.Fatal(err)
	}
	check, err := kms.Open(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := check.List(); len(got) != 3 {
		t.Fatalf("file after both changes: %+v", got)
	}
	for _, si := range check.List() {
		if si.Scope == tenant && len(si.Keys) != 2 {
			t.Fatalf("the rotation was lost: %+v", si)
		}
	}
	// A shred from the CLI reaches the service on Reload.
	if err := cli.Shred(ctx, subject); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.KEK(subject).Unwrap(ctx, nil, id, w, nil); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	if err := svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.KEK(subject).Unwrap(ctx, nil, id, w, nil); !errors.Is(err, kms.ErrKeyDestroyed) {
		t.Fatalf("after reload: %v; want ErrKeyDestroyed", err)
	}
	if err := svc.Reload(ctx); err != nil { // nothing changed: not audited again
		t.Fatal(err)
	}
	n := 0
	for _, e := range rec.Events() {
		if e.Action == "crypto.keyring_reload" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d crypto.keyring_reload events, want 1", n)
	}
}

// TestTamperEveryByte changes every byte of a keyring file, and edits
// each field of it, without the master key: the file either fails to load
// with ErrWrongMasterKey or loads exactly as it was. The list of destroyed
// scopes in particular is authenticated: no tombstone can be added or
// removed.
func TestTamperEveryByte(t *testing.T) {
	ctx := context.Background()
	cfg := master(t)
	cfg.Logger = nopLogger{}
	path := filepath.Join(t.TempDir(), "keys.json")
	r, err := kms.Create(ctx, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	live, gone := audit.Actor{Tenant: "a"}, audit.Actor{Tenant: "a", Subject: "s"}
	for _, sc := range []audit.Actor{live, gone} {
		if err := r.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Rotate(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := r.Shred(ctx, gone); err != nil {
		t.Fatal(err)
	}
	want := r.List()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := kms.Open(ctx, path, cfg)
		if err == nil {
			if !reflect.DeepEqual(got.List(), want) {
				t.Errorf("%s: loaded a changed keyring: %+v", name, got.List())
			}
			return
		}
		if !errors.Is(err, kms.ErrWrongMasterKey) {
			t.Errorf("%s: %v; want ErrWrongMasterKey", name, err)
		}
	}
	for i := range orig {
		for _, x := range []byte{0x01, 0x20} {
			b := bytes.Clone(orig)
			b[i] ^= x
			try(fmt.Sprintf("byte %d ^ %#x", i, x), b)
		}
	}
	liveRing := hex.EncodeToString(want[0].Ring[:])
	edits := map[string]func(m map[string]any){
		"add tombstone of a live scope": func(m map[string]any) {
			m["destroyed"] = append(m["destroyed"].([]any), map[string]any{"ring": liveRing, "destroyed": "2026-01-01T00:00:00Z"})
		},
		"add tombstone": func(m map[string]any) {
			m["destroyed"] = append(m["destroyed"].([]any), map[string]any{"ring": "0102030405060708", "destroyed": "2026-01-01T00:00:00Z"})
		},
		"remove tombstones": func(m map[string]any) { delete(m, "destroyed") },
		"change tombstone time": func(m map[string]any) {
			m["destroyed"].([]any)[0].(map[string]any)["destroyed"] = "2020-01-01T00:00:00Z"
		},
		"remove auth":                  func(m map[string]any) { delete(m, "auth") },
		"downgrade to v1":              func(m map[string]any) { m["format"] = "tomkit-keyring-v1"; delete(m, "auth") },
		"downgrade, keep auth":         func(m map[string]any) { m["format"] = "tomkit-keyring-v1" },
		"remove a scope":               func(m map[string]any) { m["scopes"] = []any{} },
		"rename tenant":                func(m map[string]any) { scope(m, "a")["tenant"] = "b" },
		"tombstone ring to a live one": func(m map[string]any) { m["destroyed"].([]any)[0].(map[string]any)["ring"] = liveRing },
	}
	for name, edit := range edits {
		var m map[string]any
		if err := json.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kms.Open(ctx, path, cfg); !errors.Is(err, kms.ErrWrongMasterKey) {
			t.Errorf("%s: %v; want ErrWrongMasterKey", name, err)
		}
	}
}

// TestPrimary checks that Primary follows creation, rotation and
// shredding of a scope, and that a scope created again after a shred has
// a new ring.
func TestPrimary(t *testing.T) {
	ctx := context.Background()
	r, err := kms.Create(ctx, "", master(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "acme"}
	if _, err := r.Primary(sc); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("primary before create: %v", err)
	}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	first, err := r.Primary(sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, sc); err != nil {
		t.Fatal(err)
	}
	rotated, _ := r.Primary(sc)
	if rotated == first || rotated.Ring != first.Ring {
		t.Fatalf("after rotate: %v, was %v", rotated, first)
	}
	if err := r.Shred(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Primary(sc); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("primary after shred: %v", err)
	}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Primary(sc); again.Ring == first.Ring {
		t.Fatal("scope created again after a shred kept its ring")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = r.Primary(sc) }); n != 0 {
		t.Fatalf("Primary allocates %v times", n)
	}
}
