package pglog_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/internal/testpg"
)

// noGoroutinesAbove waits until at most base goroutines run.
func noGoroutinesAbove(t *testing.T, base int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running, %d before", runtime.NumGoroutine(), base)
		}
	}
}

// closedLog checks that l behaves as a closed log: no panic, ErrLogClosed.
func closedLog(t *testing.T, what string, l *pglog.Log) {
	t.Helper()
	ctx := context.Background()
	if err := l.Close(); !errors.Is(err, audit.ErrLogClosed) {
		t.Errorf("%s: Close = %v, want ErrLogClosed", what, err)
	}
	if err := l.Log(ctx, testEvent(1)); !errors.Is(err, audit.ErrLogClosed) {
		t.Errorf("%s: Log = %v, want ErrLogClosed", what, err)
	}
	if _, err := l.Checkpoint(ctx); !errors.Is(err, audit.ErrLogClosed) {
		t.Errorf("%s: Checkpoint = %v, want ErrLogClosed", what, err)
	}
	if _, err := l.Prune(ctx, 1); !errors.Is(err, audit.ErrLogClosed) {
		t.Errorf("%s: Prune = %v, want ErrLogClosed", what, err)
	}
	if err := l.Rotate(ctx, newKeys(t, "x.example/log").signer); !errors.Is(err, audit.ErrLogClosed) {
		t.Errorf("%s: Rotate = %v, want ErrLogClosed", what, err)
	}
}

// TestOpenUnreachable: with PostgreSQL unreachable Open returns the error
// and no log, and leaves nothing running once the caller closes its pool.
// It needs no database. Not parallel: it counts goroutines.
func TestOpenUnreachable(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "pg.example/log")
	closedLog(t, "nil Log", nil)
	closedLog(t, "zero Log", &pglog.Log{})
	if _, err := pglog.Open(ctx, nil, pglog.Config{Signer: k.signer}); !errors.Is(err, pglog.ErrNoPool) {
		t.Fatalf("open without a pool: %v", err)
	}

	base := runtime.NumGoroutine()
	// Port 1 on the loopback refuses connections at once.
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	l, err := pglog.Open(ctx, pool, pglog.Config{Signer: k.signer})
	if err == nil || l != nil {
		t.Fatalf("open on an unreachable database: %v, %v", l, err)
	}
	closedLog(t, "Log of a failed Open", l)
	if _, err := pglog.Verify(ctx, pool, k.verifier); err == nil {
		t.Fatal("verify on an unreachable database")
	}
	pool.Close()
	noGoroutinesAbove(t, base)
}

// TestOpenRefusedLeavesNothing: an Open refused by the database (another
// key) starts nothing either.
func TestOpenRefusedLeavesNothing(t *testing.T) {
	dsn := testpg.Schema(t)
	ctx := context.Background()
	k := newKeys(t, "pg.example/log")
	l := openPG(t, dsn, k)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pool := poolFor(t, dsn)
	base := runtime.NumGoroutine()
	refused, err := pglog.Open(ctx, pool, pglog.Config{Signer: newKeys(t, "pg.example/log").signer})
	if !errors.Is(err, audit.ErrWrongSigner) || refused != nil {
		t.Fatalf("open with another key: %v, %v", refused, err)
	}
	closedLog(t, "Log of a refused Open", refused)
	noGoroutinesAbove(t, base)
	closedLog(t, "closed Log", l)
}
