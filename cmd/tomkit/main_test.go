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

func TestSubcommandDispatch(t *testing.T) {
	for _, cmd := range []string{"audit", "keys", "rbac"} {
		if code, _, _ := runCLI(t, "", cmd); code != exitUsage {
			t.Errorf("%s with no subcommand: code %d, want %d", cmd, code, exitUsage)
		}
		code, _, errOut := runCLI(t, "", cmd, "no-such")
		if code != exitUsage || !strings.Contains(errOut, "tomkit "+cmd+": unknown subcommand") {
			t.Errorf("%s no-such: code %d, stderr %q", cmd, code, errOut)
		}
		if code, out, errOut := runCLI(t, "", cmd, "help"); code != exitOK || !strings.Contains(out, "usage") || errOut != "" {
			t.Errorf("%s help: code %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
}
