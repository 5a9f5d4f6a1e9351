package pglog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
	"golang.org/x/mod/sumdb/note"
)

// dbState returns everything a log stores, as one string.
func dbState(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT coalesce(string_agg(idx::text || ':' || encode(leaf, 'hex'), ',' ORDER BY idx), '') FROM audit_records`,
		`SELECT coalesce(string_agg(seq::text || ':' || encode(note, 'escape'), ',' ORDER BY seq), '') FROM audit_checkpoints`,
		`SELECT coalesce(string_agg(seq::text || ':' || verifier, ',' ORDER BY seq), '') FROM audit_keys`,
		`SELECT size::text || ':' || encode(frontier, 'hex') || ':' || coalesce(verifier, '') FROM audit_head`,
	} {
		var s string
		if err := conn.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		b.WriteString(s + "\n")
	}
	return b.String()
}

// TestWrongSigner: a log has one key. Opening it with another signer is
// refused and writes nothing; instances with the same signer share it.
func TestWrongSigner(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	fresh := newKeys(t, "pg.example/log") // same name, new key: a new data directory
	ctx := context.Background()
	conn := connect(t, dsn)
	a := openPG(t, dsn, k)
	defer a.Close()
	logN(t, a, 0, 5)
	before := dbState(t, conn)
	for _, s := range []*audit.Signer{fresh.signer, newKeys(t, "other.example/log").signer} {
		if l, err := openDSN(ctx, t, dsn, pglog.Config{Signer: s, Clock: testclock.New(nil, nil)}); !errors.Is(err, audit.ErrWrongSigner) {
			t.Fatalf("open with another signer: %v, want ErrWrongSigner", err)
		} else if l != nil {
			t.Fatal("a refused Open returned a log")
		}
	}
	if after := dbState(t, conn); after != before {
		t.Fatalf("a refused Open wrote:\n%s\nwas\n%s", after, before)
	}
	// A second instance with the same signer writes the same log.
	b := openPG(t, dsn, k)
	logN(t, b, 5, 10)
	logN(t, a, 10, 15)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Size != 15 || rep.Checkpoint.Size != 15 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if _, err := verifyDSN(ctx, t, dsn, fresh.verifier); !errors.Is(err, audit.ErrWrongKey) {
		t.Fatalf("verify with the refused key: %v", err)
	}
}

// TestRotate: a key changes only by a rotation signed by the old key;
// the log verifies with either key across it, and a writer still holding
// the old key is refused.
func TestRotate(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k1, k2 := newKeys(t, "pg.example/log"), newKeys(t, "pg.example/log")
	ctx := context.Background()
	a, b := openPG(t, dsn, k1), openPG(t, dsn, k1)
	logN(t, a, 0, 10)
	logN(t, b, 10, 20)
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Prune(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx, nil); !errors.Is(err, audit.ErrNoSigner) {
		t.Fatalf("rotate to no signer: %v", err)
	}
	if err := a.Rotate(ctx, k2.signer); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_records WHERE idx = 21 AND convert_from(event, 'UTF8')::json->>'action' = 'audit.rotate'`); n != 1 {
		t.Fatalf("%d audit.rotate events at 21", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM audit_checkpoints WHERE size = 22`); n != 2 {
		t.Fatalf("%d checkpoints at the rotation, want one per key", n)
	}
	// The other instance still holds k1: refused, and writes nothing.
	if err := b.Log(ctx, testEvent(99)); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("log with the old key after rotation: %v", err)
	}
	if _, err := b.Checkpoint(ctx); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("checkpoint with the old key after rotation: %v", err)
	}
	if _, err := b.Prune(ctx, 8); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("prune with the old key after rotation: %v", err)
	}
	if err := b.Close(); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("close (final checkpoint) with the old key after rotation: %v", err)
	}
	if _, err := openDSN(ctx, t, dsn, pglog.Config{Signer: k1.signer}); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("open with the old key after rotation: %v", err)
	}
	logN(t, a, 20, 25)
	c := openPG(t, dsn, k2)
	logN(t, c, 25, 30)
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// A prune over the rotation reads the old key's prune note.
	if m, err := c.Prune(ctx, 23); err != nil || m != 23 {
		t.Fatalf("prune across the rotation: %d %v", m, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// 30 events, audit.prune twice, audit.rotate once.
	for _, v := range []note.Verifier{k1.verifier, k2.verifier} {
		rep, err := verifyDSN(ctx, t, dsn, v)
		if err != nil || rep.Size != 33 || rep.Checkpoint.Size != 33 || rep.Pruned != 23 {
			t.Fatalf("verify with %s: %+v %v", v.Name(), rep, err)
		}
	}
	if _, err := verifyDSN(ctx, t, dsn, newKeys(t, "pg.example/log").verifier); !errors.Is(err, audit.ErrWrongKey) {
		t.Fatalf("verify with a key not in the chain: %v", err)
	}
	p, err := proveDSN(ctx, t, dsn, 25)
	if err != nil {
		t.Fatal(err)
	}
	if e, _, err := audit.CheckInclusion(k2.verifier, p); err != nil || e.Resource != "doc/23" { // after 20 events, audit.prune and audit.rotate
		t.Fatalf("proof after rotation: %+v %v", e, err)
	}
}

// TestRotateTamper: the rotation chain is checked from the first key.
func TestRotateTamper(t *testing.T) {
	t.Parallel()
	k1, k2 := newKeys(t, "pg.example/log"), newKeys(t, "pg.example/log")
	ctx := context.Background()
	setup := func(t *testing.T) (string, *pgx.Conn) {
		dsn := testpg.Schema(t)
		l := openPG(t, dsn, k1)
		logN(t, l, 0, 10)
		if err := l.Rotate(ctx, k2.signer); err != nil {
			t.Fatal(err)
		}
		logN(t, l, 10, 20)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := verifyDSN(ctx, t, dsn, k1.verifier); err != nil || rep.Size != 21 {
			t.Fatalf("intact: %+v %v", rep, err)
		}
		conn := connect(t, dsn)
		for _, tab := range []string{"audit_records", "audit_checkpoints", "audit_keys"} {
			mustExec(t, conn, `ALTER TABLE `+tab+` DISABLE TRIGGER USER`)
		}
		return dsn, conn
	}
	t.Run("old key signs after the rotation", func(t *testing.T) {
		dsn, conn := setup(t)
		// Whoever still holds k1 signs a checkpoint of the current
		// tree: true, but k1 no longer speaks for the log.
		var msg []byte
		if err := conn.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Scan(&msg); err != nil {
			t.Fatal(err)
		}
		c, err := logfmt.OpenCheckpoint(msg, k2.verifier)
		if err != nil || c.Size != 21 {
			t.Fatalf("latest checkpoint: %+v %v", c, err)
		}
		s1, _ := note.NewSigner(k1.skey)
		forged, err := logfmt.SignCheckpoint(s1, c.Size, c.Root, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, fmt.Sprintf(`INSERT INTO audit_checkpoints (size, note) VALUES (21, decode('%x', 'hex'))`, forged))
		_, err = verifyDSN(ctx, t, dsn, k1.verifier)
		wantVerifyError(t, "old key's checkpoint after the rotation", err, 21, audit.KindBadSignature)
	})
	t.Run("rotation deleted", func(t *testing.T) {
		dsn, conn := setup(t)
		mustExec(t, conn, `DELETE FROM audit_keys WHERE note IS NOT NULL`)
		_, err := verifyDSN(ctx, t, dsn, k1.verifier)
		wantVerifyError(t, "rotation row deleted", err, 11, audit.KindBadSignature)
		if _, err := verifyDSN(ctx, t, dsn, k2.verifier); !errors.Is(err, audit.ErrWrongKey) {
			t.Fatalf("new key without its rotation: %v", err)
		}
	})
	t.Run("rotation to a forger's key", func(t *testing.T) {
		dsn, conn := setup(t)
		evil := newKeys(t, "pg.example/log")
		se, _ := note.NewSigner(evil.skey)
		rot, err := logfmt.SignRotation(se, 11, k2.vkey)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, `DELETE FROM audit_keys`)
		mustExec(t, conn, fmt.Sprintf(`INSERT INTO audit_keys (size, verifier) VALUES (0, '%s')`, evil.vkey))
		mustExec(t, conn, fmt.Sprintf(`INSERT INTO audit_keys (size, verifier, note) VALUES (11, '%s', decode('%x', 'hex'))`, k2.vkey, rot))
		if _, err := verifyDSN(ctx, t, dsn, k1.verifier); !errors.Is(err, audit.ErrWrongKey) {
			t.Fatalf("chain from a forger's key, verified with k1: %v", err)
		}
		// With k2 the forged start does not matter: k2's checkpoints
		// cover every record, and the forger signed none of them.
		_, err = verifyDSN(ctx, t, dsn, k2.verifier)
		wantVerifyError(t, "k1's checkpoints under a forged chain", err, 0, audit.KindBadSignature)
	})
}

// TestFirstCheckpoint: Open signs a checkpoint when it creates a log, so a
// log whose checkpoints were all deleted does not verify.
func TestFirstCheckpoint(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	l := openPG(t, dsn, k)
	rep, err := verifyDSN(ctx, t, dsn, k.verifier)
	if err != nil || rep.Size != 0 || rep.Checkpoint.Origin != "pg.example/log" {
		t.Fatalf("new log: %+v %v", rep, err)
	}
	logN(t, l, 0, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	mustExec(t, conn, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`)
	mustExec(t, conn, `DELETE FROM audit_checkpoints`)
	_, err = verifyDSN(ctx, t, dsn, k.verifier)
	wantVerifyError(t, "every checkpoint deleted", err, 0, audit.KindMissing)
}

// TestTriggersDisabled: Open refuses a log whose append-only triggers are
// disabled or missing, and changes nothing, not even the triggers.
func TestTriggersDisabled(t *testing.T) {
	t.Parallel()
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	for _, c := range []struct{ name, q, want string }{
		{"disabled", `ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only`, "audit_checkpoints_append_only disabled"},
		{"replica only", `ALTER TABLE audit_records ENABLE REPLICA TRIGGER audit_records_append_only`, "audit_records_append_only disabled"},
		{"dropped", `DROP TRIGGER audit_keys_no_truncate ON audit_keys`, "audit_keys_no_truncate missing"},
		{"prune trigger dropped", `DROP TRIGGER audit_records_delete_pruned ON audit_records`, "audit_records_delete_pruned missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dsn := testpg.Schema(t)
			l := openPG(t, dsn, k)
			logN(t, l, 0, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			conn := connect(t, dsn)
			mustExec(t, conn, c.q)
			triggers := `SELECT string_agg(tgname || tgenabled, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN ('audit_records'::regclass, 'audit_checkpoints'::regclass, 'audit_keys'::regclass, 'audit_prunes'::regclass)`
			var before string
			conn.QueryRow(ctx, triggers).Scan(&before)
			state := dbState(t, conn)
			_, err := openDSN(ctx, t, dsn, pglog.Config{Signer: k.signer})
			if !errors.Is(err, pglog.ErrNotAppendOnly) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("open: %v, want ErrNotAppendOnly naming %s", err, c.want)
			}
			var after string
			conn.QueryRow(ctx, triggers).Scan(&after)
			if after != before || dbState(t, conn) != state {
				t.Fatalf("a refused Open changed the log: triggers %s, were %s", after, before)
			}
		})
	}
}

// TestWrongSignerLegacy: a log written before keys were recorded belongs
// to the key of its latest checkpoint.
func TestWrongSignerLegacy(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	l := openPG(t, dsn, k)
	logN(t, l, 0, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	mustExec(t, conn, `DROP TABLE audit_keys; ALTER TABLE audit_head DROP COLUMN verifier`)
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Size != 5 {
		t.Fatalf("legacy log: %+v %v", rep, err)
	}
	if _, err := openDSN(ctx, t, dsn, pglog.Config{Signer: newKeys(t, "pg.example/log").signer}); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("open a legacy log with another key: %v", err)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_class WHERE relname = 'audit_keys' AND relnamespace = current_schema()::regnamespace`); n != 0 {
		t.Fatal("a refused Open created audit_keys")
	}
	l = openPG(t, dsn, k)
	logN(t, l, 5, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Size != 7 {
		t.Fatalf("legacy log, adopted: %+v %v", rep, err)
	}
}
