package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/tomtest"
	"golang.org/x/mod/sumdb/note"
)

// checkOptions are the flags of `tomkit check`.
type checkOptions struct {
	url, cacert, hstsPath              string
	token, tenant, otherTenant         string
	storeDir                           string
	s203Token, s203Tenant, nonEU, euMd string
	auditLog, auditKey                 string
	policy                             string
	metrics                            string
	retention                          bool
	out                                string
	timeout                            time.Duration
}

func checkUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, `usage: tomkit check [flags]

Runs the tomtest compliance checks against a service and its configuration
and writes an evidence report (report.json, report.md, junit.xml) that maps
every clause of the TOM documents to pass (every part of the clause checked
and passed), partial (the checked parts passed, others were not checked),
fail or not covered. Exits 1 when any check fails, 0 otherwise: exit 0 means
no check failed, not that the TOM documents are proven.

With --url and --audit-log, the checks also read the audit log for the
records of their own requests (access logging, pseudonymized client
addresses, alerts on a burst of authentication failures and on requests
over the rate limit); each record they rely on is proven included under a
signed checkpoint. The rate-limit check exhausts the --token's rate.

Example:
  tomkit check --url https://localhost:8443 --cacert ca.pem \
    --audit-log data/audit --audit-key data/audit.pub --policy policy.csv

flags:
`)
		fs.PrintDefaults()
	}
}

func runCheck(ctx context.Context, e env, args []string) int {
	var o checkOptions
	fs := flag.NewFlagSet("tomkit check", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = checkUsage(fs)
	fs.StringVar(&o.url, "url", "", "https `URL` of the service (TLS 1.3-only and HSTS checks; with --token the HTTP-contract checks)")
	fs.StringVar(&o.cacert, "cacert", "", "PEM `file` of CA certificates to verify the service with (default: system roots)")
	fs.StringVar(&o.hstsPath, "hsts-path", "/healthz", "`path` whose response must carry HSTS")
	fs.StringVar(&o.token, "token", "", "bearer `token` of a principal of --tenant (tenant separation, encryption at rest)")
	fs.StringVar(&o.tenant, "tenant", "", "the token's `tenant`")
	fs.StringVar(&o.otherTenant, "other-tenant", "", "another `tenant`, whose documents the token must not reach")
	fs.StringVar(&o.storeDir, "store-dir", "", "`directory` where the service keeps documents at rest (encryption at rest)")
	fs.StringVar(&o.s203Token, "s203-token", "", "bearer `token` of a principal of the § 203 tenant")
	fs.StringVar(&o.s203Tenant, "s203-tenant", "", "the § 203 `tenant`")
	fs.StringVar(&o.nonEU, "non-eu-model", "gpt-4o", "a `model` that is not EU-controlled, which § 203 mode must refuse")
	fs.StringVar(&o.euMd, "eu-model", "", "an EU-controlled `model`, which § 203 mode must allow (empty skips that half)")
	fs.StringVar(&o.auditLog, "audit-log", "", "audit log `directory` (or postgres:// DSN) to verify")
	fs.StringVar(&o.auditKey, "audit-key", "", "audit verifier key `file`")
	fs.StringVar(&o.policy, "policy", "", "rbac policy `file` (deny-by-default, MFA for privileged permissions)")
	fs.BoolVar(&o.retention, "retention", true, "check that tomkit's retention store with the default policy purges content, and its default backup set rotates snapshots out, after 30 days")
	fs.StringVar(&o.out, "out", "tomkit-evidence", "`directory` for report.json, report.md and junit.xml")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "overall time limit")
	metricsFlags(fs, &o)
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "tomkit check: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if o.url == "" && o.auditLog == "" && o.policy == "" {
		fmt.Fprintln(e.stderr, "tomkit check: nothing to check: give --url, --audit-log or --policy")
		return exitUsage
	}
	if (o.auditLog == "") != (o.auditKey == "") {
		fmt.Fprintln(e.stderr, "tomkit check: --audit-log and --audit-key go together")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	checks, err := buildChecks(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit check: %v\n", err)
		return inputCode(err)
	}
	results := tomtest.Run(ctx, checks...)
	target := o.url
	if target == "" {
		target = "configuration only"
	}
	rep := tomtest.NewReport(target, results)
	if err := writeReports(rep, o.out); err != nil {
		fmt.Fprintf(e.stderr, "tomkit check: %v\n", err)
		return exitFailure
	}
	for _, r := range results {
		fmt.Fprintf(e.stdout, "%-4s %-26s %s\n", strings.ToUpper(map[tomtest.Status]string{tomtest.StatusPass: "ok", tomtest.StatusFail: "fail", tomtest.StatusNotCovered: "n/c"}[r.Status]), r.Check, r.Detail)
	}
	for _, c := range rep.Clauses {
		if c.Status != tomtest.StatusPartial && c.Status != tomtest.StatusFail {
			continue
		}
		var open []string
		for _, p := range c.Parts {
			if p.Status == c.Status || (c.Status == tomtest.StatusPartial && p.Status != tomtest.StatusPass) {
				open = append(open, p.ID)
			}
		}
		label := map[tomtest.Status]string{tomtest.StatusPartial: "PART", tomtest.StatusFail: "FAIL"}[c.Status]
		what := map[tomtest.Status]string{tomtest.StatusPartial: "not checked: ", tomtest.StatusFail: "failed: "}[c.Status]
		if len(open) == 0 {
			open = []string{"a check the catalogue maps to no part"}
		}
		fmt.Fprintf(e.stdout, "%-4s %-26s %s%s\n", label, "TOM "+c.ID, what, strings.Join(open, ", "))
	}
	fmt.Fprintf(e.stdout, "clauses: %s; report in %s\n", rep.Counts(), o.out)
	fmt.Fprintf(e.stdout, "verdict: %s\n", rep.Verdict())
	if rep.Failed() {
		return exitFailure
	}
	return exitOK
}

func writeReports(rep *tomtest.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.json": rep.WriteJSON,
		"report.md":   rep.WriteMarkdown,
		"junit.xml":   rep.WriteJUnit,
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// buildChecks turns the flags into checks. A check whose inputs are
// missing is still listed, so that the report says why it did not run.
func buildChecks(ctx context.Context, o checkOptions) ([]tomtest.Check, error) {
	var roots *x509.CertPool
	if o.cacert != "" {
		pem, err := os.ReadFile(o.cacert)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no certificates", o.cacert)
		}
	}
	var checks []tomtest.Check
	notCovered := func(c tomtest.Check, why string) tomtest.Check {
		c.Run = func(context.Context) error { return fmt.Errorf("%w: %s", tomtest.ErrNotCovered, why) }
		return c
	}
	base := strings.TrimSuffix(o.url, "/")
	svc := tomtest.Service{BaseURL: base, RootCAs: roots}
	if o.url != "" {
		checks = append(checks,
			tomtest.TLS13Only(base, roots),
			tomtest.HSTS(base+o.hstsPath, roots),
			svc.HTTPAuthRequired(),
		)
		if o.token != "" && o.tenant != "" && o.otherTenant != "" {
			checks = append(checks, svc.HTTPTenantSeparation(o.token, o.tenant, o.otherTenant))
		} else {
			checks = append(checks, notCovered(svc.HTTPTenantSeparation("", "", ""), "give --token, --tenant and --other-tenant"))
		}
		if o.storeDir != "" && o.token != "" && o.tenant != "" {
			checks = append(checks, svc.HTTPEncryptedAtRest(o.token, o.tenant, os.DirFS(o.storeDir)))
		} else {
			checks = append(checks, notCovered(tomtest.EncryptedAtRest(nil, nil), "give --store-dir, --token and --tenant"))
		}
		if o.s203Token != "" && o.s203Tenant != "" {
			checks = append(checks, svc.HTTPSection203(o.s203Token, o.s203Tenant, o.nonEU, o.euMd))
		} else {
			checks = append(checks, notCovered(tomtest.Section203(tomtest.Guard203{}), "give --s203-token and --s203-tenant"))
		}
	} else {
		checks = append(checks, notCovered(tomtest.TLS13Only("", nil), "no --url given"))
	}
	if o.url != "" {
		var trail tomtest.AuditTrail
		if o.auditLog != "" {
			t, err := newAuditTrail(o.auditLog, o.auditKey)
			if err != nil {
				return nil, err
			}
			trail = t
		}
		// Order matters against a service that limits its clients and
		// aggregates its alerts (one per kind and window): the
		// access-logging check's unauthenticated request comes before
		// any burst of bad tokens, which may exhaust the checker's
		// per-address allowance; the alert check's burst comes before
		// the pseudonym check's, so that its alert is the window's
		// first; and the rate-limit check, which exhausts the token's
		// rate, comes last.
		tokenWhy := "give --token, --tenant, --audit-log and --audit-key"
		haveToken := trail != nil && o.token != "" && o.tenant != ""
		if haveToken {
			checks = append(checks, svc.HTTPAccessLogged(o.token, o.tenant, trail))
		} else {
			checks = append(checks, notCovered(svc.HTTPAccessLogged("", "", nil), tokenWhy))
		}
		why := "give --audit-log and --audit-key"
		for _, c := range []tomtest.Check{svc.HTTPAuthFailureAlert(trail), svc.HTTPAuditPseudonyms(trail)} {
			if trail == nil {
				c = notCovered(c, why)
			}
			checks = append(checks, c)
		}
		if haveToken {
			checks = append(checks, svc.HTTPRateLimitAlert(o.token, o.tenant, trail))
		} else {
			checks = append(checks, notCovered(svc.HTTPRateLimitAlert("", "", nil), tokenWhy))
		}
	}
	if o.auditLog != "" {
		c, err := auditCheck(o.auditLog, o.auditKey)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	} else {
		checks = append(checks, notCovered(tomtest.AuditIntegrity("", nil), "give --audit-log and --audit-key"))
	}
	if o.policy != "" {
		cs, err := policyChecks(ctx, o.policy)
		if err != nil {
			return nil, err
		}
		checks = append(checks, cs...)
	} else {
		checks = append(checks, notCovered(tomtest.DenyByDefault(nil), "give --policy"))
	}
	if o.retention {
		checks = append(checks, retentionCheck(), backupCheck())
	}
	checks = append(checks, metricsCheck(svc, o))
	return checks, nil
}

func auditCheck(log, keyFile string) (tomtest.Check, error) {
	vkey, err := readVerifier(keyFile)
	if err != nil {
		return tomtest.Check{}, err
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		return tomtest.Check{}, err
	}
	if !isDSN(log) {
		if err := checkInput(log); err != nil {
			return tomtest.Check{}, err
		}
	}
	if isDSN(log) {
		// A database log cannot be copied and tampered with here; the
		// check verifies it as it is.
		c := tomtest.AuditIntegrity(log, nil)
		c.Description = "the audit log in PostgreSQL verifies (tamper detection of a database log is tested in the audit package, not here)"
		c.Run = func(ctx context.Context) error {
			if _, err := verifyPostgres(ctx, log, v); err != nil {
				return fmt.Errorf("%w: audit log does not verify: %v", tomtest.ErrFailed, err)
			}
			return nil
		}
		return c, nil
	}
	verify := func(ctx context.Context, dir string) error {
		_, err := audit.Verify(ctx, dir, v)
		return err
	}
	c := tomtest.AuditIntegrity(log, verify)
	c.Run = func(ctx context.Context) error {
		snap, err := signedSnapshot(ctx, log, v)
		if err != nil {
			return err
		}
		defer os.RemoveAll(snap)
		err = tomtest.AuditIntegrity(snap, verify).Run(ctx)
		if err != nil {
			return fmt.Errorf("%w (in a snapshot of %s)", err, log)
		}
		return nil
	}
	return c, nil
}

// auditTrail is the audit log given to `tomkit check`, read by the checks
// that look for the records of their own requests. Every event it returns
// is proven included under the log's latest signed checkpoint.
type auditTrail struct {
	log string // directory or postgres:// DSN
	v   note.Verifier

	mu     sync.Mutex
	proven map[int64]audit.Event
}

var _ tomtest.AuditTrail = (*auditTrail)(nil)

// maxTrailRecords bounds how many records one read of the trail proves
// (each proof reads the log): the checks need only the few records their
// own requests leave on a quiet instance.
const maxTrailRecords = 5000

func newAuditTrail(log, keyFile string) (*auditTrail, error) {
	vkey, err := readVerifier(keyFile)
	if err != nil {
		return nil, err
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &auditTrail{log: log, v: v, proven: map[int64]audit.Event{}}, nil
}

func (t *auditTrail) verify(ctx context.Context) (audit.Report, error) {
	if isDSN(t.log) {
		return verifyPostgres(ctx, t.log, t.v)
	}
	return audit.Verify(ctx, t.log, t.v)
}

// End returns the number of records in the log, after verifying it.
func (t *auditTrail) End(ctx context.Context) (int64, error) {
	rep, err := t.verify(ctx)
	if errors.Is(err, audit.ErrEmptyLog) {
		return 0, nil
	}
	return rep.Size, err
}

// Events returns the records from index from on that the latest signed
// checkpoint covers, each checked with an inclusion proof.
func (t *auditTrail) Events(ctx context.Context, from int64) ([]audit.Event, error) {
	rep, err := t.verify(ctx)
	if errors.Is(err, audit.ErrEmptyLog) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	start, end := max(from, rep.Pruned), rep.Checkpoint.Size
	if end-start > maxTrailRecords {
		return nil, fmt.Errorf("the audit log grew by %d records during the check, more than the %d it reads: run the check against a quiet instance", end-start, maxTrailRecords)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var pool *pgxpool.Pool
	if isDSN(t.log) {
		if pool, err = pgxpool.New(ctx, t.log); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
	}
	var out []audit.Event
	for i := start; i < end; i++ {
		e, ok := t.proven[i]
		if !ok {
			var p *audit.InclusionProof
			if pool != nil {
				p, err = pglog.Prove(ctx, pool, i)
			} else {
				p, err = audit.Prove(ctx, t.log, i)
			}
			if err != nil {
				return nil, err
			}
			if e, _, err = audit.CheckInclusion(t.v, p); err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			t.proven[i] = e
		}
		out = append(out, e)
	}
	return out, nil
}

// signedSnapshot copies the log in dir to a temporary directory at a
// moment when every record is covered by a signed checkpoint, so that the
// tamper probes test the signatures and not the unsigned tail of a live
// log (records appended since the last checkpoint are tamper-evident only
// once the next checkpoint signs them). It polls until ctx is done.
func signedSnapshot(ctx context.Context, dir string, v note.Verifier) (string, error) {
	for {
		tmp, err := os.MkdirTemp("", "tomkit-check-audit-")
		if err != nil {
			return "", err
		}
		if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("%w: copying audit log %s: %v", tomtest.ErrFailed, dir, err)
		}
		rep, err := audit.Verify(ctx, tmp, v)
		if err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("%w: audit log %s does not verify: %v", tomtest.ErrFailed, dir, err)
		}
		if rep.Size == rep.Checkpoint.Size && rep.Residue == 0 {
			return tmp, nil
		}
		os.RemoveAll(tmp)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: audit log %s: %d of %d records still not covered by a signed checkpoint", tomtest.ErrFailed, dir, rep.Size-rep.Checkpoint.Size, rep.Size)
		case <-time.After(time.Second):
		}
	}
}

// policyChecks loads the rbac policy and probes it: deny-by-default with
// cross-tenant probes for every subject, and MFA for every privileged
// (mfa-marked) permission a subject holds.
func policyChecks(ctx context.Context, path string) ([]tomtest.Check, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec audit.Recorder
	enf, err := rbac.New(ctx, rbac.Config{Logger: &rec, Policy: text, Alert: func(context.Context, audit.Event) error { return nil }})
	if err != nil {
		return nil, fmt.Errorf("--policy %s: %w", path, err)
	}
	decide := func(ctx context.Context, action, object string) error { return enf.Check(ctx, object, action) }
	cross, mfa := policyProbes(text)
	withMFA := func(ctx context.Context) context.Context { return rbac.WithMFA(ctx, time.Now()) }
	var once sync.Once
	closeEnf := func() { once.Do(func() { _ = enf.Close() }) }
	deny := tomtest.DenyByDefault(decide, cross...)
	mfaCheck := tomtest.MFARequired(decide, withMFA, mfa...)
	// Close the enforcer after the last of the two checks has run.
	run := mfaCheck.Run
	mfaCheck.Run = func(ctx context.Context) error { defer closeEnf(); return run(ctx) }
	return []tomtest.Check{deny, mfaCheck}, nil
}

type policyRule struct{ role, tenant, object, action, effect, mfa string }

// policyProbes reads the p and g lines of an rbac policy to build probes:
// each subject, in every tenant where it holds no role, asking for every
// permission of its own roles (cross-tenant: must be denied); and each
// subject asking for each mfa-marked permission of its roles (must need
// MFA). It reads the policy only to pick probes; the decisions are rbac's.
func policyProbes(text []byte) (cross, mfa []tomtest.Probe) {
	var rules []policyRule
	roles := map[[2]string][]string{} // (subject, tenant) -> roles
	tenants := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if len(f) < 4 || slicesContainsEmpty(f[1:4]) {
			continue // rbac refuses such a line; no probe from it
		}
		switch {
		case f[0] == "p" && len(f) >= 6 && f[4] != "":
			r := policyRule{role: f[1], tenant: f[2], object: f[3], action: f[4], effect: f[5]}
			if len(f) >= 7 {
				r.mfa = f[6]
			}
			rules = append(rules, r)
			tenants[r.tenant] = true
		case f[0] == "g" && len(f) >= 4:
			k := [2]string{f[1], f[3]}
			roles[k] = append(roles[k], f[2])
			tenants[f[3]] = true
		}
	}
	concrete := func(obj string) string {
		if strings.HasSuffix(obj, "/*") {
			return strings.TrimSuffix(obj, "*") + "tomtest-probe"
		}
		return obj
	}
	keys := make([][2]string, 0, len(roles))
	for k := range roles {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	for _, k := range keys {
		subject, tenant := k[0], k[1]
		for _, r := range rules {
			if r.tenant != tenant || r.effect != "allow" || !contains(roles[k], r.role) {
				continue
			}
			for t := range tenants {
				if _, has := roles[[2]string{subject, t}]; has || t == tenant {
					continue
				}
				cross = append(cross, tomtest.Probe{
					Actor: audit.Actor{Subject: subject, Tenant: t}, Action: r.action, Resource: concrete(r.object),
					Why: fmt.Sprintf("%s holds %s only in %s", subject, r.role, tenant),
				})
			}
			if r.mfa == "mfa" && !deniedElsewhere(rules, roles[k], tenant, r.object, r.action) {
				mfa = append(mfa, tomtest.Probe{
					Actor: audit.Actor{Subject: subject, Tenant: tenant}, Action: r.action, Resource: concrete(r.object),
					Why: "mfa-marked permission of " + r.role,
				})
			}
		}
	}
	return cross, mfa
}

// deniedElsewhere reports whether one of roles has an explicit deny for
// the same object and action, in which case the mfa probe would be
// refused with MFA too.
func deniedElsewhere(rules []policyRule, roles []string, tenant, object, action string) bool {
	for _, r := range rules {
		if r.tenant == tenant && r.effect == "deny" && r.object == object && r.action == action && contains(roles, r.role) {
			return true
		}
	}
	return false
}

func slicesContainsEmpty(list []string) bool {
	return contains(list, "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// retentionCheck probes tomkit's retention store with the default policy
// (what the reference service uses) on a temporary file backend with an
// injected clock.
func retentionCheck() tomtest.Check {
	maxAge, _ := retention.DefaultPolicy().MaxAgeOf(retention.ClassContent)
	c := tomtest.RetentionWindow(maxAge, func(ctx context.Context, age time.Duration) (bool, error) {
		dir, err := os.MkdirTemp("", "tomkit-check-retention-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		be, err := fsstore.Open(ctx, dir)
		if err != nil {
			return false, err
		}
		now := time.Now()
		clock := func() time.Time { return now }
		st, err := retention.New(be, retention.Config{Logger: &audit.Recorder{}, Clock: audit.ClockFunc(clock)})
		if err != nil {
			return false, err
		}
		probe := audit.WithActor(ctx, audit.Actor{Subject: "tomkit-check", Tenant: "probe"})
		if _, err := st.Put(probe, "probe", strings.NewReader("tomtest retention probe"), retention.PutOptions{Class: retention.ClassContent}); err != nil {
			return false, err
		}
		now = now.Add(age)
		op := retention.WithOperator(audit.WithActor(ctx, audit.Actor{Subject: "tomkit-check"}), "retention window probe")
		if _, err := st.Purge(op, retention.PurgeOptions{}); err != nil {
			return false, err
		}
		part, err := be.Partition("probe")
		if err != nil {
			return false, err
		}
		_, err = part.Stat(ctx, "probe")
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, retention.ErrNotFound):
			return false, nil
		}
		return false, err
	})
	c.Description = "tomkit retention.DefaultPolicy (content class, the reference service's policy) on a file backend: " + c.Description
	return c
}

// backupCheck probes tomkit's backup set with its default keep (30 days,
// retention.DefaultBackupAge) on temporary file backends with an injected
// clock: a snapshot of a store, encrypted under a throwaway in-memory key,
// then a rotation after the probe's age; the snapshot is held while the
// target's backend still has it.
func backupCheck() tomtest.Check {
	c := tomtest.BackupRetention(retention.DefaultBackupAge, func(ctx context.Context, age time.Duration) (bool, error) {
		dir, err := os.MkdirTemp("", "tomkit-check-backup-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		now := time.Now()
		clock := func() time.Time { return now }
		log := &audit.Recorder{}
		store := func(name string) (*retention.Store, retention.Backend, error) {
			be, err := fsstore.Open(ctx, filepath.Join(dir, name))
			if err != nil {
				return nil, nil, err
			}
			st, err := retention.New(be, retention.Config{Logger: log, Clock: audit.ClockFunc(clock)})
			return st, be, err
		}
		src, _, err := store("src")
		if err != nil {
			return false, err
		}
		dst, dstRaw, err := store("backups")
		if err != nil {
			return false, err
		}
		master, err := kms.ParseMasterKey(kms.GenerateMasterKey())
		if err != nil {
			return false, err
		}
		scope := audit.Actor{Subject: "tomkit-check", Tenant: "backups"}
		ring, err := kms.Create(ctx, "", kms.Config{Master: master, Logger: log, Clock: audit.ClockFunc(clock)})
		if err != nil {
			return false, err
		}
		if err := ring.Create(ctx, scope); err != nil {
			return false, err
		}
		env, err := envelope.New(ring.KEK(scope), envelope.Config{Logger: log})
		if err != nil {
			return false, err
		}
		backups, err := retention.NewBackups(retention.BackupConfig{Target: dst, Envelope: env})
		if err != nil {
			return false, err
		}
		probe := audit.WithActor(ctx, audit.Actor{Subject: "tomkit-check", Tenant: "probe"})
		if _, err := src.Put(probe, "probe", strings.NewReader("tomtest backup probe"), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
			return false, err
		}
		ctx = retention.WithOperator(audit.WithActor(ctx, audit.Actor{Subject: "tomkit-check"}), "backup retention probe")
		snap, err := backups.Snapshot(ctx, src)
		if err != nil {
			return false, err
		}
		now = now.Add(age)
		if _, err := backups.Rotate(ctx); err != nil {
			return false, err
		}
		// Ask the backend, not the backup set: an expired snapshot
		// that is hidden but still on disk is held.
		part, err := dstRaw.Partition("_backups")
		if err != nil {
			return false, err
		}
		_, err = part.Stat(ctx, snap.ID)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, retention.ErrNotFound):
			return false, nil
		}
		return false, err
	})
	c.Description = "tomkit retention.Backups with its default keep on a file backend: " + c.Description
	return c
}
