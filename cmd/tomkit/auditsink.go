package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
)

// sinkFlags are the --audit-log and --audit-signer flags of the commands
// that change state (keys, encrypt, decrypt, retention purge). Register
// them with add; the zero value writes JSON lines to standard error.
type sinkFlags struct {
	log, signer string
}

// sinkKind is the form of an --audit-log value.
type sinkKind int

const (
	sinkJSON     sinkKind = iota // a file (or standard error): JSON lines
	sinkDir                      // an existing directory: audit.FileLog
	sinkPostgres                 // a postgres:// DSN: pglog.Log
)

// auditLogHelp describes --audit-log and --audit-signer in usage texts.
const auditLogHelp = `  --audit-log LOG   where audit events go: an existing DIRECTORY is a
                    tamper-evident file log (one writer at a time), a
                    postgres:// DSN a tamper-evident PostgreSQL log (many
                    writers), anything else a FILE of JSON lines; default:
                    JSON lines on standard error
  --audit-signer F  the tamper-evident log's signer key FILE (mode 0600,
                    from tomkit audit keygen); required with a DIRECTORY
                    or DSN
`

func (s *sinkFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&s.log, "audit-log", "", "record audit events in `LOG`: an existing directory (tamper-evident file log), a postgres:// DSN (tamper-evident PostgreSQL log) or a file (JSON lines); default: JSON lines on standard error")
	fs.StringVar(&s.signer, "audit-signer", "", "signer key `FILE` (mode 0600, from tomkit audit keygen) of a tamper-evident --audit-log; required with a directory or DSN")
}

func (s *sinkFlags) kind() sinkKind {
	if isDSN(s.log) {
		return sinkPostgres
	}
	if s.log != "" {
		if fi, err := os.Stat(s.log); err == nil && fi.IsDir() {
			return sinkDir
		}
	}
	return sinkJSON
}

// check reports a flag combination that is bad usage: a tamper-evident
// log without its signer key, or a signer key with no tamper-evident log
// to sign (most likely a directory that does not exist yet).
func (s *sinkFlags) check() error {
	switch k := s.kind(); {
	case k == sinkPostgres && s.signer == "":
		return errors.New("--audit-log with a PostgreSQL DSN is a tamper-evident log and needs --audit-signer FILE, its signer key (tomkit audit keygen)")
	case k == sinkDir && s.signer == "":
		return fmt.Errorf("--audit-log %s is a directory, a tamper-evident log, and needs --audit-signer FILE, its signer key (tomkit audit keygen)", s.log)
	case k == sinkJSON && s.signer != "" && s.log == "":
		return errors.New("--audit-signer needs --audit-log DIR (an existing directory) or a postgres:// DSN")
	case k == sinkJSON && s.signer != "":
		return fmt.Errorf("--audit-signer needs --audit-log DIR (an existing directory) or a postgres:// DSN, and %s is not a directory; create it first, or drop --audit-signer for JSON lines", s.log)
	}
	return nil
}

// auditSink is the audit log of one command run. Close it on every exit
// path: the tamper-evident logs sign a final checkpoint then.
type auditSink struct {
	audit.Logger
	close func() error
}

// open opens the log the flags name. Bad usage is reported as by check,
// a log directory held by another writer with [audit.ErrLogLocked].
func (s *sinkFlags) open(ctx context.Context, stderr io.Writer) (*auditSink, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	k := s.kind()
	if k == sinkJSON {
		l, closeLog, err := openJSONLog(s.log, stderr)
		if err != nil {
			return nil, err
		}
		return &auditSink{Logger: l, close: closeLog}, nil
	}
	signer, err := audit.LoadSigner(s.signer)
	if err != nil {
		return nil, err
	}
	// No Pseudonymizer: the CLI holds no pseudonymization key, so both
	// logs redact personal attributes.
	if k == sinkPostgres {
		pool, err := pgxpool.New(ctx, s.log)
		if err != nil {
			return nil, fmt.Errorf("audit log: postgres: %w", err)
		}
		l, err := pglog.Open(ctx, pool, pglog.Config{Signer: signer})
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("audit log: %w", err)
		}
		return &auditSink{Logger: l, close: func() error {
			defer pool.Close()
			return l.Close()
		}}, nil
	}
	l, err := audit.Open(ctx, s.log, audit.FileConfig{Signer: signer})
	if errors.Is(err, audit.ErrLogLocked) {
		return nil, fmt.Errorf("%w: a running service (or another tomkit command) is writing to it; stop it first, or have both write to a PostgreSQL audit log (--audit-log postgres://...), which takes many writers at once", err)
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &auditSink{Logger: l, close: l.Close}, nil
}

// Close closes the log; for the tamper-evident logs it signs a final
// checkpoint over every event written. Calling it again does nothing.
func (s *auditSink) Close() error {
	if s == nil || s.close == nil {
		return nil
	}
	c := s.close
	s.close = nil
	if err := c(); err != nil {
		return fmt.Errorf("audit log: close: %w", err)
	}
	return nil
}

// finish closes s for the command name and returns its exit code: code,
// or exitFailure when closing failed (the events are recorded, but the
// final checkpoint that signs them may not be).
func (s *auditSink) finish(e env, name string, code int) int {
	if err := s.Close(); err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		if code == exitOK {
			return exitFailure
		}
	}
	return code
}

// jsonLog is the CLI's plain audit sink: one JSON event per line, synced
// to disk when it is a file. It is not tamper-evident. The CLI holds no
// pseudonymization key, so personal attributes are redacted
// ([audit.Protect] with no pseudonymizer).
type jsonLog struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

var _ audit.Logger = (*jsonLog)(nil)

// openJSONLog appends to the file at path (created 0600), or writes to
// stderr when path is empty. The returned func closes the file.
func openJSONLog(path string, stderr io.Writer) (*jsonLog, func() error, error) {
	if path == "" {
		return &jsonLog{w: stderr}, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return &jsonLog{w: f, f: f}, f.Close, nil
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
