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

func parseCrypt(e env, name string, args []string) (*keyFlags, envelope.Context, bool) {
	fs, k := newKeyFlags(e, name, "default")
	ec := contextFlag{}
	fs.Var(ec, "context", "bind the encryption context entry `key=value` (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: tomkit %s --keyset FILE [--tenant T] [--subject S] [--context k=v]... < in > out\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "tomkit %s: unexpected arguments %q\n", name, fs.Args())
		return nil, nil, false
	}
	if k.keyset == "" {
		fmt.Fprintf(e.stderr, "tomkit %s: --keyset is required\n", name)
		return nil, nil, false
	}
	return k, envelope.Context(ec), true
}

func openEnvelope(ctx context.Context, e env, name string, k *keyFlags) (*envelope.Envelope, func(), bool) {
	r, log, closeLog, ok := openRing(ctx, e, name, k)
	if !ok {
		return nil, nil, false
	}
	env, err := envelope.New(r.KEK(k.scope()), envelope.Config{Audit: log})
	if err != nil {
		closeLog()
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		return nil, nil, false
	}
	return env, closeLog, true
}

// runEncrypt implements `tomkit encrypt`: standard input to standard
// output, streaming, in constant memory.
func runEncrypt(ctx context.Context, e env, args []string) int {
	k, ec, ok := parseCrypt(e, "encrypt", args)
	if !ok {
		return exitUsage
	}
	ctx = k.ctx(ctx)
	env, done, ok := openEnvelope(ctx, e, "encrypt", k)
	if !ok {
		return exitFailure
	}
	defer done()
	out := bufio.NewWriterSize(e.stdout, cryptBuffer)
	w, err := env.Encrypt(ctx, out, ec)
	if err == nil {
		buf := make([]byte, cryptBuffer)
		_, err = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{e.stdin}, buf)
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

// runDecrypt implements `tomkit decrypt`. It writes only authenticated
// plaintext, and none at all when anything fails in the first 2 MiB (the
// hold-back buffer) or in the header, key or context. A longer stream
// that fails later has had its earlier, authenticated, segments written;
// when standard output is a regular file it is truncated back, so a
// failed decryption leaves no plaintext there either. Either way decrypt
// exits 1.
func runDecrypt(ctx context.Context, e env, args []string) int {
	k, ec, ok := parseCrypt(e, "decrypt", args)
	if !ok {
		return exitUsage
	}
	ctx = k.ctx(ctx)
	env, done, ok := openEnvelope(ctx, e, "decrypt", k)
	if !ok {
		return exitFailure
	}
	defer done()
	var start int64 = -1
	if f, ok := e.stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				start = off
			}
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "tomkit decrypt: %v\n", err)
		if start >= 0 {
			f := e.stdout.(*os.File)
			if terr := f.Truncate(start); terr != nil {
				fmt.Fprintf(e.stderr, "tomkit decrypt: could not remove partial output: %v\n", terr)
			}
		}
		return exitFailure
	}
	r, err := env.Decrypt(ctx, bufio.NewReaderSize(e.stdin, cryptBuffer), ec)
	if err != nil {
		return fail(err)
	}
	hb := &holdBack{w: e.stdout, buf: make([]byte, 0, decryptHoldBack)}
	if _, err := io.CopyBuffer(hb, struct{ io.Reader }{r}, make([]byte, cryptBuffer)); err != nil {
		return fail(err)
	}
	if err := hb.flush(); err != nil {
		return fail(err)
	}
	return exitOK
}

// holdBack buffers the first bytes written to it, and passes everything
// through once the buffer is full.
type holdBack struct {
	w       io.Writer
	buf     []byte
	passing bool
}

func (h *holdBack) Write(p []byte) (int, error) {
	if h.passing {
		return h.w.Write(p)
	}
	if len(h.buf)+len(p) <= cap(h.buf) {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	if err := h.flush(); err != nil {
		return 0, err
	}
	h.passing = true
	return h.w.Write(p)
}

func (h *holdBack) flush() error {
	if len(h.buf) == 0 {
		return nil
	}
	_, err := h.w.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}
