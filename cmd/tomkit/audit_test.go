package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func auditFixture(t *testing.T) (dir, signerPath, verifierPath string) {
	t.Helper()
	keys := t.TempDir()
	prefix := filepath.Join(keys, "k")
	if code, _, errOut := runCLI(t, "", "audit", "keygen", "--name", "cli.example/log", "--out", prefix); code != exitOK {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	signerPath, verifierPath = prefix+".signer", prefix+".verifier"
	skey, err := os.ReadFile(signerPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	l, err := audit.Open(context.Background(), dir, audit.FileConfig{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"doc/1", "doc/2", "doc/3"} {
		if err := l.Log(context.Background(), audit.Event{Action: "doc.read", Resource: r, Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, signerPath, verifierPath
}

func TestAuditKeygen(t *testing.T) {
	_, signer, verifier := auditFixture(t)
	fi, err := os.Stat(signer)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signer key mode %v, %v", fi.Mode(), err)
	}
	v, _ := os.ReadFile(verifier)
	if !strings.HasPrefix(string(v), "cli.example/log+") {
		t.Fatalf("verifier key %q", v)
	}
	// Never overwrites a key.
	prefix := strings.TrimSuffix(signer, ".signer")
	if code, _, _ := runCLI(t, "", "audit", "keygen", "--out", prefix); code != exitFailure {
		t.Fatalf("keygen over existing key: code %d", code)
	}
}

func TestAuditVerify(t *testing.T) {
	dir, _, verifier := auditFixture(t)
	code, out, _ := runCLI(t, "", "audit", "verify", "--key", verifier, dir)
	if code != exitOK || !strings.Contains(out, "OK: 3 records") {
		t.Fatalf("intact: code %d, %q", code, out)
	}

	seg := filepath.Join(dir, "seg-00000000000000000000.log")
	b, _ := os.ReadFile(seg)
	i := strings.Index(string(b), "doc/2")
	b[i+4] = '9'
	os.WriteFile(seg, b, 0o600)
	code, out, _ = runCLI(t, "", "audit", "verify", "--key", verifier, dir)
	if code != exitFailure || !strings.Contains(out, "first bad record 1: modified") {
		t.Fatalf("tampered: code %d, %q", code, out)
	}

	other := filepath.Join(t.TempDir(), "o")
	runCLI(t, "", "audit", "keygen", "--name", "cli.example/log", "--out", other)
	if code, out, _ := runCLI(t, "", "audit", "verify", "--key", other+".verifier", dir); code != exitFailure || !strings.Contains(out, "verifier key") {
		t.Fatalf("wrong key: code %d, %q", code, out)
	}

	usage := [][]string{
		{"audit"},
		{"audit", "nope"},
		{"audit", "verify", dir},
		{"audit", "verify", "--key", verifier},
		{"audit", "verify", "--key", verifier, dir, "extra"},
		{"audit", "verify", "--bogus"},
		{"audit", "prove", dir},
		{"audit", "prove", dir, "minus-one"},
		{"audit", "check-proof", "x"},
		{"audit", "keygen", "extra"},
	}
	for _, args := range usage {
		if code, _, _ := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%v: code %d, want %d", args, code, exitUsage)
		}
	}
	// A missing key file is a runtime failure, not bad usage.
	missing := filepath.Join(dir, "missing")
	if code, _, errOut := runCLI(t, "", "audit", "verify", "--key", missing, dir); code != exitFailure || errOut != "tomkit audit verify: open "+missing+": no such file or directory\n" {
		t.Errorf("verify with a missing key file: code %d, stderr %q; want %d", code, errOut, exitFailure)
	}
}

// TestAuditVerifyUnsignedTail: damage to a record after the last
// checkpoint, followed by intact records, is tampering (exit 1), not
// crash residue; damage to the last record alone is residue (exit 0).
func TestAuditVerifyUnsignedTail(t *testing.T) {
	keys := t.TempDir()
	prefix := filepath.Join(keys, "k")
	if code, _, errOut := runCLI(t, "", "audit", "keygen", "--name", "cli.example/log", "--out", prefix); code != exitOK {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	skey, _ := os.ReadFile(prefix + ".signer")
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: s, Clock: testclock.New(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 10; i++ {
		if err := l.Log(ctx, audit.Event{Action: "doc.read", Resource: fmt.Sprintf("doc/%d", i), Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	// No checkpoint after the records and no Close: a crashed log. Verify
	// a copy, so that the writer's Close cannot sign the damage.
	crashed := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o600)
	}
	seg := filepath.Join(crashed, "seg-00000000000000000000.log")
	orig, _ := os.ReadFile(seg)
	code, out, _ := runCLI(t, "", "audit", "verify", "--key", prefix+".verifier", crashed)
	if code != exitOK || !strings.Contains(out, "OK: 10 records") || !strings.Contains(out, "10 records after the latest checkpoint") {
		t.Fatalf("intact: code %d, %q", code, out)
	}

	b := append([]byte(nil), orig...)
	b[strings.Index(string(b), "doc/3")+4] ^= 0x01
	os.WriteFile(seg, b, 0o600)
	code, out, _ = runCLI(t, "", "audit", "verify", "--key", prefix+".verifier", crashed)
	if code != exitFailure || !strings.Contains(out, "first bad record 3: modified") || strings.Contains(out, "residue") {
		t.Fatalf("damaged unsigned record: code %d, %q", code, out)
	}

	b = append([]byte(nil), orig...)
	b[strings.Index(string(b), "doc/9")+4] ^= 0x01
	os.WriteFile(seg, b, 0o600)
	code, out, _ = runCLI(t, "", "audit", "verify", "--key", prefix+".verifier", crashed)
	if code != exitOK || !strings.Contains(out, "OK: 9 records") || !strings.Contains(out, "crash residue") {
		t.Fatalf("damaged last record: code %d, %q", code, out)
	}
}

func TestAuditProveAndCheck(t *testing.T) {
	dir, _, verifier := auditFixture(t)
	code, proof, errOut := runCLI(t, "", "audit", "prove", dir, "2")
	if code != exitOK {
		t.Fatalf("prove: %d %s", code, errOut)
	}
	// check-proof needs only the proof and the key: remove the log.
	os.RemoveAll(dir)
	code, out, _ := runCLI(t, proof, "audit", "check-proof", "--key", verifier, "-")
	if code != exitOK || !strings.Contains(out, "OK: record 2") {
		t.Fatalf("check-proof: %d %q", code, out)
	}
	forged := strings.Replace(proof, `doc/3`, `doc/4`, 1)
	if code, out, _ := runCLI(t, forged, "audit", "check-proof", "--key", verifier, "-"); code != exitFailure {
		t.Fatalf("forged proof: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "{", "audit", "check-proof", "--key", verifier, "-"); code != exitFailure {
		t.Fatalf("malformed proof: %d", code)
	}
	if code, _, _ := runCLI(t, "", "audit", "prove", dir, "0"); code != exitFailure {
		t.Fatalf("prove on missing log: %d", code)
	}
}

func TestAuditVerifyPostgres(t *testing.T) {
	dsn := testpg.Schema(t)
	_, signer, verifier := auditFixture(t)
	appendEvents(t, dsn, signer, 5)
	code, out, _ := runCLI(t, "", "audit", "verify", "--key", verifier, dsn)
	if code != exitOK || !strings.Contains(out, "OK: 5 records") {
		t.Fatalf("verify postgres: %d %q", code, out)
	}
	code, proof, _ := runCLI(t, "", "audit", "prove", dsn, "4")
	if code != exitOK {
		t.Fatalf("prove postgres: %d", code)
	}
	if code, out, _ := runCLI(t, proof, "audit", "check-proof", "--key", verifier, "-"); code != exitOK {
		t.Fatalf("check-proof: %d %q", code, out)
	}
}

// TestAuditVerifyPostgresRotation: verify follows a signed key rotation,
// with the first key or the new one.
func TestAuditVerifyPostgresRotation(t *testing.T) {
	dsn := testpg.Schema(t)
	_, signer, verifier := auditFixture(t)
	skey, _ := os.ReadFile(signer)
	s, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	nskey, nvkey, err := audit.GenerateKey("cli.example/log")
	if err != nil {
		t.Fatal(err)
	}
	next, err := audit.NewSigner(nskey)
	if err != nil {
		t.Fatal(err)
	}
	nverifier := filepath.Join(t.TempDir(), "next.verifier")
	if err := os.WriteFile(nverifier, []byte(nvkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := pglog.Open(ctx, pool, pglog.Config{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if i == 3 {
			if err := l.Rotate(ctx, next); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Log(ctx, audit.Event{Action: "doc.read", Outcome: audit.OutcomeAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{verifier, nverifier} {
		code, out, _ := runCLI(t, "", "audit", "verify", "--key", key, dsn)
		if code != exitOK || !strings.Contains(out, "OK: 6 records") {
			t.Fatalf("verify with %s across a rotation: %d %q", key, code, out)
		}
	}
}

// TestAuditVerifyKeyText: --key takes the verifier key's text as well as
// a file, and refuses the signer key, as text or file, as bad usage that
// names the mistake.
func TestAuditVerifyKeyText(t *testing.T) {
	dir, signer, verifier := auditFixture(t)
	vkey, err := os.ReadFile(verifier)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSpace(string(vkey))
	code, out, errOut := runCLI(t, "", "audit", "verify", "--key", text, dir)
	if code != exitOK || !strings.Contains(out, "OK: 3 records") {
		t.Fatalf("key text: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, proof, errOut := runCLI(t, "", "audit", "prove", dir, "1")
	if code != exitOK {
		t.Fatalf("prove: %d %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, proof, "audit", "check-proof", "--key", text, "-"); code != exitOK || !strings.HasPrefix(out, "OK: record 1") {
		t.Fatalf("check-proof with key text: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "audit", "verify", "--key", "cli.example/log+00000000+bm90IGEga2V5", dir); code != exitUsage || !strings.Contains(errOut, "malformed") {
		t.Fatalf("malformed key text: code %d, stderr %q", code, errOut)
	}

	skey, err := os.ReadFile(signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range [][]string{{"verify"}, {"check-proof"}} {
		for _, key := range []string{signer, strings.TrimSpace(string(skey))} {
			args := append(append([]string{"audit"}, sub...), "--key", key, dir)
			code, out, errOut := runCLI(t, "", args...)
			want := "tomkit audit " + sub[0] + ": this is a signer key; pass the .pub verifier key"
			if code != exitUsage || out != "" || !strings.HasPrefix(errOut, want) {
				t.Errorf("%s --key <signer>: code %d, stdout %q, stderr %q; want %d and %q", sub[0], code, out, errOut, exitUsage, want)
			}
			if strings.Contains(errOut, strings.TrimSpace(string(skey))) {
				t.Errorf("%s --key <signer>: the error repeats the secret key", sub[0])
			}
		}
	}
}

// FuzzReadVerifier: whatever --key says, a signer key is refused, key
// text comes back as given, and anything else is a file that cannot be
// opened (the fuzzer runs in an empty directory, so no name but . and ..
// exists).
func FuzzReadVerifier(f *testing.F) {
	skey, vkey, err := audit.GenerateKey("fuzz.example/log")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{skey, vkey, " " + skey + "\n", "a+b", "a+b+c", "PRIVATE+KEY", "missing.pub", ""} {
		f.Add(s)
	}
	f.Chdir(f.TempDir())
	f.Fuzz(func(t *testing.T, arg string) {
		if strings.ContainsAny(arg, "/\\\x00") || arg == "." || arg == ".." {
			t.Skip("names outside the empty directory")
		}
		got, err := readVerifier(arg)
		var pe *fs.PathError
		switch {
		case strings.HasPrefix(strings.TrimSpace(arg), "PRIVATE+KEY+"):
			if err != errSignerKey {
				t.Fatalf("signer key %q: %q, %v; want errSignerKey", arg, got, err)
			}
		case err == nil:
			if got != arg || strings.Count(arg, "+") < 2 {
				t.Fatalf("%q read as key text %q", arg, got)
			}
		case !errors.As(err, &pe) || inputCode(err) != exitFailure:
			t.Fatalf("%q: %v; want a path error (exit 1)", arg, err)
		}
	})
}
