package pglog_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testclock"
	"github.com/tomkit/tomkit/internal/testpg"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

const (
	envPGChild = "TOMKIT_AUDIT_PG_CHILD_DSN"
	envPGKey   = "TOMKIT_AUDIT_PG_CHILD_KEY"
	envPGName  = "TOMKIT_AUDIT_PG_CHILD_NAME"
	pgPerChild = 150
)

// TestPostgresChild is the child side of TestPostgresTwoWriters.
func TestPostgresChild(t *testing.T) {
	dsn := os.Getenv(envPGChild)
	if dsn == "" {
		t.Skip("child process of TestPostgresTwoWriters")
	}
	s, err := audit.NewSigner(os.Getenv(envPGKey))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := openDSN(ctx, t, dsn, pglog.Config{Signer: s, Clock: testclock.New(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv(envPGName)
	var wg sync.WaitGroup
	for g := 0; g < 5; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < pgPerChild/5; i++ {
				if err := l.Log(ctx, audit.Event{Action: "pg.test", Resource: fmt.Sprintf("%s-%d-%d", name, g, i), Outcome: audit.OutcomeAllow}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if _, err := l.Checkpoint(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresTwoWriters(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, name := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), envPGChild+"="+dsn, envPGKey+"="+k.skey, envPGName+"="+name)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil || !strings.Contains(outs[i].String(), "--- PASS: TestPostgresChild") {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	rep, err := verifyDSN(ctx, t, dsn, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 2*pgPerChild || rep.Checkpoint.Size != rep.Size {
		t.Fatalf("report %+v", rep)
	}
	// Every event of both writers is in the one tree, provably.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var writers int
	conn.QueryRow(ctx, `SELECT count(DISTINCT left(convert_from(event, 'UTF8')::json->>'resource', 1)) FROM audit_records`).Scan(&writers)
	if writers != 2 {
		t.Fatalf("%d writers in the log", writers)
	}
	for _, i := range []int64{0, 137, 2*pgPerChild - 1} {
		p, err := proveDSN(ctx, t, dsn, i)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := audit.CheckInclusion(k.verifier, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPostgresAppendOnly(t *testing.T) {
	t.Parallel()
	dsn := testpg.Schema(t)
	k := newKeys(t, "pg.example/log")
	ctx := context.Background()
	l, err := openDSN(ctx, t, dsn, pglog.Config{Signer: k.signer, Clock: testclock.New(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := l.Log(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Log(ctx, audit.Event{Action: "a.b", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.Personal("email", "eve@example.com")}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyDSN(ctx, t, dsn, k.verifier); err != nil || rep.Size != 21 {
		t.Fatalf("%+v %v", rep, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var leaked bool
	conn.QueryRow(ctx, `SELECT bool_or(position('eve@example.com' in convert_from(event, 'UTF8')) > 0) FROM audit_records`).Scan(&leaked)
	if leaked {
		t.Fatal("personal data stored in plaintext")
	}
	for _, q := range []string{
		`UPDATE audit_records SET event = event WHERE idx = 3`,
		`DELETE FROM audit_records WHERE idx = 3`,
		`TRUNCATE audit_records`,
		`UPDATE audit_checkpoints SET size = 0`,
		`DELETE FROM audit_checkpoints`,
	} {
		if _, err := conn.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want refusal", q, err)
		}
	}

	// A superuser who disables the triggers is still caught.
	var ve *audit.VerifyError
	mustExec(t, conn, `ALTER TABLE audit_records DISABLE TRIGGER USER`)
	mustExec(t, conn, `UPDATE audit_records SET event = convert_to(replace(convert_from(event, 'UTF8'), 'doc/7', 'doc/8'), 'UTF8') WHERE idx = 7`)
	if _, err := verifyDSN(ctx, t, dsn, k.verifier); !errors.As(err, &ve) || ve.Index != 7 || ve.Kind != audit.KindModified {
		t.Fatalf("updated row: %v", err)
	}
	mustExec(t, conn, `DELETE FROM audit_records WHERE idx = 7`)
	if _, err := verifyDSN(ctx, t, dsn, k.verifier); !errors.As(err, &ve) || ve.Index != 7 || ve.Kind != audit.KindMissing {
		t.Fatalf("deleted row: %v", err)
	}
	mustExec(t, conn, `DELETE FROM audit_records WHERE idx >= 7`)
	if _, err := verifyDSN(ctx, t, dsn, k.verifier); !errors.As(err, &ve) || ve.Index != 7 || ve.Kind != audit.KindTruncated {
		t.Fatalf("truncated: %v", err)
	}

	// Empty database and wrong key.
	empty := testpg.Schema(t)
	if _, err := verifyDSN(ctx, t, empty, k.verifier); !errors.Is(err, audit.ErrEmptyLog) {
		t.Fatalf("database without an audit log: %v", err)
	}
	other := newKeys(t, "pg.example/log")
	if _, err := verifyDSN(ctx, t, dsn, other.verifier); !errors.Is(err, audit.ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
}

func mustExec(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
