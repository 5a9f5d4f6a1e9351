package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/pgstore"
)

// acmePart returns tenant acme's partition of b; acmeMeta is a record of
// that tenant.
func acmePart(t *testing.T, b retention.Backend) retention.Partition {
	t.Helper()
	p, err := b.Partition("acme")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRetentionPurge(t *testing.T) {
	dir := t.TempDir()
	fb, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b := acmePart(t, fb)
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Microsecond)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		m := retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(time.Hour), Tenant: "acme"}
		if k == "c" {
			m.LegalHold = true
		}
		if err := b.Put(ctx, k, strings.NewReader(k), m); err != nil {
			t.Fatal(err)
		}
	}
	live := retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(10 * 24 * time.Hour), Tenant: "acme"}
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

func TestRetentionPurgePostgres(t *testing.T) {
	dsn := testpg.Schema(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pb, err := pgstore.Open(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	b := acmePart(t, pb)
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Microsecond)
	for i, until := range []time.Duration{time.Hour, time.Hour, 100 * time.Hour} {
		m := retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(until), Tenant: "acme"}
		if err := b.Put(ctx, fmt.Sprintf("k%d", i), strings.NewReader("x"), m); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI(t, "", "retention", "purge", "--postgres", dsn)
	if code != exitOK || !strings.Contains(out, `"deleted": 2`) {
		t.Fatalf("code %d, out %s, err %s", code, out, errOut)
	}
	if _, err := b.Stat(ctx, "k2"); err != nil {
		t.Fatalf("live row lost: %v", err)
	}
	if code, _, _ := runCLI(t, "", "retention", "purge", "--postgres", "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"); code != exitFailure {
		t.Fatalf("unreachable database: code %d", code)
	}
}

func TestRetentionMigrate(t *testing.T) {
	dir := t.TempDir()
	fb, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	// Written before tenant partitioning: one object of acme, one without
	// a tenant.
	for k, tenant := range map[string]string{"doc": "acme", "stray": ""} {
		m := retention.Meta{Class: retention.ClassLog, Created: now, RetainUntil: now.Add(time.Hour), Tenant: tenant}
		if err := fb.Unpartitioned().Put(ctx, k, strings.NewReader(k), m); err != nil {
			t.Fatal(err)
		}
	}
	type report struct {
		Moved   int      `json:"moved"`
		Adopted int      `json:"adopted"`
		Orphans []string `json:"orphans"`
	}
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	code, out, errOut := runCLI(t, "", "retention", "migrate", "--dir", dir, "--audit-log", logPath)
	var rep report
	if code != exitFailure || json.Unmarshal([]byte(out), &rep) != nil || rep.Moved != 1 || len(rep.Orphans) != 1 ||
		!strings.Contains(errOut, "orphan") {
		t.Fatalf("migrate with an orphan: code %d, out %s, err %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "retention", "migrate", "--dir", dir, "--orphans", "quarantine", "--audit-log", logPath)
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Adopted != 1 {
		t.Fatalf("migrate adopting: code %d, out %s, err %s", code, out, errOut)
	}
	if _, err := acmePart(t, fb).Stat(ctx, "doc"); err != nil {
		t.Fatalf("doc not in acme's partition: %v", err)
	}
	if es, err := fb.Unpartitioned().List(ctx, "", 10); err != nil || len(es) != 0 {
		t.Fatalf("left unpartitioned: %v %v", es, err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil || !bytes.Contains(raw, []byte(`"retention.migrate"`)) || !bytes.Contains(raw, []byte(`"cross_tenant"`)) {
		t.Fatalf("migration not audited: %v", err)
	}
}

// treeState lists every path under dir with its size and modification
// time, to show that a command changed nothing on disk.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %v %v\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRetentionPurgeMissingStore checks that a mistyped --dir is an error
// (exit 1, nothing created), with or without --dry-run, and that a dry run
// on a real store changes nothing on disk, not even crash leftovers.
func TestRetentionPurgeMissingStore(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "nonexistent")
	notStore := t.TempDir()
	for _, args := range [][]string{
		{"--dir", missing, "--dry-run"},
		{"--dir", missing},
		{"--dir", notStore, "--dry-run"},
		{"--dir", notStore},
	} {
		code, out, errOut := runCLI(t, "", append([]string{"retention", "purge"}, args...)...)
		// A missing directory gets the CLI's one missing-input message; a
		// directory that is not a store says so.
		if code != exitFailure || !(strings.Contains(errOut, "not a store") || strings.Contains(errOut, "no such file or directory")) || strings.Contains(out, "expired") {
			t.Errorf("purge %q: code %d, out %q, err %q; want exit 1 naming the missing store", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("purge created %s: %v", missing, err)
	}
	if ents, _ := os.ReadDir(notStore); len(ents) != 0 {
		t.Fatalf("purge wrote into a directory that is not a store: %v", ents)
	}

	dir := t.TempDir()
	b, err := fsstore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour).UTC()
	if err := acmePart(t, b).Put(context.Background(), "a", strings.NewReader("a"), retention.Meta{Class: retention.ClassLog, Created: old, RetainUntil: old.Add(time.Hour), Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	// A leftover of a crashed write, which Open's recovery would remove.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-leftover"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, dir)
	code, out, errOut := runCLI(t, "", "retention", "purge", "--dir", dir, "--dry-run")
	if code != exitOK || !strings.Contains(out, `"expired": 1`) {
		t.Fatalf("dry run: code %d, out %s, err %s", code, out, errOut)
	}
	if after := treeState(t, dir); after != before {
		t.Fatalf("dry run changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRetentionPurgePostgresMissingStore checks that a database without
// the store's table is an error, and that neither a purge nor a dry run
// creates the table there.
func TestRetentionPurgePostgresMissingStore(t *testing.T) {
	dsn := testpg.Schema(t)
	for _, args := range [][]string{{"--dry-run"}, {}} {
		code, out, errOut := runCLI(t, "", append([]string{"retention", "purge", "--postgres", dsn}, args...)...)
		// A missing directory gets the CLI's one missing-input message; a
		// directory that is not a store says so.
		if code != exitFailure || !(strings.Contains(errOut, "not a store") || strings.Contains(errOut, "no such file or directory")) || strings.Contains(out, "expired") {
			t.Errorf("purge %q: code %d, out %q, err %q; want exit 1 naming the missing store", args, code, out, errOut)
		}
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var table *string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(to_regclass('retention_tenant_objects')::text, to_regclass('retention_objects')::text)`).Scan(&table); err != nil || table != nil {
		t.Fatalf("purge created the table: %v %v", table, err)
	}
}
