package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/internal/testclock"
)

const (
	envCrashDir = "TOMKIT_AUDIT_CRASH_DIR"
	envCrashKey = "TOMKIT_AUDIT_CRASH_KEY"
	envCrashRun = "TOMKIT_AUDIT_CRASH_RUN"
)

// TestCrashChild is the child side of TestCrashRecovery: it appends from
// 32 goroutines and prints the id of every event whose Log returned nil,
// until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	s, err := audit.NewSigner(os.Getenv(envCrashKey))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := audit.Open(context.Background(), dir, audit.FileConfig{Signer: s, SegmentSize: 8 << 10, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	run := os.Getenv(envCrashRun)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", run, g, i)
				if err := l.Log(context.Background(), audit.Event{Action: "crash.test", Resource: id, Outcome: audit.OutcomeAllow}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				out.WriteString(id + "\n")
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	iterations := 50
	if testing.Short() {
		iterations = 10
	}
	k := newKeys(t, "crash.example/log")
	dir := t.TempDir()
	ctx := context.Background()
	acked := map[string]bool{}
	residues := 0
	for it := 0; it < iterations; it++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashKey+"="+k.skey, fmt.Sprintf("%s=%d", envCrashRun, it))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		killAfter := rand.IntN(300)
		n := 0
		killed := false
		for sc.Scan() {
			acked[sc.Text()] = true
			if n++; n >= killAfter && !killed {
				cmd.Process.Kill() // SIGKILL
				killed = true
			}
		}
		if !killed {
			cmd.Process.Kill()
		}
		cmd.Wait()
		if strings.Contains(stderr.String(), "audit:") {
			t.Fatalf("iteration %d: child failed: %s", it, stderr.String())
		}

		// Before recovery the log verifies, with at most crash residue.
		rep, err := audit.Verify(ctx, dir, k.verifier)
		if err != nil {
			t.Fatalf("iteration %d: verify after kill: %v", it, err)
		}
		if rep.Residue > 0 {
			residues++
		}
		// Recovery keeps every acknowledged event.
		l, err := audit.Open(ctx, dir, audit.FileConfig{Signer: k.signer, Clock: testclock.New(nil, nil)})
		if err != nil {
			t.Fatalf("iteration %d: open after kill: %v", it, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if it%10 != 9 {
			continue // Open verified the log; check its result now and then
		}
		rep, err = audit.Verify(ctx, dir, k.verifier)
		if err != nil || rep.Residue != 0 || rep.Checkpoint.Size != rep.Size {
			t.Fatalf("iteration %d: after recovery: %+v %v", it, rep, err)
		}
	}
	have := readResources(t, dir)
	for id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged event %s lost", id)
		}
	}
	t.Logf("%d kills, %d acknowledged events all present, %d with crash residue", iterations, len(acked), residues)
}

func readResources(t *testing.T, dir string) map[string]bool {
	t.Helper()
	segs, err := logfmt.ListSegments(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range segs {
		b, _ := os.ReadFile(filepath.Join(dir, s.Name))
		for off := 0; off < len(b); {
			_, p, n, err := frame.Next(b[off:], audit.MaxEventSize)
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			e, err := audit.Unmarshal(p)
			if err != nil {
				t.Fatal(err)
			}
			have[e.Resource] = true
			off += n
		}
	}
	return have
}
