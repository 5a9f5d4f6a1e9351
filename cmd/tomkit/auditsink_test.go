package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// signerFile writes a fresh checkpoint signer key (mode 0600) and returns
// its path and the matching verifier.
func signerFile(t *testing.T) (string, note.Verifier) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey("cli.example/keys")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.signer")
	if err := os.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return path, v
}

// loggedEvents returns the events of a verified log, in order, read back
// through inclusion proofs. It fails t unless the latest checkpoint signs
// every record, that is unless the CLI closed the log.
func loggedEvents(t *testing.T, rep audit.Report, prove func(int64) (*audit.InclusionProof, error)) []audit.Event {
	t.Helper()
	if rep.Size == 0 || rep.Checkpoint.Size != rep.Size {
		t.Fatalf("checkpoint signs %d of %d records: the log was not closed", rep.Checkpoint.Size, rep.Size)
	}
	var evs []audit.Event
	for i := int64(0); i < rep.Size; i++ {
		p, err := prove(i)
		if err != nil {
			t.Fatalf("prove %d: %v", i, err)
		}
		ev, err := audit.Unmarshal([]byte(p.Record))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func fileLogEvents(t *testing.T, dir string, v note.Verifier) []audit.Event {
	t.Helper()
	ctx := context.Background()
	rep, err := audit.Verify(ctx, dir, v)
	if err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	return loggedEvents(t, rep, func(i int64) (*audit.InclusionProof, error) { return audit.Prove(ctx, dir, i) })
}

func actions(evs []audit.Event) []string {
	var as []string
	for _, ev := range evs {
		as = append(as, ev.Action)
	}
	return as
}

func attr(ev audit.Event, key string) (string, bool) {
	for _, a := range ev.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// keysAuditRun runs init, create, rotate and shred against log and
// returns the actions they must have logged, in order.
func keysAuditRun(t *testing.T, log, signer string) []string {
	t.Helper()
	ks := keysEnv(t)
	a := []string{"--keyset", ks, "--audit-log", log, "--audit-signer", signer}
	for _, args := range [][]string{
		{"keys", "init"},
		{"keys", "create", "--tenant", "acme", "--subject", "s1"},
		{"keys", "rotate"},
		{"keys", "shred", "--tenant", "acme", "--subject", "s1"},
	} {
		if code, out, errOut := runCLI(t, "", append(args, a...)...); code != exitOK {
			t.Fatalf("%v: code %d, out %q, stderr %q", args, code, out, errOut)
		}
	}
	return []string{
		"crypto.keyring_create", "crypto.key_create",
		"crypto.keyring_open", "crypto.key_create",
		"crypto.keyring_open", "crypto.key_rotate",
		"crypto.keyring_open", "crypto.key_shred",
	}
}

// checkKeyEvents checks the logged actions and that the subject, a
// personal attribute, was redacted.
func checkKeyEvents(t *testing.T, evs []audit.Event, want []string) {
	t.Helper()
	if got := actions(evs); !slices.Equal(got, want) {
		t.Fatalf("logged actions\n%q\nwant\n%q", got, want)
	}
	shred := evs[len(evs)-1]
	if v, ok := attr(shred, "scope_subject"); !ok || v != audit.Redacted {
		t.Fatalf("shred event scope_subject = %q, %v; want %q", v, ok, audit.Redacted)
	}
	if v, _ := attr(shred, "scope_tenant"); v != "acme" {
		t.Fatalf("shred event scope_tenant = %q", v)
	}
}

func TestKeysAuditFileLog(t *testing.T) {
	signer, v := signerFile(t)
	dir := t.TempDir()
	want := keysAuditRun(t, dir, signer)
	checkKeyEvents(t, fileLogEvents(t, dir, v), want)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(`"s1"`)) {
			t.Errorf("%s holds the subject in the clear", f)
		}
	}
}

func TestKeysAuditPostgres(t *testing.T) {
	dsn := testpg.Schema(t)
	signer, v := signerFile(t)
	want := keysAuditRun(t, dsn, signer)
	ctx := context.Background()
	rep, err := verifyPostgres(ctx, dsn, v)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	checkKeyEvents(t, loggedEvents(t, rep, func(i int64) (*audit.InclusionProof, error) { return provePostgres(ctx, dsn, i) }), want)
}

// TestCryptAuditFileLog: encrypt and decrypt share the keys flags, so
// they audit into a tamper-evident log too.
func TestCryptAuditFileLog(t *testing.T) {
	signer, v := signerFile(t)
	dir := t.TempDir()
	ks := keysEnv(t)
	a := []string{"--keyset", ks, "--audit-log", dir, "--audit-signer", signer}
	if code, _, errOut := runCLI(t, "", append([]string{"keys", "init"}, a...)...); code != exitOK {
		t.Fatalf("init: %d %q", code, errOut)
	}
	code, ct, errOut := runCLIBytes(t, []byte("hello"), append([]string{"encrypt"}, a...)...)
	if code != exitOK {
		t.Fatalf("encrypt: %d %q", code, errOut)
	}
	code, pt, errOut := runCLIBytes(t, ct, append([]string{"decrypt"}, a...)...)
	if code != exitOK || string(pt) != "hello" {
		t.Fatalf("decrypt: %d %q %q", code, pt, errOut)
	}
	got := actions(fileLogEvents(t, dir, v))
	if want := []string{"crypto.keyring_create", "crypto.key_create", "crypto.keyring_open"}; len(got) < 4 || !slices.Equal(got[:3], want) || got[len(got)-1] == "crypto.keyring_create" {
		t.Fatalf("logged actions %q", got)
	}
	if n := strings.Count(strings.Join(got, " "), "crypto.keyring_open"); n != 2 {
		t.Fatalf("%d keyring_open events, want 2 (encrypt, decrypt): %q", n, got)
	}
}

func TestRetentionPurgeAuditFileLog(t *testing.T) {
	store := t.TempDir()
	fb, err := fsstore.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	b := acmePart(t, fb)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Microsecond)
	for k, until := range map[string]time.Duration{"gone": time.Hour, "kept": 100 * time.Hour} {
		if err := b.Put(ctx, k, strings.NewReader(k), retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(until), Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	signer, v := signerFile(t)
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "retention", "purge", "--dir", store, "--audit-log", dir, "--audit-signer", signer)
	if code != exitOK || !strings.Contains(out, `"deleted": 1`) {
		t.Fatalf("purge: code %d, out %s, stderr %s", code, out, errOut)
	}
	var purge *audit.Event
	for _, ev := range fileLogEvents(t, dir, v) {
		if ev.Action == "retention.purge" {
			purge = &ev
		}
	}
	if purge == nil {
		t.Fatal("no retention.purge event in the log")
	}
	if d, _ := attr(*purge, "deleted"); d != "1" {
		t.Fatalf("retention.purge event %+v", *purge)
	}
}

func TestAuditSinkRefusals(t *testing.T) {
	signer, _ := signerFile(t)
	dir := t.TempDir()
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitOK {
		t.Fatalf("init: %d %q", code, errOut)
	}
	ring, _ := os.ReadFile(ks)
	unchanged := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(ks); !bytes.Equal(b, ring) {
			t.Fatalf("%s: the keyring changed", what)
		}
	}

	// Usage: a tamper-evident log without its signer, a signer without one.
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"keys", "rotate", "--keyset", ks, "--audit-log", dir}, "--audit-signer"},
		{[]string{"keys", "rotate", "--keyset", ks, "--audit-log", "postgres://nobody@127.0.0.1:1/x"}, "--audit-signer"},
		{[]string{"keys", "rotate", "--keyset", ks, "--audit-log", missing, "--audit-signer", signer}, "not a directory"},
		{[]string{"keys", "rotate", "--keyset", ks, "--audit-signer", signer}, "--audit-log"},
		{[]string{"retention", "purge", "--dir", t.TempDir(), "--audit-log", dir}, "--audit-signer"},
		{[]string{"retention", "purge", "--dir", t.TempDir(), "--audit-log", "postgresql://nobody@127.0.0.1:1/x"}, "--audit-signer"},
	} {
		code, _, errOut := runCLI(t, "", c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", c.args, code, errOut, exitUsage, c.msg)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a refused --audit-log path was created")
	}
	unchanged("usage errors")
	// encrypt and decrypt share the flags; they refuse as usage errors
	// too, and write nothing.
	for _, cmd := range []string{"encrypt", "decrypt"} {
		if code, out, errOut := runCLI(t, "x", cmd, "--keyset", ks, "--audit-log", dir); code != exitUsage || out != "" || !strings.Contains(errOut, "--audit-signer") {
			t.Fatalf("%s without --audit-signer: code %d, out %q, stderr %q", cmd, code, out, errOut)
		}
	}

	// A signer key file that others may read.
	loose := filepath.Join(t.TempDir(), "loose.signer")
	sk, _ := os.ReadFile(signer)
	if err := os.WriteFile(loose, sk, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o644) // whatever the umask
	for _, args := range [][]string{
		{"keys", "rotate", "--keyset", ks, "--audit-log", dir, "--audit-signer", loose},
		{"retention", "purge", "--dir", t.TempDir(), "--audit-log", dir, "--audit-signer", loose},
	} {
		code, _, errOut := runCLI(t, "", args...)
		if code != exitFailure || !strings.Contains(errOut, "permissions looser than 0600") || !strings.Contains(errOut, "0644") {
			t.Errorf("%v: code %d, stderr %q", args, code, errOut)
		}
	}
	unchanged("loose signer")

	// A log directory held by another writer (a running service).
	s, err := audit.NewSigner(string(sk))
	if err != nil {
		t.Fatal(err)
	}
	held, err := audit.Open(context.Background(), dir, audit.FileConfig{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	master := filepath.Join(t.TempDir(), "master.key")
	for _, args := range [][]string{
		{"keys", "rotate", "--keyset", ks, "--audit-log", dir, "--audit-signer", signer},
		{"keys", "shred", "--keyset", ks, "--tenant", "default", "--audit-log", dir, "--audit-signer", signer},
		{"keys", "init", "--keyset", filepath.Join(t.TempDir(), "new.json"), "--master-key-file", master, "--audit-log", dir, "--audit-signer", signer},
		{"retention", "purge", "--dir", t.TempDir(), "--audit-log", dir, "--audit-signer", signer},
	} {
		code, out, errOut := runCLI(t, "", args...)
		if code != exitFailure || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "PostgreSQL") || !strings.Contains(errOut, "stop it") || out != "" {
			t.Errorf("%v: code %d, out %q, stderr %q", args, code, out, errOut)
		}
	}
	unchanged("locked log")
	if _, err := os.Stat(master); err == nil {
		t.Error("keys init wrote a master key although its audit log was locked")
	}
}

// TestKeysShredAuditFailClosed: a shred whose audit log cannot be written
// does not happen and does not report success.
func TestKeysShredAuditFailClosed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks, "--tenant", "acme"); code != exitOK {
		t.Fatalf("init: %d %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "keys", "shred", "--keyset", ks, "--tenant", "acme", "--audit-log", "/dev/full")
	if code != exitFailure || strings.Contains(out, "destroyed") || !strings.Contains(errOut, "audit") {
		t.Fatalf("shred into a full audit log: code %d, out %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "", "keys", "list", "--keyset", ks); code != exitOK || strings.Contains(out, "shredded") || !strings.Contains(out, "acme") {
		t.Fatalf("after the refused shred: code %d, list %q", code, out)
	}
}
