package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/crypto/envelope"
)

func TestEncryptDecrypt(t *testing.T) {
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitOK {
		t.Fatalf("init: %s", errOut)
	}
	pt := bytes.Repeat([]byte("confidential "), 20000) // 260 kB, several segments
	code, ct, errOut := runCLIBytes(t, pt, "encrypt", "--keyset", ks, "--context", "tenant=default", "--context", "object=7")
	if code != exitOK || len(ct) <= len(pt) {
		t.Fatalf("encrypt: %d %q", code, errOut)
	}
	code, got, errOut := runCLIBytes(t, ct, "decrypt", "--keyset", ks, "--context", "object=7", "--context", "tenant=default")
	if code != exitOK || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %d, %d bytes, %q", code, len(got), errOut)
	}
	// Every failure exits 1 and writes nothing to standard output.
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-100] ^= 1
	bad := []struct {
		name string
		in   []byte
		args []string
	}{
		{"wrong context", ct, []string{"--context", "object=8", "--context", "tenant=default"}},
		{"missing context", ct, []string{"--context", "object=7"}},
		{"flipped byte in last segment", flipped, []string{"--context", "object=7", "--context", "tenant=default"}},
		{"truncated", ct[:len(ct)-17], []string{"--context", "object=7", "--context", "tenant=default"}},
		{"empty", nil, nil},
		{"garbage", []byte("hello"), nil},
		{"other tenant", ct, []string{"--tenant", "other", "--context", "object=7", "--context", "tenant=default"}},
	}
	for _, b := range bad {
		code, out, errOut := runCLIBytes(t, b.in, append([]string{"decrypt", "--keyset", ks}, b.args...)...)
		if code != exitFailure || len(out) != 0 || !strings.HasPrefix(errOut, "") || !strings.Contains(errOut, "tomkit decrypt:") {
			t.Errorf("%s: code %d, %d bytes out, stderr %q", b.name, code, len(out), errOut)
		}
	}
	for _, args := range [][]string{
		{"encrypt"},
		{"encrypt", "--keyset", ks, "--context", "novalue"},
		{"encrypt", "--keyset", ks, "--context", "a=1", "--context", "a=2"},
		{"decrypt", "--keyset", ks, "extra"},
	} {
		if code, _, _ := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%v: code %d, want %d", args, code, exitUsage)
		}
	}
}

// TestDecryptTruncatesFileOutput checks that a stream failing after the
// hold-back buffer leaves no plaintext in a regular output file.
func TestDecryptTruncatesFileOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10 MiB")
	}
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitOK {
		t.Fatalf("init: %s", errOut)
	}
	pt := bytes.Repeat([]byte{'p'}, decryptHoldBack+(2<<20))
	code, ct, errOut := runCLIBytes(t, pt, "encrypt", "--keyset", ks)
	if code != exitOK {
		t.Fatal(errOut)
	}
	ct[len(ct)-1] ^= 1
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("kept\n")
	var errb bytes.Buffer
	code = run(context.Background(), env{bytes.NewReader(ct), f, &errb}, []string{"decrypt", "--keyset", ks})
	if code != exitFailure {
		t.Fatalf("code %d", code)
	}
	got, _ := os.ReadFile(f.Name())
	if string(got) != "kept\n" {
		t.Fatalf("output file holds %d bytes after a failed decryption", len(got))
	}
}

// decryptToPipe runs decrypt with standard output a pipe, and returns
// the exit code, every byte read from the pipe and standard error.
func decryptToPipe(t *testing.T, ct []byte, args ...string) (int, []byte, string) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		got <- b
	}()
	var errb bytes.Buffer
	code := run(context.Background(), env{bytes.NewReader(ct), pw, &errb}, append([]string{"decrypt"}, args...))
	pw.Close()
	return code, <-got, errb.String()
}

// TestDecryptPipeNoPlaintextOnFailure checks that a stream longer than
// the hold-back buffer that fails late puts no byte into a pipe, and
// that an intact one goes through it exactly, leaving no spill file.
func TestDecryptPipeNoPlaintextOnFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("decrypts 5 MiB streams")
	}
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitOK {
		t.Fatalf("init: %s", errOut)
	}
	pt := make([]byte, decryptHoldBack+3<<20+1234)
	rand.Read(pt)
	code, ct, errOut := runCLIBytes(t, pt, "encrypt", "--keyset", ks, "--context", "object=1")
	if code != exitOK {
		t.Fatal(errOut)
	}
	seg := envelope.DefaultSegmentSize
	nseg := len(pt)/seg + 1
	hl := len(ct) - len(pt) - nseg*16 // header length
	// A cut after the second-to-last segment: every segment left is
	// authentic, and more than the hold-back buffer of plaintext precedes
	// the cut.
	cut := hl + (nseg-1)*(seg+16)
	if (nseg-1)*seg <= decryptHoldBack {
		t.Fatal("test stream too short")
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1

	spillDir := t.TempDir()
	args := []string{"--keyset", ks, "--context", "object=1", "--spill-dir", spillDir}
	for _, c := range []struct {
		name, why string
		ct        []byte
	}{
		{"last byte flipped", "authentication failed", flipped},
		{"truncated at a segment boundary", "truncated", ct[:cut]},
	} {
		code, out, errOut := decryptToPipe(t, c.ct, args...)
		if code != exitFailure || len(out) != 0 || !strings.Contains(errOut, c.why) {
			t.Errorf("%s: code %d, %d bytes read from the pipe, stderr %q", c.name, code, len(out), errOut)
		}
	}
	code, out, errOut := decryptToPipe(t, ct, args...)
	if code != exitOK || !bytes.Equal(out, pt) {
		t.Fatalf("intact: code %d, %d of %d bytes, stderr %q", code, len(out), len(pt), errOut)
	}
	if ents, _ := os.ReadDir(spillDir); len(ents) != 0 {
		t.Fatalf("spill directory not empty: %v", ents)
	}
	// A pipe past the hold-back needs the spill directory...
	code, out, errOut = decryptToPipe(t, ct, "--keyset", ks, "--context", "object=1", "--spill-dir", filepath.Join(spillDir, "missing"))
	if code != exitFailure || len(out) != 0 || !strings.Contains(errOut, "spill") {
		t.Fatalf("missing spill dir into a pipe: code %d, %d bytes, stderr %q", code, len(out), errOut)
	}
	// ...a regular file does not spill at all.
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errb bytes.Buffer
	code = run(context.Background(), env{bytes.NewReader(ct), f, &errb}, []string{"decrypt", "--keyset", ks, "--context", "object=1", "--spill-dir", filepath.Join(spillDir, "missing")})
	if got, _ := os.ReadFile(f.Name()); code != exitOK || !bytes.Equal(got, pt) {
		t.Fatalf("into a file: code %d, %d bytes, stderr %q", code, len(got), errb.String())
	}
}

// TestKeysRewrap rotates, rewraps a stream from the shell and retires
// the old key: the rewrapped ciphertext still decrypts, the payload bytes
// are unchanged, and the old one no longer decrypts.
func TestKeysRewrap(t *testing.T) {
	ks := keysEnv(t)
	if code, _, errOut := runCLI(t, "", "keys", "init", "--keyset", ks); code != exitOK {
		t.Fatalf("init: %s", errOut)
	}
	pt := bytes.Repeat([]byte("rewrap me "), 30000)
	_, ct, _ := runCLIBytes(t, pt, "encrypt", "--keyset", ks, "--context", "id=1")
	if code, _, errOut := runCLI(t, "", "keys", "rotate", "--keyset", ks); code != exitOK {
		t.Fatalf("rotate: %s", errOut)
	}
	if code, _, _ := runCLIBytes(t, ct, "keys", "rewrap", "--keyset", ks, "--context", "id=2"); code != exitFailure {
		t.Fatalf("rewrap with the wrong context: code %d", code)
	}
	code, re, errOut := runCLIBytes(t, ct, "keys", "rewrap", "--keyset", ks, "--context", "id=1")
	if code != exitOK || len(re) != len(ct) {
		t.Fatalf("rewrap: %d, %d bytes, %q", code, len(re), errOut)
	}
	hl := 88 + 60
	if bytes.Equal(re[:hl], ct[:hl]) || !bytes.Equal(re[hl:], ct[hl:]) {
		t.Fatal("rewrap must change the header and nothing else")
	}
	if code, _, errOut := runCLI(t, "", "keys", "retire", "--keyset", ks, "--min-version", "2"); code != exitOK {
		t.Fatalf("retire: %s", errOut)
	}
	if code, got, errOut := runCLIBytes(t, re, "decrypt", "--keyset", ks, "--context", "id=1"); code != exitOK || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt rewrapped: %d %q", code, errOut)
	}
	if code, got, errOut := runCLIBytes(t, ct, "decrypt", "--keyset", ks, "--context", "id=1"); code != exitFailure || len(got) != 0 || !strings.Contains(errOut, "retired") {
		t.Fatalf("decrypt retired: %d, %d bytes, %q", code, len(got), errOut)
	}
}
