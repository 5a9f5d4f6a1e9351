package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/rbac"
)

func rbacUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: tomkit rbac check --policy FILE [--mfa-age DURATION] SUBJECT TENANT OBJECT ACTION")
	fmt.Fprintln(w, "       tomkit rbac lint FILE")
}

// runRBAC checks a decision against a policy file, or lints one.
func runRBAC(ctx context.Context, e env, args []string) int {
	return dispatch(ctx, e, "rbac", map[string]func(context.Context, env, []string) int{
		"check": rbacCheck,
		"lint":  func(_ context.Context, e env, args []string) int { return rbacLint(e, args) },
	}, rbacUsage, args)
}

// rbacCheck prints "allow" or "deny", the reason and the deciding rule.
// It is a dry run: the decision log goes nowhere. Exit 0 allow, 1 deny
// or an unreadable policy file, 2 bad input (including a policy the loader
// refuses).
func rbacCheck(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("tomkit rbac check", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.String("policy", "", "policy `FILE` (required)")
	mfaAge := new(time.Duration)
	fs.Func("mfa-age", "the subject passed MFA `DURATION` ago (default: no MFA)", func(s string) (err error) {
		*mfaAge, err = time.ParseDuration(s)
		return err
	})
	fs.Usage = func() {
		rbacUsage(fs.Output())
		fs.PrintDefaults()
	}
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if *file == "" || fs.NArg() != 4 {
		fs.Usage()
		return exitUsage
	}
	mfaSet := false
	fs.Visit(func(f *flag.Flag) { mfaSet = mfaSet || f.Name == "mfa-age" })
	if mfaSet && *mfaAge < 0 {
		fmt.Fprintln(e.stderr, "tomkit rbac check: --mfa-age must not be negative")
		return exitUsage
	}
	text, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit rbac check: %v\n", err)
		return exitFailure
	}
	now := time.Now()
	en, err := rbac.New(ctx, rbac.Config{Logger: &audit.Recorder{}, Policy: text, Clock: audit.ClockFunc(func() time.Time { return now })})
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit rbac check: %s: %v\n", *file, err)
		return exitUsage
	}
	defer en.Close()
	a := fs.Args()
	req := rbac.Request{Actor: audit.Actor{Subject: a[0], Tenant: a[1]}, Object: a[2], Action: a[3]}
	if mfaSet {
		req.MFAVerifiedAt = now.Add(-*mfaAge)
	}
	d, err := en.Decide(ctx, req)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit rbac check: %v\n", err)
		return exitFailure
	}
	verdict, code := "deny", exitFailure
	if d.Allowed {
		verdict, code = "allow", exitOK
	}
	if d.Rule != "" {
		fmt.Fprintf(e.stdout, "%s: %s (%s)\n", verdict, d.Reason, d.Rule)
	} else {
		fmt.Fprintf(e.stdout, "%s: %s\n", verdict, d.Reason)
	}
	return code
}

// rbacLint prints every finding of rbac.Lint. Exit 0 clean, 1 findings
// or an unreadable file, 2 unparsable file.
func rbacLint(e env, args []string) int {
	fs := flag.NewFlagSet("tomkit rbac lint", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { rbacUsage(fs.Output()) }
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	name := fs.Arg(0)
	text, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit rbac lint: %v\n", err)
		return exitFailure
	}
	findings, err := rbac.Lint(text)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit rbac lint: %s: %v\n", name, err)
		return exitUsage
	}
	for _, f := range findings {
		fmt.Fprintf(e.stdout, "%s:%s\n", name, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(e.stderr, "tomkit rbac lint: %d finding(s)\n", len(findings))
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", name)
	return exitOK
}
