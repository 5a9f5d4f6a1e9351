// Command tomkit is the shell side of tomkit: key management, audit-log
// verification, policy checks, retention purges and compliance evidence.
//
// Usage:
//
//	tomkit <command> [flags] [args]
//
// Every command exits 0 on success, 1 when it ran and found a problem (a
// tampered log, a denied request, a failed check) and 2 on bad usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what a command may touch: its streams. Commands never read
// os.Stdin or write os.Stdout directly, so tests can run them in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

// commands is the command table. Each command lives in its own file.
var commands = map[string]command{
	"version": {"print the tomkit version", runVersion},
	"keys":    {"manage encryption keys: init, rotate, rewrap, retire, list, shred", runKeys},
	"encrypt": {"encrypt standard input to standard output (streaming)", runEncrypt},
	"decrypt": {"decrypt standard input to standard output; no plaintext out unless all of it authenticates", runDecrypt},
	"audit":   {"keygen, verify and prove tamper-evident audit logs", runAudit},
	"check":   {"run the compliance checks and write an evidence report", runCheck},
	"rbac":    {"check an access decision against a policy file, or lint one", runRBAC},

	"retention": {"purge expired data with evidence (storage limitation)", runRetention},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, env{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "tomkit: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tomkit <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// dispatch runs the subcommand args[0] of the command name from subs. With
// no subcommand, or an unknown one, it prints usage and returns exitUsage;
// "help" prints usage and returns exitOK.
func dispatch(ctx context.Context, e env, name string, subs map[string]func(context.Context, env, []string) int, usage func(io.Writer), args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(e.stderr)
		return exitOK
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "tomkit %s: unknown subcommand %q\n", name, args[0])
		usage(e.stderr)
		return exitUsage
	}
	return f(ctx, e, args[1:])
}
