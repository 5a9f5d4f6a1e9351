package kms_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

const crashEnv = "TOMKIT_KMS_CRASH_CHILD"

// TestCrashDuringWrites SIGKILLs a child process that rotates keys and
// creates scopes in a loop: whenever it dies, the keyring file loads,
// with every scope it lists intact.
func TestCrashDuringWrites(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	master := kms.GenerateMasterKey()
	for round := 0; round < 3; round++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringWrites$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, kms.MasterKeyEnv+"="+master)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "keyring.json")
		deadline := time.Now().Add(10 * time.Second)
		for { // wait until the child has written a few times
			if b, err := os.ReadFile(path + ".progress"); err == nil && len(b) >= 5 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("child made no progress")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(round*7) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		m, err := kms.ParseMasterKey(master)
		if err != nil {
			t.Fatal(err)
		}
		r, err := kms.Open(context.Background(), path, kms.Config{Master: m, Logger: nopLogger{}})
		if err != nil {
			t.Fatalf("round %d: keyring does not load after SIGKILL: %v", round, err)
		}
		if stale, _ := filepath.Glob(filepath.Join(dir, ".keyring.json.tmp-*")); len(stale) != 0 {
			t.Fatalf("round %d: stale temporary files after open: %v", round, stale)
		}
		scopes := r.List()
		if len(scopes) == 0 {
			t.Fatalf("round %d: no scopes", round)
		}
		for _, s := range scopes {
			for i, k := range s.Keys {
				if k.Version != uint32(i+1) {
					t.Fatalf("round %d: scope %v has versions %+v", round, s.Scope, s.Keys)
				}
			}
		}
	}
}

func crashChild(dir string) {
	ctx := context.Background()
	m, err := kms.MasterKeyFromEnv()
	if err != nil {
		os.Exit(3)
	}
	path := filepath.Join(dir, "keyring.json")
	r, err := kms.Create(ctx, path, kms.Config{Master: m, Logger: nopLogger{}})
	if err != nil {
		os.Exit(4)
	}
	progress, _ := os.Create(path + ".progress")
	for i := 0; ; i++ {
		sc := audit.Actor{Tenant: "t", Subject: string(rune('a' + i%20))}
		if err := r.Create(ctx, sc); err != nil {
			os.Exit(5)
		}
		if _, err := r.Rotate(ctx, sc); err != nil {
			os.Exit(6)
		}
		progress.Write([]byte{'.'})
	}
}
