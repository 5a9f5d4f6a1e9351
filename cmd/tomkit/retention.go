package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/memblob"  // mem:// buckets

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/pgstore"
)

const retentionUsage = `usage: tomkit retention purge [flags]
       tomkit retention migrate [--dry-run] [--orphans TENANT] [flags]

Deletes every object past its maximum retention from one store, in batches,
and prints the evidence (counts, SHA-256 digest of the deleted keys, time) as
JSON. Objects under legal hold are kept and listed. Exactly one store:

  --dir DIR         filesystem store rooted at DIR
  --postgres DSN    PostgreSQL store (table retention_tenant_objects)
  --bucket URL      gocloud.dev bucket (file:// and mem:// in this build)

The store must exist: a missing directory, or a database without the table,
is an error (exit 1), never a new empty store.

Other flags:

  --dry-run         list what would be deleted, delete nothing and change
                    nothing in the store (a --dir store is opened read-only)
  --batch N         objects per batch (default 5000)
  --max-age C=D     maximum age of class C, e.g. content=30d, backup=90d
                    (repeatable; unnamed classes keep the defaults)
` + auditLogHelp + `
A purge whose audit events cannot be recorded fails. Both commands run as
the operator: across every tenant, audited as such.

migrate moves the objects of a store written before tenant partitioning
into the partition of the tenant each record names (see retention.Store.
Migrate); --orphans names the tenant that receives objects without one.
`

// runRetention dispatches `tomkit retention <subcommand>`.
func runRetention(ctx context.Context, e env, args []string) int {
	sub := func(name string) func(context.Context, env, []string) int {
		return func(ctx context.Context, e env, args []string) int { return runRetentionCmd(ctx, e, name, args) }
	}
	return dispatch(ctx, e, "retention", map[string]func(context.Context, env, []string) int{
		"purge":   sub("purge"),
		"migrate": sub("migrate"),
	}, func(w io.Writer) { fmt.Fprint(w, retentionUsage) }, args)
}

// runRetentionCmd runs purge or migrate: both open a store from the same
// flags and act as the operator.
func runRetentionCmd(ctx context.Context, e env, sub string, args []string) (code int) {
	fs := flag.NewFlagSet("tomkit retention "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), retentionUsage) }
	dir := fs.String("dir", "", "")
	dsn := fs.String("postgres", "", "")
	bucket := fs.String("bucket", "", "")
	dry := fs.Bool("dry-run", false, "")
	batch := fs.Int("batch", 0, "")
	orphans := fs.String("orphans", "", "")
	var sink sinkFlags
	sink.add(fs)
	policy := retention.DefaultPolicy()
	fs.Func("max-age", "", func(s string) error {
		c, d, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want CLASS=DURATION, got %q", s)
		}
		dur, err := parseAge(d)
		if err != nil {
			return err
		}
		policy.MaxAge[retention.Class(c)] = dur
		return nil
	})
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	n := 0
	for _, s := range []string{*dir, *dsn, *bucket} {
		if s != "" {
			n++
		}
	}
	if n != 1 || fs.NArg() != 0 {
		fmt.Fprint(e.stderr, "tomkit retention purge: name exactly one store (--dir, --postgres or --bucket)\n\n"+retentionUsage)
		return exitUsage
	}
	if err := sink.check(); err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention %s: %v\n", sub, err)
		return exitUsage
	}
	// A bad --max-age is a usage error, whatever the store.
	if err := policy.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention %s: %v\n", sub, err)
		return exitUsage
	}
	// Purging a --dir that is not there is a mistake, not an empty
	// store: fsstore.Open would create it.
	if !checkInputs(e, "retention "+sub, *dir, sink.signer) {
		return exitFailure
	}

	log, err := sink.open(ctx, e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention: %v\n", err)
		return exitFailure
	}
	// Runs after the store is closed (deferred later, run earlier).
	defer func() { code = log.finish(e, "retention", code) }()
	var b retention.Backend
	switch {
	case *dir != "":
		// A missing store is an error, not a new empty one, and a dry
		// run opens it read-only: no directory is created, no crash
		// recovery runs, nothing on disk changes.
		b, err = fsstore.OpenReadOnly(ctx, *dir)
		if err == nil && !*dry {
			b, err = fsstore.Open(ctx, *dir)
		}
	case *dsn != "":
		var pool *pgxpool.Pool
		pool, err = pgxpool.New(ctx, *dsn)
		if err == nil {
			defer pool.Close()
			// pgstore.Open creates its table: a database without one is
			// not a store to purge, and a mistyped DSN must not become one.
			var table *string
			if err = pool.QueryRow(ctx, `SELECT coalesce(to_regclass('retention_tenant_objects')::text, to_regclass('retention_objects')::text)`).Scan(&table); err == nil && table == nil {
				err = errors.New("not a store: no retention_tenant_objects (or older retention_objects) table in this database")
			}
			if err == nil {
				b, err = pgstore.Open(ctx, pool)
			}
		}
	default:
		var bk *blob.Bucket
		bk, err = blob.OpenBucket(ctx, *bucket)
		if err == nil {
			defer bk.Close()
			b, err = blobstore.Open(ctx, bk)
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention: open store: %v\n", err)
		return exitFailure
	}
	bar := newProgress(e, "purge", -1, unitItems)
	defer bar.done()
	s, err := retention.New(b, retention.Config{Policy: policy, Logger: bar.logger(log)})
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention: %v\n", err)
		return exitUsage
	}
	ctx = retention.WithOperator(audit.WithActor(ctx, audit.Actor{Subject: "tomkit-cli:retention-" + sub}), "tomkit retention "+sub)
	if sub == "migrate" {
		return runRetentionMigrate(ctx, e, s, retention.MigrateOptions{DryRun: *dry, Orphans: *orphans})
	}
	rep, err := s.Purge(ctx, retention.PurgeOptions{DryRun: *dry, BatchSize: *batch})
	bar.done()
	out, _ := json.MarshalIndent(struct {
		Time     time.Time `json:"time"`
		Finished time.Time `json:"finished"`
		DryRun   bool      `json:"dry_run"`
		Expired  int       `json:"expired"`
		Deleted  int       `json:"deleted"`
		Skipped  int       `json:"skipped"`
		Held     []string  `json:"held"`
		Corrupt  []string  `json:"corrupt"`
		Batches  int       `json:"batches"`
		Digest   string    `json:"digest_sha256"`
	}{rep.Time, rep.Finished, rep.DryRun, rep.Expired, rep.Deleted, rep.Skipped, append([]string{}, rep.Held...), append([]string{}, rep.Corrupt...), rep.Batches, rep.Digest}, "", "  ")
	fmt.Fprintln(e.stdout, string(out))
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseAge accepts Go durations and a whole number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("bad number of days %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
