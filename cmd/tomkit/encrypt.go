package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tomkit/tomkit/crypto/envelope"
)

// contextFlag collects repeated --context k=v flags.
type contextFlag envelope.Context

func (c contextFlag) String() string { return "" }

func (c contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if _, dup := c[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	c[k] = v
	return nil
}

// cryptIO sizes: the plaintext held back before the first write to
// standard output by decrypt, and the I/O buffers.
const (
	decryptHoldBack = 2 << 20
	cryptBuffer     = 256 << 10
)

// parseCrypt parses the flags shared by encrypt, decrypt and keys rewrap.
// Like parseKeys, it returns nil when the command is to stop with code.
func parseCrypt(e env, name string, args []string) (*keyFlags, envelope.Context, int) {
	return parseCryptSpill(e, name, args, nil)
}

// parseCryptSpill is parseCrypt that, with spillDir non-nil, also takes
// --spill-dir (decrypt).
func parseCryptSpill(e env, name string, args []string, spillDir *string) (*keyFlags, envelope.Context, int) {
	fs, k := newKeyFlags(e, name, "default")
	ec := contextFlag{}
	fs.Var(ec, "context", "bind the encryption context entry `key=value` (repeatable)")
	spillUsage := ""
	if spillDir != nil {
		fs.StringVar(spillDir, "spill-dir", "", "hold plaintext past the first 2 MiB, encrypted, in an unlinked temporary file in `DIR` when standard output is not a regular file (default: the system temporary directory)")
		spillUsage = " [--spill-dir DIR]"
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tomkit %s --keyset FILE [--tenant T] [--subject S] [--context k=v]...%s < in > out\n", name, spillUsage)
		if spillDir != nil {
			fmt.Fprint(fs.Output(), decryptGuarantee)
		}
		fs.PrintDefaults()
	}
	if code, done := parseFlags(e, fs, args); done {
		return nil, nil, code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "tomkit %s: unexpected arguments %q\n", name, fs.Args())
		return nil, nil, exitUsage
	}
	if k.keyset == "" {
		fmt.Fprintf(e.stderr, "tomkit %s: --keyset is required\n", name)
		return nil, nil, exitUsage
	}
	if err := k.sink.check(); err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		return nil, nil, exitUsage
	}
	return k, envelope.Context(ec), exitOK
}

// decryptGuarantee is the promise decrypt's usage text makes.
const decryptGuarantee = `
When decryption fails (changed, truncated or foreign ciphertext, wrong key
or context) decrypt exits 1 and leaves no plaintext at all on standard
output, be it a file or a pipe. Into a regular file it writes as it goes
and truncates the file back on failure. Into anything else (pipe, socket,
terminal) it writes nothing until the whole stream has authenticated: it
holds the first 2 MiB in memory and the rest in an encrypted, unlinked
temporary file in --spill-dir, so a pipe past 2 MiB costs a temporary file
as large as the plaintext, and reading it twice.

`

func openEnvelope(ctx context.Context, e env, name string, k *keyFlags) (*envelope.Envelope, *auditSink, bool) {
	r, sink, ok := openRing(ctx, e, name, k)
	if !ok {
		return nil, nil, false
	}
	env, err := envelope.New(r.KEK(k.scope()), envelope.Config{Logger: sink})
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		sink.finish(e, name, exitFailure)
		return nil, nil, false
	}
	return env, sink, true
}

// runEncrypt implements `tomkit encrypt`: standard input to standard
// output, streaming, in constant memory.
func runEncrypt(ctx context.Context, e env, args []string) (code int) {
	k, ec, code := parseCrypt(e, "encrypt", args)
	if k == nil {
		return code
	}
	ctx = k.ctx(ctx)
	env, sink, ok := openEnvelope(ctx, e, "encrypt", k)
	if !ok {
		return exitFailure
	}
	defer func() { code = sink.finish(e, "encrypt", code) }()
	bar := streamProgress(e, "encrypt", e.stdin)
	defer bar.done()
	out := bufio.NewWriterSize(e.stdout, cryptBuffer)
	w, err := env.Encrypt(ctx, out, ec)
	if err == nil {
		buf := make([]byte, cryptBuffer)
		_, err = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{bar.reader(e.stdin)}, buf)
		if err == nil {
			err = w.Close()
		}
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit encrypt: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// runDecrypt implements `tomkit decrypt`. Standard output receives no
// plaintext at all when decryption fails, whatever it is: decrypt reports
// the reason on standard error and exits 1. The stream is checked
// segment by segment, but a cut at a segment boundary shows only at its
// end, so decrypt releases plaintext as follows:
//
//   - into a regular file it writes as it goes (after the first 2 MiB),
//     and truncates the file back to where it started on failure;
//   - into anything else (a pipe, socket or terminal, which cannot be
//     taken back) it holds the first 2 MiB in memory and spills the rest
//     to a temporary file in --spill-dir (see spill): unlinked at once,
//     mode 0600, sealed under a key that only this process holds. Once
//     the whole stream has been authenticated it writes the held bytes,
//     then the spill. A spill file changed on disk fails with its own
//     message, and nothing is written (spill.release says when that
//     cannot hold).
//
// Memory stays constant: the 2 MiB hold-back and a few buffers of at most
// 256 KiB. A pipe past 2 MiB costs a temporary file as large as the
// plaintext, and the spill is read twice (authenticate, then write).
func runDecrypt(ctx context.Context, e env, args []string) (code int) {
	var spillDir string
	k, ec, code := parseCryptSpill(e, "decrypt", args, &spillDir)
	if k == nil {
		return code
	}
	ctx = k.ctx(ctx)
	env, sink, ok := openEnvelope(ctx, e, "decrypt", k)
	if !ok {
		return exitFailure
	}
	defer func() { code = sink.finish(e, "decrypt", code) }()
	bar := streamProgress(e, "decrypt", e.stdin)
	defer bar.done()
	var start int64 = -1
	if f, ok := e.stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				start = off
			}
		}
	}
	var sp *spill
	defer func() {
		if sp != nil {
			sp.Close()
		}
	}()
	fail := func(err error) int {
		if errors.Is(err, errSpillCorrupt) {
			fmt.Fprintf(e.stderr, "tomkit decrypt: %v; the ciphertext itself authenticated, so decrypting again may succeed\n", err)
		} else {
			fmt.Fprintf(e.stderr, "tomkit decrypt: %v\n", err)
		}
		if start >= 0 {
			f := e.stdout.(*os.File)
			if terr := f.Truncate(start); terr != nil {
				fmt.Fprintf(e.stderr, "tomkit decrypt: could not remove partial output: %v\n", terr)
			}
		}
		return exitFailure
	}
	r, err := env.Decrypt(ctx, bufio.NewReaderSize(bar.reader(e.stdin), cryptBuffer), ec)
	if err != nil {
		return fail(err)
	}
	hb := &holdBack{buf: make([]byte, 0, decryptHoldBack)}
	if start >= 0 {
		// A regular file can be truncated back: write through.
		hb.overflow = func(head []byte) (io.Writer, error) {
			if _, err := e.stdout.Write(head); err != nil {
				return nil, err
			}
			return e.stdout, nil
		}
	} else {
		hb.overflow = func([]byte) (io.Writer, error) {
			var err error
			sp, err = newSpill(spillDir)
			if err != nil {
				return nil, err
			}
			return sp, nil
		}
	}
	if _, err := io.CopyBuffer(hb, struct{ io.Reader }{r}, make([]byte, cryptBuffer)); err != nil {
		return fail(err)
	}
	bar.done()
	// The whole stream is authentic: release what was held.
	switch {
	case sp != nil:
		err = sp.release(e.stdout, hb.buf)
	case hb.rest == nil && len(hb.buf) > 0:
		_, err = e.stdout.Write(hb.buf)
	}
	if err != nil {
		return fail(err)
	}
	return exitOK
}

// holdBack keeps the first cap(buf) bytes written to it. When they
// overflow it calls overflow once, with the bytes kept so far, and
// sends everything after them to the writer it returns.
type holdBack struct {
	buf      []byte
	overflow func(head []byte) (io.Writer, error)
	rest     io.Writer
}

func (h *holdBack) Write(p []byte) (int, error) {
	if h.rest != nil {
		return h.rest.Write(p)
	}
	if len(h.buf)+len(p) <= cap(h.buf) {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	w, err := h.overflow(h.buf)
	if err != nil {
		return 0, err
	}
	h.rest = w
	return w.Write(p)
}
