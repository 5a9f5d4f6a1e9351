package main

import (
	"context"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tomkit/tomkit/audit"
)

// progress shows how far a long operation has got on standard error: a
// bar with the rate and an ETA when the total is known, a counter with the
// rate and the elapsed time when it is not. Only the CLI shows progress;
// the library packages have no such dependency.
//
// A nil *progress is valid and shows nothing: newProgress returns nil
// unless standard error is a terminal, so scripts, pipes, log files and
// tests see no progress output at all.
type progress struct {
	bar      *progressbar.ProgressBar
	total, n int64 // total is -1 when unknown
	finished bool
}

// Units of a progress total.
const (
	unitBytes = iota
	unitItems
)

// newProgress returns the progress of the operation desc over total units
// (-1 when the total is unknown) on e's standard error, or nil when that
// is not a terminal.
func newProgress(e env, desc string, total int64, unit int) *progress {
	return newProgressTo(e.stderr, isTerminal(e.stderr), desc, total, unit)
}

// newProgressTo is newProgress on w, which is a terminal if terminal is
// true; it returns nil if it is not.
func newProgressTo(w io.Writer, terminal bool, desc string, total int64, unit int) *progress {
	if !terminal {
		return nil
	}
	if total == 0 {
		total = -1
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		// No ticker goroutine: the bar is drawn only when progress is
		// reported.
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if unit == unitBytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("objects"))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...), total: total}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// add reports n more units done. Progress past the total (a log that
// grew while it was read) is not shown.
func (p *progress) add(n int64) {
	if p == nil || p.finished || n <= 0 {
		return
	}
	if p.total > 0 && p.n+n > p.total {
		n = p.total - p.n
	}
	if n <= 0 {
		return
	}
	p.n += n
	_ = p.bar.Add64(n)
}

// done removes the bar from the terminal. Call it once the operation has
// ended, whether it succeeded or not, and before printing its result.
func (p *progress) done() {
	if p == nil || p.finished {
		return
	}
	p.finished = true
	_ = p.bar.Clear()
	_ = p.bar.Exit()
}

// reader returns r, counting what is read from it as progress.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(int64(n))
	return n, err
}

// inputSize returns the number of bytes left to read in r when it is a
// regular file, and -1 otherwise (a pipe, a terminal).
func inputSize(r io.Reader) int64 {
	f, ok := r.(*os.File)
	if !ok {
		return -1
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return -1
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || off > fi.Size() {
		return -1
	}
	return fi.Size() - off
}

// streamProgress returns the progress of reading in, with its size as the
// total when it is a regular file.
func streamProgress(e env, desc string, in io.Reader) *progress {
	return newProgress(e, desc, inputSize(in), unitBytes)
}

// fsProgress is an fs.FS that counts the bytes read from its files as
// progress; it lets the CLI show the progress of audit.VerifyFS, which
// has no hook of its own.
type fsProgress struct {
	fsys fs.FS
	p    *progress
}

// dirProgress returns the file system of the directory dir, with the
// progress of reading it, whose total is the size of its files.
func dirProgress(e env, desc, dir string) (fs.FS, *progress) {
	return dirProgressTo(e.stderr, isTerminal(e.stderr), desc, dir)
}

// dirProgressTo is dirProgress on w, which is a terminal if terminal is
// true.
func dirProgressTo(w io.Writer, terminal bool, desc, dir string) (fs.FS, *progress) {
	fsys := os.DirFS(dir)
	if !terminal {
		return fsys, nil
	}
	var total int64
	if ents, err := fs.ReadDir(fsys, "."); err == nil {
		for _, ent := range ents {
			if fi, err := ent.Info(); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
	}
	p := newProgressTo(w, true, desc, total, unitBytes)
	return fsProgress{fsys, p}, p
}

func (f fsProgress) Open(name string) (fs.File, error) {
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	return &progressFile{file, f.p}, nil
}

func (f fsProgress) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.fsys, name) }

func (f fsProgress) Stat(name string) (fs.FileInfo, error) { return fs.Stat(f.fsys, name) }

type progressFile struct {
	fs.File
	p *progress
}

func (f *progressFile) Read(b []byte) (int, error) {
	n, err := f.File.Read(b)
	f.p.add(int64(n))
	return n, err
}

// logger returns l, counting the objects of every retention.purge.batch
// event it records as progress; it lets the CLI show the progress of
// retention.Store.Purge, which has no hook of its own. It returns l itself
// when p is nil.
func (p *progress) logger(l audit.Logger) audit.Logger {
	if p == nil {
		return l
	}
	return progressLogger{l, p}
}

type progressLogger struct {
	audit.Logger
	p *progress
}

func (l progressLogger) Log(ctx context.Context, ev audit.Event) error {
	err := l.Logger.Log(ctx, ev)
	if err == nil && ev.Action == "retention.purge.batch" {
		for _, a := range ev.Attributes {
			if a.Key == "deleted" {
				if n, perr := strconv.ParseInt(a.Value, 10, 64); perr == nil {
					l.p.add(n)
				}
			}
		}
	}
	return err
}
