package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/tomkit/tomkit/audit"
)

// openAudit opens the audit log.
//
// Fallback until audit's file log lands: an append-only JSON-lines file,
// fsynced per event. It is durable but NOT tamper-evident.
func openAudit(_ context.Context, a *app) (auditSink, error) {
	f, err := os.OpenFile(a.data.path(dirAudit, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &jsonlLog{f: f}, nil
}

type jsonlLog struct {
	mu sync.Mutex
	f  *os.File
}

func (l *jsonlLog) Log(ctx context.Context, e audit.Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("refapp: audit write: %w", err)
	}
	return l.f.Sync()
}

func (l *jsonlLog) Close() error { return l.f.Close() }

func auditVerifyArgs(d dataDir) string {
	return d.path(dirAudit) + "   # (tamper-evident log pending: audit file log not yet wired)"
}

const integrationAudit = "audit: JSON-lines fallback (audit file log not yet wired; not tamper-evident)"
