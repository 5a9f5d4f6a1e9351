package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// A Clock decides the time a component reads: here a file log whose
// checkpoints and events carry a pinned time, as a test or a replay would
// want. A nil Clock is the system clock.
func ExampleClockFunc() {
	dir, err := os.MkdirTemp("", "audit-clock")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	skey, _, err := audit.GenerateKey("audit.example.com/clock")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	pinned := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	l, err := audit.Open(context.Background(), dir, audit.FileConfig{
		Signer: signer,
		Clock:  audit.ClockFunc(func() time.Time { return pinned }),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cp.Time.UTC())
	// Output:
	// 2026-01-01 12:00:00 +0000 UTC
}
