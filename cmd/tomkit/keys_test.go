package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/crypto/kms"
)

// keysEnv sets a fresh master key and returns a keyring path.
func keysEnv(t *testing.T) string {
	t.Setenv(kms.MasterKeyEnv, kms.GenerateMasterKey())
	return filepath.Join(t.TempDir(), "keyring.json")
}

func TestKeysLifecycle(t *testing.T) {
	ks := keysEnv(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"keys", "init", "--keyset", ks, "--audit-log", log}, exitOK, "created"},
		{[]string{"keys", "init", "--keyset", ks, "--audit-log", log}, exitFailure, ""},
		{[]string{"keys", "create", "--keyset", ks, "--tenant", "acme", "--subject", "s1", "--audit-log", log}, exitOK, "has a key"},
		{[]string{"keys", "rotate", "--keyset", ks, "--audit-log", log}, exitOK, "version 2"},
		{[]string{"keys", "retire", "--keyset", ks, "--min-version", "2", "--audit-log", log}, exitOK, "minimum decryption version 2"},
		{[]string{"keys", "retire", "--keyset", ks, "--min-version", "3", "--audit-log", log}, exitFailure, ""},
		{[]string{"keys", "list", "--keyset", ks, "--audit-log", log}, exitOK, "retired"},
		{[]string{"keys", "shred", "--keyset", ks, "--audit-log", log}, exitUsage, ""},
		{[]string{"keys", "shred", "--keyset", ks, "--tenant", "acme", "--subject", "s1", "--audit-log", log}, exitOK, "destroyed"},
		{[]string{"keys", "list", "--keyset", ks, "--audit-log", log}, exitOK, "shredded"},
		{[]string{"keys", "rotate", "--keyset", ks, "--tenant", "nobody", "--audit-log", log}, exitFailure, ""},
		{[]string{"keys", "list"}, exitUsage, ""},
		{[]string{"keys", "frobnicate"}, exitUsage, ""},
		{[]string{"keys"}, exitUsage, ""},
	}
	for _, s := range steps {
		code, out, errOut := runCLI(t, "", s.args...)
		if code != s.code || !strings.Contains(out, s.out) {
			t.Fatalf("%v: code %d, out %q, stderr %q", s.args, code, out, errOut)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"crypto.keyring_create", "crypto.key_create", "crypto.key_rotate", "crypto.key_min_version", "crypto.key_shred", "crypto.keyring_open"} {
		if !bytes.Contains(b, []byte(`"`+action+`"`)) {
			t.Errorf("audit log lacks %s", action)
		}
	}
	if bytes.Contains(b, []byte(`"s1"`)) {
		t.Error("audit log holds the subject in the clear")
	}
}

func TestKeysMasterKeyFile(t *testing.T) {
	t.Setenv(kms.MasterKeyEnv, "")
	dir := t.TempDir()
	ks, mk := filepath.Join(dir, "k.json"), filepath.Join(dir, "master.key")
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitFailure || !strings.Contains(errOut, "TOMKIT_MASTER_KEY") {
		t.Fatalf("no master key: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks, "--master-key-file", mk); code != exitOK {
		t.Fatalf("init: %d %q", code, errOut)
	}
	if fi, _ := os.Stat(mk); fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key mode %#o", fi.Mode().Perm())
	}
	if code, _, errOut := runCLI(t, "", "keys", "list", "--keyset", ks, "--master-key-file", mk); code != exitOK {
		t.Fatalf("list: %d %q", code, errOut)
	}
	os.Chmod(mk, 0o644)
	if code, _, errOut := runCLI(t, "", "keys", "list", "--keyset", ks, "--master-key-file", mk); code != exitFailure || !strings.Contains(errOut, "permissions") {
		t.Fatalf("loose master key file: %d %q", code, errOut)
	}
	os.Chmod(mk, 0o600)
	os.Chmod(ks, 0o644)
	if code, _, errOut := runCLI(t, "", "keys", "list", "--keyset", ks, "--master-key-file", mk); code != exitFailure || !strings.Contains(errOut, "permissions") {
		t.Fatalf("loose keyset file: %d %q", code, errOut)
	}
	os.Chmod(ks, 0o600)
	t.Setenv(kms.MasterKeyEnv, kms.GenerateMasterKey())
	if code, _, errOut := runCLI(t, "", "keys", "list", "--keyset", ks); code != exitFailure || !strings.Contains(errOut, "wrong master key") {
		t.Fatalf("wrong master key: %d %q", code, errOut)
	}
}

func runCLIBytes(t *testing.T, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), env{bytes.NewReader(stdin), &out, &errb}, args)
	return code, out.Bytes(), errb.String()
}
