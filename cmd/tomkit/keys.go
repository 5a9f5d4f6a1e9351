package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// keyFlags are the flags shared by keys, encrypt and decrypt.
type keyFlags struct {
	keyset, masterFile, tenant, subject string
	sink                                sinkFlags
}

func newKeyFlags(e env, name string, tenantDefault string) (*flag.FlagSet, *keyFlags) {
	fs := flag.NewFlagSet("tomkit "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	k := &keyFlags{}
	fs.StringVar(&k.keyset, "keyset", "", "keyring `FILE` (required)")
	fs.StringVar(&k.masterFile, "master-key-file", "", "read the master key from `FILE` (mode 0600); default: $"+kms.MasterKeyEnv)
	fs.StringVar(&k.tenant, "tenant", tenantDefault, "`TENANT` whose key to use")
	fs.StringVar(&k.subject, "subject", "", "data `SUBJECT` whose own key to use (per-subject scope)")
	k.sink.add(fs)
	fs.Usage = subUsage(fs, keysUsage)
	return fs, k
}

func (k *keyFlags) scope() audit.Actor { return audit.Actor{Tenant: k.tenant, Subject: k.subject} }

// config returns the keyring configuration: the master key, and sink as
// its audit log.
func (k *keyFlags) config(sink audit.Logger) (kms.Config, error) {
	cfg := kms.Config{Logger: sink}
	var err error
	if k.masterFile != "" {
		cfg.Master, err = kms.MasterKeyFromFile(k.masterFile)
	} else {
		cfg.Master, err = kms.MasterKeyFromEnv()
	}
	return cfg, err
}

// ctx returns ctx carrying the operating-system user as the actor.
func (k *keyFlags) ctx(ctx context.Context) context.Context {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.WithActor(ctx, audit.Actor{Subject: "os-user:" + name, Tenant: k.tenant})
}

// runKeys dispatches `tomkit keys <subcommand>`.
func runKeys(ctx context.Context, e env, args []string) int {
	subs := map[string]func(context.Context, env, []string) int{
		"init":   runKeysInit,
		"create": runKeysCreate,
		"rotate": runKeysRotate,
		"retire": runKeysRetire,
		"list":   runKeysList,
		"shred":  runKeysShred,
		"rewrap": runKeysRewrap,
	}
	return dispatch(ctx, e, "keys", subs, keysUsage, args)
}

func keysUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  tomkit keys init   --keyset FILE [--tenant T] [--subject S]
  tomkit keys create --keyset FILE --tenant T [--subject S]
  tomkit keys rotate --keyset FILE [--tenant T] [--subject S]
  tomkit keys retire --keyset FILE [--tenant T] [--subject S] --min-version N
  tomkit keys list   --keyset FILE
  tomkit keys shred  --keyset FILE --tenant T [--subject S]
  tomkit keys rewrap --keyset FILE [--tenant T] [--subject S] [--context k=v]... < in > out

The keyring FILE is encrypted under the master key in $TOMKIT_MASTER_KEY or
in --master-key-file (mode 0600). keys init with a --master-key-file that
does not exist generates a new master key into it. --tenant defaults to
"default" except for shred, which must name it. rewrap moves a
ciphertext's data key under the current primary key and copies the
encrypted payload unchanged: nothing is decrypted but the data key.

Every key operation is audited; a command whose event cannot be recorded
fails. Every subcommand takes:

`+auditLogHelp)
}

// parseKeys parses the flags of a keys subcommand that takes no arguments.
// It returns nil when the command is to stop with code: help was asked for
// (exitOK) or the usage is bad (exitUsage).
func parseKeys(e env, name string, tenantDefault string, args []string, extra func(*flag.FlagSet)) (*keyFlags, int) {
	fs, k := newKeyFlags(e, "keys "+name, tenantDefault)
	if extra != nil {
		extra(fs)
	}
	if code, done := parseFlags(e, fs, args); done {
		return nil, code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "tomkit keys %s: unexpected arguments %q\n", name, fs.Args())
		return nil, exitUsage
	}
	if k.keyset == "" {
		fmt.Fprintf(e.stderr, "tomkit keys %s: --keyset is required\n", name)
		return nil, exitUsage
	}
	if err := k.sink.check(); err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys %s: %v\n", name, err)
		return nil, exitUsage
	}
	return k, exitOK
}

// openRing opens the audit log and the keyring of k, reporting errors on
// stderr. Close the sink with its finish method, whose exit code fails a
// command whose final checkpoint could not be written.
func openRing(ctx context.Context, e env, name string, k *keyFlags) (*kms.Keyring, *auditSink, bool) {
	if !checkInputs(e, name, k.masterFile, k.keyset, k.sink.signer) {
		return nil, nil, false
	}
	cfg, err := k.config(nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		return nil, nil, false
	}
	sink, err := k.sink.open(ctx, e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		return nil, nil, false
	}
	cfg.Logger = sink
	r, err := kms.Open(ctx, k.keyset, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit %s: %v\n", name, err)
		sink.finish(e, name, exitFailure)
		return nil, nil, false
	}
	return r, sink, true
}

func runKeysInit(ctx context.Context, e env, args []string) (code int) {
	k, code := parseKeys(e, "init", "default", args, nil)
	if k == nil {
		return code
	}
	ctx = k.ctx(ctx)
	if !checkInputs(e, "keys init", k.sink.signer) {
		return exitFailure
	}
	// The audit log first: a log that cannot be opened (say, locked by a
	// running service) leaves no new master key file behind.
	sink, err := k.sink.open(ctx, e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
		return exitFailure
	}
	defer func() { code = sink.finish(e, "keys init", code) }()
	if k.masterFile != "" {
		if _, err := os.Lstat(k.masterFile); errors.Is(err, os.ErrNotExist) {
			f, err := os.OpenFile(k.masterFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
				return exitFailure
			}
			_, err = fmt.Fprintln(f, kms.GenerateMasterKey())
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
				return exitFailure
			}
			fmt.Fprintf(e.stderr, "tomkit keys init: wrote a new master key to %s; keep it apart from the keyring\n", k.masterFile)
		}
	}
	cfg, err := k.config(sink)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
		return exitFailure
	}
	r, err := kms.Create(ctx, k.keyset, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
		return exitFailure
	}
	if err := r.Create(ctx, k.scope()); err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys init: %v\n", err)
		return exitFailure
	}
	if code := sink.finish(e, "keys init", exitOK); code != exitOK {
		return code
	}
	fmt.Fprintf(e.stdout, "created %s with a key for %s\n", k.keyset, scopeName(k.scope()))
	return exitOK
}

func runKeysCreate(ctx context.Context, e env, args []string) int {
	k, code := parseKeys(e, "create", "", args, nil)
	if k == nil {
		return code
	}
	if k.tenant == "" {
		fmt.Fprintln(e.stderr, "tomkit keys create: --tenant is required")
		return exitUsage
	}
	return onRing(ctx, e, "create", k, func(ctx context.Context, r *kms.Keyring) (string, error) {
		return fmt.Sprintf("%s has a key", scopeName(k.scope())), r.Create(ctx, k.scope())
	})
}

func runKeysRotate(ctx context.Context, e env, args []string) int {
	k, code := parseKeys(e, "rotate", "default", args, nil)
	if k == nil {
		return code
	}
	return onRing(ctx, e, "rotate", k, func(ctx context.Context, r *kms.Keyring) (string, error) {
		v, err := r.Rotate(ctx, k.scope())
		return fmt.Sprintf("%s: new primary key version %d", scopeName(k.scope()), v), err
	})
}

func runKeysRetire(ctx context.Context, e env, args []string) int {
	var minVersion uint
	k, code := parseKeys(e, "retire", "default", args, func(fs *flag.FlagSet) {
		fs.UintVar(&minVersion, "min-version", 0, "minimum decryption `VERSION`; older keys stop decrypting")
	})
	if k == nil {
		return code
	}
	if minVersion == 0 || minVersion > 1<<32-1 {
		fmt.Fprintln(e.stderr, "tomkit keys retire: --min-version N is required")
		return exitUsage
	}
	return onRing(ctx, e, "retire", k, func(ctx context.Context, r *kms.Keyring) (string, error) {
		return fmt.Sprintf("%s: minimum decryption version %d", scopeName(k.scope()), minVersion),
			r.SetMinVersion(ctx, k.scope(), uint32(minVersion))
	})
}

func runKeysList(ctx context.Context, e env, args []string) (code int) {
	k, code := parseKeys(e, "list", "", args, nil)
	if k == nil {
		return code
	}
	ctx = k.ctx(ctx)
	r, sink, ok := openRing(ctx, e, "keys list", k)
	if !ok {
		return exitFailure
	}
	defer func() { code = sink.finish(e, "keys list", code) }()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSUBJECT\tVERSION\tKEY ID\tSTATUS\tCREATED")
	for _, s := range r.List() {
		if !s.Destroyed.IsZero() {
			fmt.Fprintf(tw, "-\t-\t-\t%x/*\tshredded\t%s\n", s.Ring, s.Destroyed.Format("2006-01-02T15:04:05Z"))
			continue
		}
		for _, kv := range s.Keys {
			status := "enabled"
			switch {
			case kv.Primary:
				status = "primary"
			case kv.Retired:
				status = "retired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", s.Scope.Tenant, dash(s.Scope.Subject), kv.Version, kv.ID, status, kv.Created.Format("2006-01-02T15:04:05Z"))
		}
	}
	if err := tw.Flush(); err != nil {
		return exitFailure
	}
	return exitOK
}

func runKeysShred(ctx context.Context, e env, args []string) int {
	k, code := parseKeys(e, "shred", "", args, nil)
	if k == nil {
		return code
	}
	if k.tenant == "" {
		fmt.Fprintln(e.stderr, "tomkit keys shred: --tenant is required (there is no default for destroying keys)")
		return exitUsage
	}
	return onRing(ctx, e, "shred", k, func(ctx context.Context, r *kms.Keyring) (string, error) {
		return fmt.Sprintf("%s: keys destroyed; its ciphertexts are unrecoverable", scopeName(k.scope())), r.Shred(ctx, k.scope())
	})
}

// onRing runs one keyring operation for `tomkit keys NAME`: it opens the
// keyring and the audit log as the caller, runs op, and prints op's message
// on success or its error on failure. The audit log is closed before the
// message is printed, so success is reported only once the final
// checkpoint is written.
func onRing(ctx context.Context, e env, name string, k *keyFlags, op func(context.Context, *kms.Keyring) (string, error)) int {
	ctx = k.ctx(ctx)
	r, sink, ok := openRing(ctx, e, "keys "+name, k)
	if !ok {
		return exitFailure
	}
	code := exitOK
	msg, err := op(ctx, r)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys %s: %v\n", name, err)
		code = exitFailure
	}
	if code = sink.finish(e, "keys "+name, code); code == exitOK {
		fmt.Fprintln(e.stdout, msg)
	}
	return code
}

func scopeName(s audit.Actor) string {
	if s.Subject == "" {
		return "tenant " + strconv.Quote(s.Tenant)
	}
	return "tenant " + strconv.Quote(s.Tenant) + " subject " + strconv.Quote(s.Subject)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runKeysRewrap implements `tomkit keys rewrap`: standard input to
// standard output, rewrapping only the header.
func runKeysRewrap(ctx context.Context, e env, args []string) (code int) {
	k, ec, code := parseCrypt(e, "keys rewrap", args)
	if k == nil {
		return code
	}
	ctx = k.ctx(ctx)
	env, sink, ok := openEnvelope(ctx, e, "keys rewrap", k)
	if !ok {
		return exitFailure
	}
	defer func() { code = sink.finish(e, "keys rewrap", code) }()
	bar := streamProgress(e, "rewrap", e.stdin)
	defer bar.done()
	in := bufio.NewReaderSize(bar.reader(e.stdin), cryptBuffer)
	prefix := make([]byte, envelope.MaxHeaderLen)
	n, err := io.ReadFull(in, prefix)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		fmt.Fprintf(e.stderr, "tomkit keys rewrap: %v\n", err)
		return exitFailure
	}
	out, err := env.Rewrap(ctx, nil, prefix[:n], ec)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys rewrap: %v\n", err)
		return exitFailure
	}
	w := bufio.NewWriterSize(e.stdout, cryptBuffer)
	if _, err = w.Write(out); err == nil {
		if _, err = io.CopyBuffer(w, struct{ io.Reader }{in}, make([]byte, cryptBuffer)); err == nil {
			err = w.Flush()
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit keys rewrap: %v\n", err)
		return exitFailure
	}
	return exitOK
}
