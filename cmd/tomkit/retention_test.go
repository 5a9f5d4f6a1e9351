package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
)

func TestRetentionPurge(t *testing.T) {
	dir := t.TempDir()
	b, err := fsstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Microsecond)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		m := retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(time.Hour)}
		if k == "c" {
			m.LegalHold = true
		}
		if err := b.Put(ctx, k, strings.NewReader(k), m); err != nil {
			t.Fatal(err)
		}
	}
	live := retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(10 * 24 * time.Hour)}
	if err := b.Put(ctx, "live", strings.NewReader("x"), live); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")

	type report struct {
		DryRun  bool     `json:"dry_run"`
		Deleted int      `json:"deleted"`
		Held    []string `json:"held"`
		Digest  string   `json:"digest_sha256"`
	}
	code, out, errOut := runCLI(t, "", "retention", "purge", "--dir", dir, "--dry-run", "--audit-log", logPath)
	var dry report
	if code != exitOK || json.Unmarshal([]byte(out), &dry) != nil || !dry.DryRun || dry.Deleted != 2 || len(dry.Held) != 1 {
		t.Fatalf("dry run: code %d, out %s, err %s", code, out, errOut)
	}
	if _, err := b.Stat(ctx, "a"); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	code, out, errOut = runCLI(t, "", "retention", "purge", "--dir", dir, "--batch", "1", "--audit-log", logPath)
	var rep report
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Deleted != 2 || rep.Digest != dry.Digest {
		t.Fatalf("purge: code %d, out %s, err %s", code, out, errOut)
	}
	for k, want := range map[string]bool{"a": false, "b": false, "c": true, "live": true} {
		_, err := b.Stat(ctx, k)
		if (err == nil) != want {
			t.Fatalf("%s present=%v after purge", k, err == nil)
		}
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var purges int
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		ev, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if ev.Action == "retention.purge" {
			purges++
		}
	}
	if purges != 2 {
		t.Fatalf("%d retention.purge events, want 2", purges)
	}
	// --max-age shortens retention: "live" is 48h old.
	code, out, _ = runCLI(t, "", "retention", "purge", "--dir", dir, "--max-age", "log=1d", "--audit-log", logPath)
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Deleted != 1 {
		t.Fatalf("max-age purge: code %d, out %s", code, out)
	}
}

func TestRetentionUsage(t *testing.T) {
	for _, args := range [][]string{
		{"retention"},
		{"retention", "frobnicate"},
		{"retention", "purge"},
		{"retention", "purge", "--dir", "x", "--postgres", "y"},
		{"retention", "purge", "--bogus"},
		{"retention", "purge", "--dir", "x", "--max-age", "log"},
		{"retention", "purge", "--dir", t.TempDir(), "--max-age", "backup=91d"},
	} {
		if code, _, _ := runCLI(t, "", args...); code != exitUsage {
			t.Fatalf("%v: code %d, want %d", args, code, exitUsage)
		}
	}
}
