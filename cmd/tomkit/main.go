// Command tomkit is the shell side of tomkit: key management, audit-log
// verification, policy checks, retention purges and compliance evidence.
//
// Usage:
//
//	tomkit <command> [flags] [args]
//	tomkit help [command]
//
// Every command and subcommand takes -h, --help (or "help" in the place of
// a subcommand): it prints its usage to standard output and exits 0.
//
// Every command exits 0 on success, 1 when it ran and failed or found a
// problem (a tampered log, a denied request, a failed check, an input file
// that cannot be opened) and 2 on bad usage (an unknown flag or command, a
// missing argument, a bad value), after printing its usage to standard
// error.
//
// Long operations (verifying a file log, purging, rewrapping, encrypting
// and decrypting) show their progress on standard error when it is a
// terminal, and print nothing of the kind otherwise.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strings"
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
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			// tomkit help COMMAND is COMMAND --help.
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, e, []string{"--help"})
			}
			fmt.Fprintf(e.stderr, "tomkit: unknown command %q\n\n", args[1])
			usage(e.stderr)
			return exitUsage
		}
		usage(e.stdout)
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
	fmt.Fprintln(w, "       tomkit help <command>")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --help. Exit status: 0 success, 1 failure, 2 bad usage.")
}

// isHelp reports whether arg asks for help in the place of a command or
// subcommand.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// subsKey is the context key of listSubcommands.
type subsKey struct{}

// listSubcommands returns a context under which dispatch, instead of
// running a subcommand, appends the names of its subcommands to *names and
// returns exitOK. It lets tests enumerate every command and subcommand.
func listSubcommands(ctx context.Context, names *[]string) context.Context {
	return context.WithValue(ctx, subsKey{}, names)
}

// dispatch runs the subcommand args[0] of the command name from subs.
// "help", -h and --help print usage to standard output and return exitOK
// ("help SUB" is SUB --help); no subcommand, or an unknown one, prints
// usage to standard error and returns exitUsage.
func dispatch(ctx context.Context, e env, name string, subs map[string]func(context.Context, env, []string) int, usage func(io.Writer), args []string) int {
	if names, ok := ctx.Value(subsKey{}).(*[]string); ok {
		for n := range subs {
			*names = append(*names, n)
		}
		return exitOK
	}
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			if f, ok := subs[args[1]]; ok {
				return f(ctx, e, []string{"--help"})
			}
			fmt.Fprintf(e.stderr, "tomkit %s: unknown subcommand %q\n", name, args[1])
			usage(e.stderr)
			return exitUsage
		}
		usage(e.stdout)
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

// parseFlags parses args into fs, the command-line convention in one
// place. When args ask for help (-h, --help) it prints fs's usage to
// standard output and returns (exitOK, true); on a parse error (an
// unknown flag, a bad value) it prints the error and the usage to standard
// error and returns (exitUsage, true). Otherwise it returns (0, false) and
// the command goes on, with fs's output on standard error. A usage func
// of fs must write to fs.Output().
func parseFlags(e env, fs *flag.FlagSet, args []string) (code int, done bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		e.stdout.Write(buf.Bytes())
		return exitOK, true
	case err != nil:
		e.stderr.Write(buf.Bytes())
		return exitUsage, true
	}
	return 0, false
}

// subUsage returns a usage func for fs, the flags of a subcommand: the
// lines of the command's usage text that name the subcommand, then the
// flags.
func subUsage(fs *flag.FlagSet, usage func(io.Writer)) func() {
	return func() {
		w := fs.Output()
		var b bytes.Buffer
		usage(&b)
		fmt.Fprintln(w, "usage:")
		sc := bufio.NewScanner(&b)
		for sc.Scan() {
			if l := strings.Join(strings.Fields(sc.Text()), " "); l == fs.Name() || strings.HasPrefix(l, fs.Name()+" ") {
				fmt.Fprintln(w, "  "+l)
			}
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
}

// inputCode is the exit code of err, an error about a command's input:
// exitFailure when a file could not be opened or read (a runtime failure:
// it may exist tomorrow), exitUsage for anything else (the input is not
// what the command takes).
func inputCode(err error) int {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return exitFailure
	}
	return exitUsage
}

// checkInput reports whether the file or directory at path can be opened,
// with the *fs.PathError of os.Open when it cannot.
func checkInput(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkInputs checks the input files of the command name, skipping empty
// paths. It reports the first that cannot be opened on standard error
// and returns false; the command then exits with exitFailure.
func checkInputs(e env, name string, paths ...string) bool {
	for _, path := range paths {
		if path == "" {
			continue
		}
		if err := checkInput(path); err != nil {
			fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
			return false
		}
	}
	return true
}
