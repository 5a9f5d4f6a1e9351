package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
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
func closedLog(t *testing.T, what string, l *audit.FileLog) {
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
	if n := l.Recovered(); n != 0 {
		t.Errorf("%s: Recovered = %d", what, n)
	}
}

// TestOpenFailureLeavesNothing: an Open that fails returns no log, leaves
// no goroutine, file or lock behind, and a nil or zero FileLog closes
// without panicking.
func TestOpenFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	closedLog(t, "nil FileLog", nil)
	closedLog(t, "zero FileLog", &audit.FileLog{})

	dir := t.TempDir()
	held := openLog(t, dir, k, audit.FileConfig{})
	for i := 0; i < 10; i++ {
		if err := held.Log(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	base := runtime.NumGoroutine()
	l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: k.signer})
	if !errors.Is(err, audit.ErrLogLocked) || l != nil {
		t.Fatalf("open a locked log: %v, %v", l, err)
	}
	closedLog(t, "FileLog of a locked Open", l)
	noGoroutinesAbove(t, base)
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}

	// Tamper with record 3, in the middle of the log.
	seg := filepath.Join(dir, logfmt.SegmentName(0))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := len(data) * 4 / 10
	data[at] ^= 0x20
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	base = runtime.NumGoroutine()
	l, err = audit.Open(ctx, dir, audit.FileConfig{Signer: k.signer})
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || l != nil {
		t.Fatalf("open a tampered log: %v, %v", l, err)
	}
	closedLog(t, "FileLog of a tampered Open", l)
	noGoroutinesAbove(t, base)
	// The failed Open released its lock.
	f, err := os.OpenFile(filepath.Join(dir, logfmt.LockName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("a failed Open kept the lock: %v", err)
	}
}
