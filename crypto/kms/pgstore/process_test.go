package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/crypto/kms/pgstore"
)

const childEnv = "TOMKIT_KMS_PGSTORE_CHILD"

const processLease = 2 * time.Second

// TestShredAcrossProcesses runs two more instances as separate processes
// and SIGKILLs one of them while its lease runs: Shred on this process
// waits out the dead instance's lease, and returns only after the live
// one has stopped using the key.
func TestShredAcrossProcesses(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		processChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	ctx := context.Background()
	c := newCluster(t, pgstore.WithLease(processLease))
	master := kms.GenerateMasterKey()
	m, _ := kms.ParseMasterKey(master)
	c.cfg.Master = m
	a := c.open()
	if err := a.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestShredAcrossProcesses$")
		cmd.Env = append(os.Environ(), childEnv+"="+c.dsn, kms.MasterKeyEnv+"="+master)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("child did not start: %q", sc.Text())
		}
		return cmd, sc
	}
	_, live := start()
	dead, _ := start()
	if err := dead.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := a.Shred(ctx, scope); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	t.Logf("Shred took %v with a SIGKILLed instance holding a %v lease", t1.Sub(t0), processLease)
	if t1.Sub(t0) > processLease+time.Second {
		t.Errorf("Shred took %v; the dead instance's lease is %v", t1.Sub(t0), processLease)
	}
	// The live child reports the start of its last successful use and
	// of its first refusal.
	var lastOK, refused int64
	for lastOK == 0 || refused == 0 {
		if !live.Scan() {
			t.Fatal("live child stopped reporting")
		}
		f := strings.Fields(live.Text())
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "last-ok":
			lastOK = n
		case "refused":
			refused = n
			t.Logf("child refused: %s", strings.Join(f[2:], " "))
		}
	}
	if lastOK >= t1.UnixNano() {
		t.Fatalf("the live instance started a key use %v after Shred returned", time.Duration(lastOK-t1.UnixNano()))
	}
	t.Logf("live instance refused %v before Shred returned", time.Duration(t1.UnixNano()-refused))
	if refused > t1.UnixNano() {
		t.Errorf("the live instance first refused %v after Shred returned", time.Duration(refused-t1.UnixNano()))
	}
}

// processChild is one instance: it wraps and unwraps in a loop and
// reports when that stops working.
func processChild() {
	ctx := context.Background()
	fail := func(err error) { fmt.Fprintln(os.Stderr, "child:", err); os.Exit(2) }
	m, err := kms.MasterKeyFromEnv()
	if err != nil {
		fail(err)
	}
	pool, err := pgxpool.New(ctx, os.Getenv(childEnv))
	if err != nil {
		fail(err)
	}
	r, err := pgstore.Open(ctx, pool, kms.Config{Master: m, Logger: nopLogger{}}, pgstore.WithLease(processLease))
	if err != nil {
		fail(err)
	}
	kek := r.KEK(scope)
	dek := make([]byte, 32)
	id, w, err := kek.Wrap(ctx, nil, dek, nil)
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	var last int64
	for {
		t := time.Now().UnixNano()
		_, _, err := kek.Wrap(ctx, nil, dek, nil)
		if err == nil {
			_, err = kek.Unwrap(ctx, nil, id, w, nil)
		}
		if err != nil {
			fmt.Printf("last-ok %d\nrefused %d %v\n", last, t, err)
			io.Copy(io.Discard, os.Stdin) // wait to be killed
			select {}
		}
		last = t
	}
}
