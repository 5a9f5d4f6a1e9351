package main

import (
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// TestProgressSilentWhenNotATerminal: progress is shown only on a
// terminal. A buffer, a pipe or a file gets no progress object at all, and
// the wrappers hand back what they were given.
func TestProgressSilentWhenNotATerminal(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, w := range map[string]io.Writer{"buffer": &bytes.Buffer{}, "pipe": pw, "file": file, "discard": io.Discard} {
		if isTerminal(w) {
			t.Errorf("%s: isTerminal is true", name)
		}
		e := env{strings.NewReader(""), io.Discard, w}
		p := newProgress(e, "encrypt", 10, unitBytes)
		if p != nil {
			t.Errorf("%s: newProgress returned a progress", name)
		}
		r := strings.NewReader("data")
		if got := p.reader(r); got != io.Reader(r) {
			t.Errorf("%s: reader wrapped its input", name)
		}
		var l audit.Recorder
		if got := p.logger(&l); got != audit.Logger(&l) {
			t.Errorf("%s: logger wrapped its logger", name)
		}
		if fsys, p := dirProgress(e, "verify", t.TempDir()); p != nil {
			t.Errorf("%s: dirProgress returned a progress for %T", name, fsys)
		}
		p.add(5) // a nil progress does nothing
		p.done()
	}
}

// TestCommandsSilentWhenNotATerminal runs the long operations with
// standard error a file: it gets nothing but what the commands print
// anyway (here, nothing: the audit events go to a file).
func TestCommandsSilentWhenNotATerminal(t *testing.T) {
	t.Setenv(kms.MasterKeyEnv, kms.GenerateMasterKey())
	dir := t.TempDir()
	ks := filepath.Join(dir, "keys.json")
	events := filepath.Join(dir, "events.jsonl")
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
		var out bytes.Buffer
		if code := run(context.Background(), env{bytes.NewReader(stdin), &out, stderr}, append(args, "--audit-log", events)); code != exitOK {
			b, _ := os.ReadFile(stderr.Name())
			t.Fatalf("%v: code %d, stderr %q", args, code, b)
		}
		if b, _ := os.ReadFile(stderr.Name()); len(b) != 0 {
			t.Fatalf("%v: stderr %q, want nothing", args, b)
		}
		return out.Bytes()
	}
	run(nil, "keys", "init", "--keyset", ks)
	plain := bytes.Repeat([]byte("tomkit "), 100000)
	ct := run(plain, "encrypt", "--keyset", ks)
	ct = run(ct, "keys", "rewrap", "--keyset", ks)
	if got := run(ct, "decrypt", "--keyset", ks); !bytes.Equal(got, plain) {
		t.Fatal("round trip changed the data")
	}
	store := t.TempDir()
	if _, err := fsstore.Open(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	run(nil, "retention", "purge", "--dir", store)
}

// TestProgressWriter drives the progress writer with the terminal flag
// forced: it draws the description, the percentage and the remaining-time
// estimate, counts what passes through the reader, and clears its line
// when done.
func TestProgressWriter(t *testing.T) {
	var w bytes.Buffer
	p := newProgressTo(&w, true, "encrypt", 1000, unitBytes)
	if p == nil {
		t.Fatal("no progress on a terminal")
	}
	data := bytes.Repeat([]byte{'x'}, 1000)
	got, err := io.ReadAll(iotest.OneByteReader(p.reader(bytes.NewReader(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reader changed the data: %v", err)
	}
	if p.n != 1000 {
		t.Fatalf("counted %d bytes, want 1000", p.n)
	}
	out := w.String()
	for _, want := range []string{"encrypt", "%", "|", "[0s:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	// Past the total (a file that grew) is not counted.
	p.add(10)
	if p.n != 1000 {
		t.Fatalf("counted %d bytes past the total", p.n)
	}
	p.done()
	if !strings.HasSuffix(w.String(), "\r") {
		t.Errorf("done did not clear the line: %q", w.String()[max(0, w.Len()-20):])
	}
	n := w.Len()
	p.add(1)
	p.done()
	if w.Len() != n {
		t.Errorf("a finished progress still writes: %q", w.String()[n:])
	}
}

// TestProgressUnknownTotal: with no total (a pipe, a purge) it counts and
// shows the rate, without a bar.
func TestProgressUnknownTotal(t *testing.T) {
	var w bytes.Buffer
	p := newProgressTo(&w, true, "purge", -1, unitItems)
	var rec audit.Recorder
	l := p.logger(&rec)
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "s", Tenant: "t"})
	for _, n := range []string{"3", "4"} {
		if err := l.Log(ctx, audit.Event{Action: "retention.purge.batch", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.String("deleted", n)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Log(ctx, audit.Event{Action: "retention.purge", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.String("deleted", "7")}}); err != nil {
		t.Fatal(err)
	}
	if p.n != 7 {
		t.Fatalf("counted %d objects, want 7 (the batches only)", p.n)
	}
	if len(rec.Events()) != 3 {
		t.Fatalf("the logger recorded %d events, want 3", len(rec.Events()))
	}
	if out := w.String(); !strings.Contains(out, "purge") || !strings.Contains(out, "objects") {
		t.Errorf("output %q", out)
	}
	p.done()
}

// TestProgressVerifyFS: the file system wrapper counts every byte of the
// log that verification reads, against the size of the directory.
func TestProgressVerifyFS(t *testing.T) {
	dir, _, verifier := auditFixture(t)
	vkey, err := readVerifier(verifier)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	fsys, p := dirProgressTo(&w, true, "verify", dir)
	rep, err := audit.VerifyFS(context.Background(), fsys, v)
	if err != nil || rep.Size != 3 {
		t.Fatalf("verify through the progress file system: %+v, %v", rep, err)
	}
	if p.total <= 0 || p.n != p.total {
		t.Fatalf("read %d of %d bytes", p.n, p.total)
	}
	if !strings.Contains(w.String(), "verify") {
		t.Fatalf("output %q", w.String())
	}
	p.done()
}

// TestProgressLibraryOnlyInCLI: only the CLI may import the progress
// library (and the terminal package it needs); the library packages stay
// free of it.
func TestProgressLibraryOnlyInCLI(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"github.com/schollz/progressbar", "golang.org/x/term"}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == filepath.Join("cmd", "tomkit") || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			for _, b := range banned {
				if p := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(p, b) {
					t.Errorf("%s imports %s: only cmd/tomkit may show progress", rel, p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
