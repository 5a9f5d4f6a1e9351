package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"github.com/tomkit/tomkit/audit/internal/merkle"
	"github.com/tomkit/tomkit/internal/errtext"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors returned by [Open] and [FileLog].
var (
	// ErrLogLocked reports a log directory held by another FileLog, in
	// this or another process.
	ErrLogLocked = errors.New("audit: log directory is locked by another process")
	// ErrLogClosed reports a Log call after Close.
	ErrLogClosed = errors.New("audit: log closed")
	// ErrWrongSigner reports a signer whose key is not the log's: a log
	// has one key, and appending with another would produce a log that
	// does not verify. The PostgreSQL log (audit/pglog) can change its
	// key only by a signed rotation.
	ErrWrongSigner = errors.New("audit: signer key is not the log's key")
	// ErrNoSigner reports a FileConfig without a Signer.
	ErrNoSigner = errors.New("audit: no checkpoint signer configured")
)

// FileConfig configures [Open]. Only Signer is required; every other zero
// value is a safe default.
type FileConfig struct {
	// Signer signs checkpoints. Required.
	Signer *Signer
	// Pseudonymizer turns personal attributes into keyed pseudonyms. Nil
	// means they are redacted: their plaintext is never written.
	Pseudonymizer *Pseudonymizer
	// CheckpointInterval is how often a checkpoint is signed, even when
	// no event arrived, so that truncation and gaps are visible. Zero
	// means one minute.
	CheckpointInterval time.Duration
	// Clock gives checkpoint and event times and the CheckpointInterval
	// ticker. Nil means the system clock.
	Clock Clock
	// SegmentSize is the size at which a new segment file is started.
	// Zero means 64 MiB.
	SegmentSize int64
}

// FileLog is the tamper-evident, crash-safe file log: the embedded default
// [Logger]. Create it with [Open]. Its methods are safe for concurrent use.
type FileLog struct {
	dir      string
	cfg      FileConfig
	now      func() time.Time
	lock     *os.File
	reqs     chan *request
	exited   chan struct{}
	stopTick func()

	mu     sync.RWMutex
	closed bool

	recovered int64

	// Owned by the writer goroutine.
	tree      *merkle.Tree
	seg       *os.File
	segFirst  int64
	segLen    int64
	cpf       *os.File
	cpSeq     uint64
	frontiers map[int64][]tlog.Hash
	segs      []logfmt.Segment
	min       int64
	err       error // sticky write error
	buf       []byte
	latest    Checkpoint
}

type reqKind int

const (
	reqEvent reqKind = iota
	reqCheckpoint
	reqPrune
	reqClose
)

type request struct {
	kind    reqKind
	payload []byte
	leaf    tlog.Hash
	below   int64
	done    chan result
}

type result struct {
	err    error
	index  int64
	pruned bool // reqPrune: segments were deleted
	cp     Checkpoint
}

var _ Logger = (*FileLog)(nil)

// Open opens the log in dir, creating it if needed, and locks it against
// other writers ([ErrLogLocked]).
//
// Open verifies the whole existing log with the signer's public key first
// and refuses to extend a tampered one, returning the [*VerifyError], or
// one signed by another key, returning [ErrWrongSigner]. A
// torn, never-acknowledged tail left by a crash is crash residue, not
// tampering: Open cuts it off, and records an "audit.recover" event saying
// how many bytes it dropped (see [FileLog.Recovered]). Open never cuts a
// damaged record that an intact record follows: such a log is tampered
// (or damaged other than by a crash), and Open refuses it unchanged.
func Open(ctx context.Context, dir string, cfg FileConfig) (*FileLog, error) {
	if cfg.Signer == nil {
		return nil, ErrNoSigner
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = 64 << 20
	}
	clock := clockOr(cfg.Clock)
	l := &FileLog{dir: dir, cfg: cfg, now: clock.Now, reqs: make(chan *request, 256), exited: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errtext.Errorf("audit: open: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, logfmt.LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errtext.Errorf("audit: open: %w", err)
	}
	if err := flockRetry(lock); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLogLocked, dir)
		}
		return nil, errtext.Errorf("audit: lock: %w", err)
	}
	l.lock = lock
	if err := l.recover(ctx); err != nil {
		l.closeFiles()
		return nil, err
	}
	tick, stop := clock.NewTicker(cfg.CheckpointInterval)
	l.stopTick = stop
	go l.writer(tick)
	if l.recovered > 0 {
		err := l.Log(ctx, Event{
			Action: "audit.recover", Outcome: OutcomeError, Severity: SeverityWarning,
			Reason:     "dropped the torn, unacknowledged tail left by a crash",
			Attributes: []Attr{String("bytes", fmt.Sprint(l.recovered))},
		})
		if err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// wrongSignerError is Open's error for a log signed by another key. It
// matches both [ErrWrongSigner] and, as verification reports it,
// [ErrWrongKey].
type wrongSignerError struct{ dir string }

func (e wrongSignerError) Error() string {
	return ErrWrongSigner.Error() + ": the log in " + e.dir + " is signed by another key"
}

func (e wrongSignerError) Is(target error) bool {
	return target == ErrWrongSigner || target == ErrWrongKey
}

// recover verifies dir, cuts crash residue and opens the files for
// appending.
func (l *FileLog) recover(ctx context.Context) error {
	v := l.cfg.Signer.Verifier()
	res, err := verifyDir(ctx, l.dir, v, false)
	if errors.Is(err, ErrWrongKey) {
		return wrongSignerError{l.dir}
	}
	fresh := errors.Is(err, ErrEmptyLog)
	if err != nil && !fresh {
		return err
	}
	cpPath := filepath.Join(l.dir, logfmt.CheckpointsName)
	if fresh {
		l.tree = merkle.New(false)
		l.frontiers = map[int64][]tlog.Hash{}
		for _, n := range []string{cpPath, filepath.Join(l.dir, logfmt.SegmentName(0))} {
			if err := os.Truncate(n, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return errtext.Errorf("audit: open: %w", err)
			}
		}
	} else {
		l.tree = res.State.Tree()
		l.frontiers = res.Frontiers
		l.segs = res.Segments
		l.cpSeq = uint64(len(res.Checkpoints))
		l.latest = publicCheckpoint(res.Latest)
		if res.Prune != nil {
			l.min = res.Prune.Min
		}
		// Cut crash residue.
		if r := res.State.Residue; r > 0 {
			last := res.Segments[len(res.Segments)-1]
			if err := truncateSync(filepath.Join(l.dir, last.Name), int64(res.State.ResidueOffset)); err != nil {
				return err
			}
			l.recovered += int64(r)
		}
		if r := res.CheckpointResidue; r > 0 {
			if err := truncateSync(cpPath, int64(res.CheckpointsLen-r)); err != nil {
				return err
			}
			l.recovered += int64(r)
		}
		// Remove segments left below the prune point by a crash
		// during Prune.
		if all, err := logfmt.ListSegments(os.DirFS(l.dir)); err == nil {
			for _, s := range all {
				if s.First < l.min {
					os.Remove(filepath.Join(l.dir, s.Name))
				}
			}
		}
	}
	cpf, err := os.OpenFile(cpPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return errtext.Errorf("audit: open: %w", err)
	}
	l.cpf = cpf
	first := l.tree.Size()
	if n := len(l.segs); n > 0 {
		first = l.segs[n-1].First
	}
	if err := l.openSegment(first); err != nil {
		return err
	}
	if fresh {
		if _, err := l.checkpoint(); err != nil {
			return err
		}
	}
	return nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return errtext.Errorf("audit: recover: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return errtext.Errorf("audit: recover: %w", err)
	}
	if err := f.Sync(); err != nil {
		return errtext.Errorf("audit: recover: %w", err)
	}
	return nil
}

func (l *FileLog) openSegment(first int64) error {
	name := logfmt.SegmentName(first)
	f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return errtext.Errorf("audit: segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return errtext.Errorf("audit: segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.seg, l.segFirst, l.segLen = f, first, fi.Size()
	if n := len(l.segs); n == 0 || l.segs[n-1].First != first {
		l.segs = append(l.segs, logfmt.Segment{First: first, Name: name})
		l.frontiers[first] = l.tree.Frontier()
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return errtext.Errorf("audit: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return errtext.Errorf("audit: sync dir: %w", err)
	}
	return nil
}

// Recovered returns the number of bytes of crash residue that Open cut
// off, zero after a clean shutdown.
func (l *FileLog) Recovered() int64 {
	if l == nil {
		return 0
	}
	return l.recovered
}

// Log records e durably. It normalizes e (see [Event.Normalize]),
// pseudonymizes or redacts its personal attributes, and returns only once
// the record is on disk (fsync); concurrent callers share one fsync. An
// error means the event may not have been recorded and the caller must
// fail the audited action. After a write error every later Log fails too.
func (l *FileLog) Log(ctx context.Context, e Event) error {
	if !l.opened() {
		return ErrLogClosed
	}
	b, err := encodeRecord(ctx, e, l.now, l.cfg.Pseudonymizer)
	if err != nil {
		return err
	}
	_, err = l.do(ctx, &request{kind: reqEvent, payload: b, leaf: tlog.RecordHash(b)})
	return err
}

// do hands r to the writer and waits for its result.
func (l *FileLog) do(ctx context.Context, r *request) (result, error) {
	if !l.opened() {
		return result{}, ErrLogClosed
	}
	r.done = make(chan result, 1)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return result{}, ErrLogClosed
	}
	l.reqs <- r
	l.mu.RUnlock()
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		return result{}, errtext.Errorf("audit: log: %w (the event may still be written)", ctx.Err())
	}
}

// Checkpoint signs and stores a checkpoint now and returns it.
func (l *FileLog) Checkpoint(ctx context.Context) (Checkpoint, error) {
	res, err := l.do(ctx, &request{kind: reqCheckpoint})
	return res.cp, err
}

// Prune deletes whole segments whose records all lie below index below,
// so that the log itself obeys a retention period. It first stores a
// signed prune note with the tree hashes needed to keep verifying the
// rest, then records an "audit.prune" event. It returns the index of the
// first record kept. A negative below is refused with [ErrBadIndex]; a
// below that frees no whole segment deletes nothing and records nothing.
func (l *FileLog) Prune(ctx context.Context, below int64) (int64, error) {
	if below < 0 {
		return 0, errtext.Errorf("audit: prune below %d: %w", below, ErrBadIndex)
	}
	res, err := l.do(ctx, &request{kind: reqPrune, below: below})
	if err != nil || !res.pruned {
		return res.index, err
	}
	return res.index, l.Log(ctx, pruneEvent(res.index))
}

// Close writes a final checkpoint, closes the files and releases the
// lock. Log calls after Close return [ErrLogClosed]. Close on a nil
// *FileLog, or on one that Open did not return, returns ErrLogClosed too.
func (l *FileLog) Close() error {
	if !l.opened() {
		return ErrLogClosed
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrLogClosed
	}
	l.closed = true
	r := &request{kind: reqClose, done: make(chan result, 1)}
	l.reqs <- r
	l.mu.Unlock()
	res := <-r.done
	<-l.exited
	return res.err
}

// flockRetry takes the directory's exclusive lock. A lock just released
// by a Close in this process can still be held for a moment by a child
// forked (for exec) by another goroutine: the child shares the lock's
// open file description until it execs. So a busy lock is tried again
// for up to 250 ms before it counts as held by another process.
func flockRetry(f *os.File) error {
	const tries, pause = 25, 10 * time.Millisecond
	var err error
	for i := 0; i < tries; i++ {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		time.Sleep(pause)
	}
	return err
}

// opened reports whether l is a log that Open returned: not nil, not a
// zero FileLog.
func (l *FileLog) opened() bool { return l != nil && l.reqs != nil }

func (l *FileLog) closeFiles() {
	if l.stopTick != nil {
		l.stopTick()
	}
	if l.seg != nil {
		l.seg.Close()
	}
	if l.cpf != nil {
		l.cpf.Close()
	}
	if l.lock != nil {
		l.lock.Close() // releases the flock
	}
}

const maxBatch = 1024

func (l *FileLog) writer(tick <-chan time.Time) {
	defer close(l.exited)
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case <-tick:
			if l.err == nil {
				_, l.err = l.checkpoint()
			}
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		drain:
			for len(batch) < maxBatch {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			if l.handle(batch) {
				return
			}
		}
	}
}

// handle processes a batch in order: runs of events are written with one
// fsync; control requests run between them. It reports whether the log
// closed.
func (l *FileLog) handle(batch []*request) bool {
	for len(batch) > 0 {
		n := 0
		for n < len(batch) && batch[n].kind == reqEvent {
			n++
		}
		if n > 0 {
			err := l.err
			if err == nil {
				err = l.append(batch[:n])
				l.err = err
			}
			for _, r := range batch[:n] {
				r.done <- result{err: err, index: -1}
			}
			batch = batch[n:]
			continue
		}
		r := batch[0]
		batch = batch[1:]
		var res result
		switch r.kind {
		case reqCheckpoint:
			res.err = l.err
			if res.err == nil {
				res.cp, res.err = l.checkpoint()
			}
		case reqPrune:
			res.err = l.err
			if res.err == nil {
				before := l.min
				res.index, res.err = l.prune(r.below)
				res.pruned = res.err == nil && res.index > before
			}
		case reqClose:
			res.err = l.err
			if res.err == nil {
				_, res.err = l.checkpoint()
			}
			if res.err == nil {
				if err := l.seg.Sync(); err != nil {
					res.err = err
				}
			}
			l.closeFiles()
			// Fail whatever is still queued (nothing can be: Close
			// holds the lock while sending).
			for _, q := range batch {
				q.done <- result{err: ErrLogClosed}
			}
			r.done <- res
			return true
		}
		if res.err != nil {
			l.err = res.err
		}
		r.done <- res
	}
	return false
}

func (l *FileLog) append(rs []*request) error {
	if l.segLen >= l.cfg.SegmentSize {
		if err := l.seg.Sync(); err != nil {
			return errtext.Errorf("audit: write: %w", err)
		}
		l.seg.Close()
		if err := l.openSegment(l.tree.Size()); err != nil {
			return err
		}
	}
	buf := l.buf[:0]
	for _, r := range rs {
		buf = frame.Append(buf, uint64(l.tree.Size()), r.payload)
		if err := l.tree.AppendHash(r.leaf); err != nil {
			return errtext.Errorf("audit: write: %w", err)
		}
	}
	l.buf = buf
	if _, err := l.seg.Write(buf); err != nil {
		return errtext.Errorf("audit: write: %w", err)
	}
	l.segLen += int64(len(buf))
	if err := l.seg.Sync(); err != nil {
		return errtext.Errorf("audit: write: %w", err)
	}
	return nil
}

func (l *FileLog) checkpoint() (Checkpoint, error) {
	root, err := l.tree.Root()
	if err != nil {
		return Checkpoint{}, errtext.Errorf("audit: checkpoint: %w", err)
	}
	msg, err := logfmt.SignCheckpoint(l.cfg.Signer.s, l.tree.Size(), root, l.now())
	if err != nil {
		return Checkpoint{}, errtext.Errorf("audit: checkpoint: %w", err)
	}
	if _, err := l.cpf.Write(frame.Append(nil, l.cpSeq, msg)); err != nil {
		return Checkpoint{}, errtext.Errorf("audit: checkpoint: %w", err)
	}
	if err := l.cpf.Sync(); err != nil {
		return Checkpoint{}, errtext.Errorf("audit: checkpoint: %w", err)
	}
	l.cpSeq++
	c, err := logfmt.OpenCheckpoint(msg, l.cfg.Signer.Verifier())
	if err != nil {
		return Checkpoint{}, errtext.Errorf("audit: checkpoint: %w", err)
	}
	l.latest = publicCheckpoint(&c)
	return l.latest, nil
}

func (l *FileLog) prune(below int64) (int64, error) {
	// The new minimum is the first index of the last segment that starts
	// at or below below; the active segment is never deleted.
	min := l.min
	for _, s := range l.segs {
		if s.First <= below && s.First <= l.segFirst {
			min = s.First
		}
	}
	if min <= l.min {
		return l.min, nil
	}
	f, ok := l.frontiers[min]
	if !ok {
		return 0, fmt.Errorf("audit: prune: no tree state at %d", min)
	}
	msg, err := logfmt.SignPrune(l.cfg.Signer.s, min, f)
	if err != nil {
		return 0, errtext.Errorf("audit: prune: %w", err)
	}
	tmp := filepath.Join(l.dir, logfmt.PruneName+".tmp")
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return 0, errtext.Errorf("audit: prune: %w", err)
	}
	if err := fsyncFile(tmp); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, logfmt.PruneName)); err != nil {
		return 0, errtext.Errorf("audit: prune: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return 0, err
	}
	l.min = min
	kept := l.segs[:0]
	for _, s := range l.segs {
		if s.First < min {
			if err := os.Remove(filepath.Join(l.dir, s.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return 0, errtext.Errorf("audit: prune: %w", err)
			}
			delete(l.frontiers, s.First)
			continue
		}
		kept = append(kept, s)
	}
	l.segs = kept
	return min, syncDir(l.dir)
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errtext.Errorf("audit: sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return errtext.Errorf("audit: sync: %w", err)
	}
	return nil
}

// ErrBadIndex reports a negative record index, such as a prune point
// below zero.
var ErrBadIndex = errors.New("audit: negative record index")
