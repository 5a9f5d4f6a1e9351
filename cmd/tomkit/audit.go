package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"golang.org/x/mod/sumdb/note"
)

// runAudit dispatches `tomkit audit <subcommand>`.
func runAudit(ctx context.Context, e env, args []string) int {
	subs := map[string]func(context.Context, env, []string) int{
		"keygen":      runAuditKeygen,
		"verify":      runAuditVerify,
		"prove":       runAuditProve,
		"check-proof": runAuditCheckProof,
	}
	return dispatch(ctx, e, "audit", subs, auditUsage, args)
}

func auditUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  tomkit audit keygen [--name NAME] [--out PREFIX]
  tomkit audit verify --key VERIFIER LOG
  tomkit audit prove LOG INDEX
  tomkit audit check-proof --key VERIFIER PROOF

LOG is a log directory or a PostgreSQL DSN (postgres://...).
`)
}

func auditFlags(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tomkit audit "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = subUsage(fs, auditUsage)
	return fs
}

func runAuditKeygen(_ context.Context, e env, args []string) int {
	fs := auditFlags(e, "keygen")
	name := fs.String("name", "tomkit-audit", "key `name`, which becomes the log's origin")
	out := fs.String("out", "audit", "write `PREFIX`.signer (mode 0600) and PREFIX.verifier")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "tomkit audit keygen: unexpected arguments")
		return exitUsage
	}
	skey, vkey, err := audit.GenerateKey(*name)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit keygen: %v\n", err)
		return exitUsage
	}
	if err := writeNew(*out+".signer", skey+"\n", 0o600); err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit keygen: %v\n", err)
		return exitFailure
	}
	if err := writeNew(*out+".verifier", vkey+"\n", 0o644); err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit keygen: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "wrote %s.signer (keep secret) and %s.verifier\n", *out, *out)
	return exitOK
}

// writeNew creates path, refusing to overwrite an existing file.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errSignerKey reports a checkpoint signer key given where the verifier
// key goes.
var errSignerKey = errors.New("this is a signer key; pass the .pub verifier key (PREFIX.verifier from tomkit audit keygen)")

// readVerifier returns the verifier key that arg names: a file holding
// it, or, when no such file exists, the key's text itself
// (name+hash+base64). A signer key, given as text or in the file, is
// refused with errSignerKey; a file that cannot be read, with its
// *fs.PathError.
func readVerifier(arg string) (vkey string, err error) {
	if isSignerKey(arg) {
		return "", errSignerKey
	}
	if _, err := os.Stat(arg); errors.Is(err, fs.ErrNotExist) && strings.Count(arg, "+") >= 2 {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", err
	}
	if isSignerKey(string(b)) {
		clear(b)
		return "", errSignerKey
	}
	return string(b), nil
}

// isSignerKey reports whether s is in the text encoding of a signer key.
func isSignerKey(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "PRIVATE+KEY+") }

func isDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// verifyPostgres verifies the audit log in the database at dsn.
func verifyPostgres(ctx context.Context, dsn string, v note.Verifier) (audit.Report, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return audit.Report{}, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	return pglog.Verify(ctx, pool, v)
}

// verifyPostgresSince is verifyPostgres, and also proves that the log
// extends the saved checkpoint note since.
func verifyPostgresSince(ctx context.Context, dsn string, v note.Verifier, since []byte) (audit.Report, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return audit.Report{}, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	return pglog.VerifySince(ctx, pool, v, since)
}

// provePostgres proves record index of the audit log in the database at
// dsn.
func provePostgres(ctx context.Context, dsn string, index int64) (*audit.InclusionProof, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	return pglog.Prove(ctx, pool, index)
}

func runAuditVerify(ctx context.Context, e env, args []string) int {
	fs := auditFlags(e, "verify")
	keyPath := fs.String("key", "", "verifier key: the `VERIFIER` file, or the key's text (name+hash+base64); not the signer key")
	since := fs.String("since", "", "a `CHECKPOINT` note file saved earlier with --save: also prove that the log extends it, so a rollback re-signed by the key holder fails")
	save := fs.String("save", "", "after a successful verification, write the latest signed checkpoint note to `FILE`, for a later --since")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: tomkit audit verify --key VERIFIER [--since CHECKPOINT] [--save FILE] LOG")
		return exitUsage
	}
	vkey, err := readVerifier(*keyPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit verify: %v\n", err)
		return inputCode(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit verify: %v\n", err)
		return exitUsage
	}
	target := fs.Arg(0)
	if !isDSN(target) && !checkInputs(e, "audit verify", target) {
		return exitFailure
	}
	var rep audit.Report
	var saved []byte
	if *since != "" {
		if !checkInputs(e, "audit verify", *since) {
			return exitFailure
		}
		if saved, err = os.ReadFile(*since); err != nil {
			fmt.Fprintf(e.stderr, "tomkit audit verify: %v\n", err)
			return exitFailure
		}
	}
	switch {
	case saved != nil && isDSN(target):
		rep, err = verifyPostgresSince(ctx, target, v, saved)
	case saved != nil:
		rep, err = audit.VerifySince(ctx, target, v, saved)
	case isDSN(target):
		rep, err = verifyPostgres(ctx, target, v)
	default:
		fsys, bar := dirProgress(e, "verify", target)
		rep, err = audit.VerifyFS(ctx, fsys, v)
		bar.done()
	}
	var ve *audit.VerifyError
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(e.stdout, "FAIL: first bad record %d: %s\n", ve.Index, ve.Kind)
		if ve.Err != nil {
			fmt.Fprintf(e.stdout, "detail: %v\n", ve.Err)
		}
		return exitFailure
	case err != nil:
		fmt.Fprintf(e.stdout, "FAIL: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "OK: %d records, latest checkpoint signs %d", rep.Size, rep.Checkpoint.Size)
	if !rep.Checkpoint.Time.IsZero() {
		fmt.Fprintf(e.stdout, " at %s", rep.Checkpoint.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	fmt.Fprintln(e.stdout)
	if rep.Pruned > 0 {
		fmt.Fprintf(e.stdout, "records below %d were pruned\n", rep.Pruned)
	}
	if n := rep.Size - rep.Checkpoint.Size; n > 0 {
		fmt.Fprintf(e.stdout, "note: %d records after the latest checkpoint are not yet signed\n", n)
	}
	if rep.Residue > 0 {
		fmt.Fprintf(e.stdout, "note: %d bytes of crash residue (torn, unacknowledged tail; not tampering)\n", rep.Residue)
	}
	if *since != "" {
		fmt.Fprintf(e.stdout, "OK: the log extends the saved checkpoint %s\n", *since)
	}
	if *save != "" {
		if err := os.WriteFile(*save, rep.Checkpoint.Note, 0o644); err != nil {
			fmt.Fprintf(e.stderr, "tomkit audit verify: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(e.stdout, "saved the checkpoint of size %d to %s\n", rep.Checkpoint.Size, *save)
	}
	return exitOK
}

func runAuditProve(ctx context.Context, e env, args []string) int {
	fs := auditFlags(e, "prove")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(e.stderr, "usage: tomkit audit prove LOG INDEX")
		return exitUsage
	}
	index, err := strconv.ParseInt(fs.Arg(1), 10, 64)
	if err != nil || index < 0 {
		fmt.Fprintf(e.stderr, "tomkit audit prove: bad index %q\n", fs.Arg(1))
		return exitUsage
	}
	if !isDSN(fs.Arg(0)) && !checkInputs(e, "audit prove", fs.Arg(0)) {
		return exitFailure
	}
	var p *audit.InclusionProof
	if isDSN(fs.Arg(0)) {
		p, err = provePostgres(ctx, fs.Arg(0), index)
	} else {
		p, err = audit.Prove(ctx, fs.Arg(0), index)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit prove: %v\n", err)
		return exitFailure
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit prove: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func runAuditCheckProof(_ context.Context, e env, args []string) int {
	fs := auditFlags(e, "check-proof")
	keyPath := fs.String("key", "", "verifier key: the `VERIFIER` file, or the key's text (name+hash+base64); not the signer key")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: tomkit audit check-proof --key VERIFIER PROOF (- for stdin)")
		return exitUsage
	}
	vkey, err := readVerifier(*keyPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit check-proof: %v\n", err)
		return inputCode(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit check-proof: %v\n", err)
		return exitUsage
	}
	var raw []byte
	if fs.Arg(0) == "-" {
		raw, err = io.ReadAll(io.LimitReader(e.stdin, 16<<20))
	} else {
		raw, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit audit check-proof: %v\n", err)
		return exitFailure
	}
	var p audit.InclusionProof
	if err := json.Unmarshal(raw, &p); err != nil {
		fmt.Fprintf(e.stdout, "FAIL: malformed proof: %v\n", err)
		return exitFailure
	}
	ev, cp, err := audit.CheckInclusion(v, &p)
	if err != nil {
		fmt.Fprintf(e.stdout, "FAIL: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "OK: record %d is in %s at size %d: %s %s %s\n", p.Index, cp.Origin, cp.Size, ev.Action, ev.Outcome, ev.Resource)
	return exitOK
}
