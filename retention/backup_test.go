package retention_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/retention/fsstore"
)

func memBackend(t *testing.T) retention.Backend {
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { b.Close() })
	return openBlob(t, b)
}

// openBlob returns the backend over bk, failing tb if it cannot.
func openBlob(tb testing.TB, bk *blob.Bucket) *blobstore.Store {
	tb.Helper()
	s, err := blobstore.Open(context.Background(), bk)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// backupPart returns the partition of a backup target that keeps the
// snapshots.
func backupPart(t *testing.T, target *retention.Store) retention.Partition {
	t.Helper()
	p, err := target.Backend().Partition("_backups")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type backupFixture struct {
	src, dst *retention.Store
	bk       *retention.Backups
	clk      *clock
	rec      *audit.Recorder
}

func newBackupFixture(t *testing.T, srcCfg retention.Config, keep time.Duration) backupFixture {
	t.Helper()
	f := backupFixture{clk: newClock(), rec: &audit.Recorder{}}
	srcCfg.Logger, srcCfg.Clock = f.rec, audit.ClockFunc(f.clk.Now)
	var err error
	if f.src, err = retention.New(memBackend(t), srcCfg); err != nil {
		t.Fatal(err)
	}
	pol := retention.DefaultPolicy()
	pol.MaxAge[retention.ClassBackup] = retention.MaxBackupAge
	if f.dst, err = retention.New(memBackend(t), retention.Config{Logger: f.rec, Clock: audit.ClockFunc(f.clk.Now), Policy: pol}); err != nil {
		t.Fatal(err)
	}
	if f.bk, err = retention.NewBackups(retention.BackupConfig{Target: f.dst, Keep: keep, Envelope: testEnvelope(t, f.rec)}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBackupRotation120Days(t *testing.T) {
	for _, keep := range []time.Duration{0, 90 * day} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			f := newBackupFixture(t, retention.Config{}, keep)
			want := 30
			if keep != 0 {
				want = 90
			}
			if _, err := f.src.Put(userCtx, "doc", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
				t.Fatal(err)
			}
			start := f.clk.Now()
			for d := 0; d < 120; d++ {
				if _, err := f.bk.Snapshot(opCtx, f.src); err != nil {
					t.Fatalf("day %d: %v", d, err)
				}
				if _, err := f.bk.Rotate(opCtx); err != nil {
					t.Fatalf("day %d: %v", d, err)
				}
				f.clk.Advance(day)
			}
			f.clk.Advance(-day) // back to the last snapshot's day
			list, err := f.bk.List(opCtx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != want {
				t.Fatalf("%d snapshots kept, want exactly %d", len(list), want)
			}
			if first := start.Add(time.Duration(120-want) * day); !list[0].Created.Equal(first) || !list[len(list)-1].Created.Equal(start.Add(119*day)) {
				t.Fatalf("window %v .. %v", list[0].Created, list[len(list)-1].Created)
			}
			// Nothing older lingers in the target's backend either.
			all, err := backupPart(t, f.dst).List(context.Background(), "", 1000)
			if err != nil || len(all) != want {
				t.Fatalf("backend holds %d snapshots (%v)", len(all), err)
			}
		})
	}
	if _, err := retention.NewBackups(retention.BackupConfig{Target: newBackupFixture(t, retention.Config{}, 0).dst, Keep: 91 * day, InsecurePlaintextBackups: true}); !errors.Is(err, retention.ErrRetentionTooLong) {
		t.Fatalf("keep above 90 days = %v", err)
	}
	f := newFixture(t, nil) // default policy: backups 30 days
	if _, err := retention.NewBackups(retention.BackupConfig{Target: f.s, Keep: 60 * day, InsecurePlaintextBackups: true}); !errors.Is(err, retention.ErrRetentionTooLong) {
		t.Fatalf("keep above the target's backup class = %v", err)
	}
	if _, err := retention.NewBackups(retention.BackupConfig{Target: f.s}); !errors.Is(err, retention.ErrNoEncryption) {
		t.Fatalf("backups without encryption = %v", err)
	}
}

func TestSnapshotRestoreVerify(t *testing.T) {
	f := newBackupFixture(t, retention.Config{}, 0)
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789"), 200000)
	objs := map[string][]byte{"a": []byte("alpha"), "big": big, "empty": nil}
	for k, v := range objs {
		if _, err := f.src.Put(userCtx, k, bytes.NewReader(v), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.src.Put(userCtx, "content", strings.NewReader("c"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.Put(userCtx, "old", strings.NewReader("o"), retention.PutOptions{Class: retention.ClassLog, RetainFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Hour) // "old" is expired and must not be backed up
	info, err := f.bk.Snapshot(opCtx, f.src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Objects != 4 || info.Skipped != 1 {
		t.Fatalf("snapshot %+v", info)
	}
	rc, _, err := backupPart(t, f.dst).Get(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	if bytes.Contains(stored, []byte("TKSNAP")) || bytes.Contains(stored, []byte("alpha")) || bytes.Contains(stored, []byte("0123456789")) {
		t.Fatal("snapshot stored in the clear")
	}
	scratch := memBackend(t)
	rep, err := f.bk.RestoreVerify(opCtx, info.ID, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects != 4 || rep.Digest != info.Digest || rep.Bytes != int64(len(big)+6) {
		t.Fatalf("verify %+v, snapshot %+v", rep, info)
	}
	for k, v := range objs {
		rc, m, err := acme(t, scratch).Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, v) || m.Class != retention.ClassMetadata || m.Subject != "alice" {
			t.Fatalf("restored %s: %d bytes, meta %+v", k, len(got), m)
		}
	}
	for _, a := range []string{"retention.backup.snapshot", "retention.backup.verify"} {
		found := false
		for _, e := range f.rec.Events() {
			if e.Action == a && e.Outcome == audit.OutcomeAllow {
				found = true
			}
		}
		if !found {
			t.Fatalf("no %s event", a)
		}
	}
}

func TestRestoreVerifyDetectsCorruption(t *testing.T) {
	f := newBackupFixture(t, retention.Config{}, 0)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := f.src.Put(userCtx, fmt.Sprintf("k%d", i), strings.NewReader(strings.Repeat("data", 100)), retention.PutOptions{Class: retention.ClassLog}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := f.bk.Snapshot(opCtx, f.src)
	if err != nil {
		t.Fatal(err)
	}
	rc, m, err := backupPart(t, f.dst).Get(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := io.ReadAll(rc)
	rc.Close()
	// Corrupt each byte position in turn (stride for speed); each must be
	// detected.
	for i := 0; i < len(orig); i += 13 {
		bad := bytes.Clone(orig)
		bad[i] ^= 0x20
		if err := backupPart(t, f.dst).Put(ctx, info.ID, bytes.NewReader(bad), m); err != nil {
			t.Fatal(err)
		}
		_, err := f.bk.RestoreVerify(opCtx, info.ID, memBackend(t))
		if !errors.Is(err, retention.ErrBackupCorrupt) {
			t.Fatalf("flip at %d of %d: RestoreVerify = %v", i, len(orig), err)
		}
	}
	if err := backupPart(t, f.dst).Put(ctx, info.ID, bytes.NewReader(orig[:len(orig)/2]), m); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bk.RestoreVerify(opCtx, info.ID, memBackend(t)); !errors.Is(err, retention.ErrBackupCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
	var ev audit.Event
	for _, e := range f.rec.Events() {
		if e.Action == "retention.backup.verify" {
			ev = e
		}
	}
	if ev.Outcome != audit.OutcomeError || ev.Severity != audit.SeverityCritical {
		t.Fatalf("failed verify audited as %+v", ev)
	}
	// An expired snapshot cannot be restored.
	f.clk.Advance(31 * day)
	if _, err := f.bk.RestoreVerify(opCtx, info.ID, memBackend(t)); !errors.Is(err, retention.ErrExpired) {
		t.Fatalf("expired snapshot: %v", err)
	}
}

func TestBackupExcludesContentUnderZDR(t *testing.T) {
	// Content written before ZDR was switched on is still in the backend;
	// backups taken under ZDR leave it out.
	dir := t.TempDir()
	b, _ := fsstore.Open(context.Background(), dir)
	var rec audit.Recorder
	clk := newClock()
	plain, _ := retention.New(b, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if _, err := plain.Put(userCtx, "content", strings.NewReader("secret"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Put(userCtx, "meta", strings.NewReader("m"), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
		t.Fatal(err)
	}
	zdr, _ := retention.New(b, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now), ZDR: retention.ZDRMemory})
	if _, err := zdr.Put(userCtx, "fresh", strings.NewReader("in memory"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
		t.Fatal(err)
	}
	dst, _ := retention.New(memBackend(t), retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	bk, err := retention.NewBackups(retention.BackupConfig{Target: dst, Envelope: testEnvelope(t, &rec)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := bk.Snapshot(opCtx, zdr)
	if err != nil {
		t.Fatal(err)
	}
	scratch := memBackend(t)
	if _, err := bk.RestoreVerify(opCtx, info.ID, scratch); err != nil {
		t.Fatal(err)
	}
	es, _ := acme(t, scratch).List(context.Background(), "", 10)
	if len(es) != 1 || es[0].Key != "meta" {
		t.Fatalf("snapshot under ZDR holds %v", es)
	}
	// Explicit exclusion for a source without ZDR.
	bk2, _ := retention.NewBackups(retention.BackupConfig{Target: dst, ExcludeContent: true, InsecurePlaintextBackups: true})
	clk.Advance(time.Second)
	info, err = bk2.Snapshot(opCtx, plain)
	if err != nil || info.Objects != 1 || info.Skipped != 1 {
		t.Fatalf("ExcludeContent snapshot %+v %v", info, err)
	}
}
