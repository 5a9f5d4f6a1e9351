package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

// allCommands returns every command and subcommand of the CLI, as the
// words that name it ("version", "audit verify"), derived from the
// commands table and from each dispatcher's subcommand map: a new command
// or subcommand is in the list without anyone adding it.
func allCommands(t *testing.T) (leaves, dispatchers []string) {
	t.Helper()
	for name, c := range commands {
		var subs []string
		var out, errb bytes.Buffer
		// A dispatcher lists its subcommands and returns; any other
		// command prints its help.
		c.run(listSubcommands(context.Background(), &subs), env{strings.NewReader(""), &out, &errb}, []string{"--help"})
		if len(subs) == 0 {
			leaves = append(leaves, name)
			continue
		}
		dispatchers = append(dispatchers, name)
		for _, s := range subs {
			leaves = append(leaves, name+" "+s)
		}
	}
	sort.Strings(leaves)
	sort.Strings(dispatchers)
	if len(leaves) < 15 || len(dispatchers) < 4 {
		t.Fatalf("found only %d commands and %d dispatchers: %q %q", len(leaves), len(dispatchers), leaves, dispatchers)
	}
	return leaves, dispatchers
}

// TestHelpEveryCommand: --help, -h and help on every command and
// subcommand print usage to standard output, nothing to standard error,
// and exit 0.
func TestHelpEveryCommand(t *testing.T) {
	leaves, dispatchers := allCommands(t)
	var cases [][]string
	for _, l := range leaves {
		w := strings.Fields(l)
		cases = append(cases,
			append(append([]string{}, w...), "--help"),
			append(append([]string{}, w...), "-h"),
			append([]string{"help"}, w[0]), // tomkit help COMMAND
		)
		if len(w) == 2 {
			cases = append(cases, []string{w[0], "help", w[1]}) // tomkit CMD help SUB
		}
	}
	for _, d := range dispatchers {
		cases = append(cases, []string{d, "--help"}, []string{d, "-h"}, []string{d, "help"})
	}
	cases = append(cases, []string{"--help"}, []string{"-h"}, []string{"help"})
	for _, args := range cases {
		code, out, errOut := runCLI(t, "", args...)
		if code != exitOK || !strings.Contains(strings.ToLower(out), "usage") || errOut != "" {
			t.Errorf("tomkit %s: code %d, stdout %q, stderr %q; want %d, usage on stdout, empty stderr",
				strings.Join(args, " "), code, out, errOut, exitOK)
		}
	}
}

// TestUnknownFlagEveryCommand: an unknown flag is bad usage: exit 2, the
// usage on standard error, nothing on standard output.
func TestUnknownFlagEveryCommand(t *testing.T) {
	leaves, _ := allCommands(t)
	for _, l := range leaves {
		args := append(strings.Fields(l), "--no-such-flag")
		code, out, errOut := runCLI(t, "", args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "flag provided but not defined: -no-such-flag") || !strings.Contains(strings.ToLower(errOut), "usage") {
			t.Errorf("tomkit %s: code %d, stdout %q, stderr %q; want %d and the usage on stderr",
				strings.Join(args, " "), code, out, errOut, exitUsage)
		}
	}
}

// TestMissingInputEveryCommand: an input file that does not exist is a
// runtime failure, with exit code 1 and one message shape everywhere.
// Every command is listed, with the arguments that name a missing input
// file, or none when it reads no input file.
func TestMissingInputEveryCommand(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	master := filepath.Join(dir, "master.key")
	if err := os.WriteFile(master, []byte(kms.GenerateMasterKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, vkey, err := audit.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	keyring := []string{"--keyset", missing, "--master-key-file", master}
	noMaster := []string{"--keyset", missing, "--master-key-file", missing}
	withInput := map[string][]string{
		"version":           nil,
		"audit keygen":      nil,
		"keys init":         nil, // creates its keyset and master key file
		"audit verify":      {"--key", missing, dir},
		"audit prove":       {missing, "0"},
		"audit check-proof": {"--key", vkey, missing},
		"keys create":       append([]string{"--tenant", "t"}, keyring...),
		"keys rotate":       keyring,
		"keys retire":       append([]string{"--min-version", "2"}, keyring...),
		"keys list":         noMaster,
		"keys shred":        append([]string{"--tenant", "t"}, keyring...),
		"keys rewrap":       keyring,
		"encrypt":           keyring,
		"decrypt":           noMaster,
		"rbac check":        {"--policy", missing, "alice", "acme", "/x", "read"},
		"rbac lint":         {missing},
		"retention purge":   {"--dir", missing},
		"retention migrate": {"--dir", missing},
		"check":             {"--policy", missing},
	}
	// More cases for the commands with several input files.
	extra := [][]string{
		{"audit", "verify", "--key", vkey, missing},
		{"audit", "check-proof", "--key", missing, missing},
		{"check", "--audit-log", missing, "--audit-key", vkey},
		{"check", "--audit-log", dir, "--audit-key", missing},
		{"check", "--url", "https://127.0.0.1:1", "--cacert", missing},
	}
	leaves, _ := allCommands(t)
	// Every command that can write a tamper-evident audit log reads its
	// signer key.
	for _, l := range leaves {
		var args []string
		switch {
		case l == "retention purge" || l == "retention migrate":
			args = []string{"--dir", dir}
		case l == "keys init":
			args = []string{"--keyset", filepath.Join(dir, "new-keyset"), "--master-key-file", master}
		case strings.HasPrefix(l, "keys ") || l == "encrypt" || l == "decrypt":
			// Any existing file does as the keyset: the inputs are
			// checked before the keyring is read.
			args = []string{"--keyset", master, "--master-key-file", master, "--tenant", "t"}
			if l == "keys retire" {
				args = append(args, "--min-version", "2")
			}
		default:
			continue
		}
		extra = append(extra, append(append(strings.Fields(l), args...), "--audit-log", dir, "--audit-signer", missing))
	}
	var cases [][]string
	for _, l := range leaves {
		args, ok := withInput[l]
		if !ok {
			t.Errorf("tomkit %s: not in the missing-input table; add it, with nil if it reads no input file", l)
			continue
		}
		if args != nil {
			cases = append(cases, append(strings.Fields(l), args...))
		}
	}
	for _, args := range append(cases, extra...) {
		code, out, errOut := runCLI(t, "", args...)
		name := "tomkit " + strings.Join(args[:len(args)-len(argsAfterName(args))], " ")
		want := name + ": open " + missing + ": no such file or directory\n"
		if code != exitFailure || out != "" || errOut != want {
			t.Errorf("%s: code %d, stdout %q, stderr %q; want %d and %q",
				strings.Join(args, " "), code, out, errOut, exitFailure, want)
		}
	}
}

// argsAfterName returns the arguments after the command's name: after the
// first word, or the first two when the first is a dispatcher.
func argsAfterName(args []string) []string {
	var subs []string
	commands[args[0]].run(listSubcommands(context.Background(), &subs), env{strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}}, []string{"--help"})
	if len(subs) > 0 {
		return args[2:]
	}
	return args[1:]
}
