package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), env{strings.NewReader(stdin), &out, &errb}, args)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "tomkit ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
	if code, _, _ := runCLI(t, "", "version", "extra"); code != exitUsage {
		t.Fatalf("version extra: code %d, want %d", code, exitUsage)
	}
}

func TestUsage(t *testing.T) {
	if code, _, _ := runCLI(t, ""); code != exitUsage {
		t.Fatalf("no args: code %d, want %d", code, exitUsage)
	}
	code, _, errOut := runCLI(t, "", "no-such-command")
	if code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown: code %d, stderr %q", code, errOut)
	}
}
