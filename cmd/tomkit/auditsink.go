package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tomkit/tomkit/audit"
)

// jsonLog is the CLI's audit sink for the commands that change state (keys,
// retention purge): one JSON event per line, synced to disk when it is a
// file. The CLI holds no pseudonymization key, so personal attributes are
// redacted ([audit.Protect] with no pseudonymizer).
type jsonLog struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

var _ audit.Logger = (*jsonLog)(nil)

// openJSONLog appends to the file at path (created 0600), or writes to
// stderr when path is empty. The returned func closes the file.
func openJSONLog(path string, stderr io.Writer) (*jsonLog, func(), error) {
	if path == "" {
		return &jsonLog{w: stderr}, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return &jsonLog{w: f, f: f}, func() { f.Close() }, nil
}

// Log writes ev once it is normalized and protected. An error means the
// event was not recorded, and the command fails.
func (l *jsonLog) Log(ctx context.Context, ev audit.Event) error {
	ev, err := ev.Normalize(ctx)
	if err != nil {
		return err
	}
	b, err := audit.Protect(ev, nil).Marshal()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if l.f != nil {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit log: sync: %w", err)
		}
	}
	return nil
}
