package retention_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const day = 24 * time.Hour

type fixture struct {
	s   *retention.Store
	b   retention.Backend
	clk *clock
	rec *audit.Recorder
}

func newFixture(t *testing.T, mod func(*retention.Config)) fixture {
	t.Helper()
	b, err := fsstore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{b: b, clk: newClock(), rec: &audit.Recorder{}}
	cfg := retention.Config{Logger: f.rec, Clock: audit.ClockFunc(f.clk.Now),
		AllowOverride: func(ctx context.Context, a audit.Actor) bool { return a.Subject == "dpo" }}
	if mod != nil {
		mod(&cfg)
	}
	f.s, err = retention.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var userCtx = audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "acme"})

// opCtx takes the operator path (purge, backups) across tenants.
var opCtx = retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "ops"}), "test")

// acme returns the partition of tenant acme, userCtx's tenant.
func acme(t testing.TB, b retention.Backend) retention.Partition {
	t.Helper()
	p, err := b.Partition("acme")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var dpoCtx = audit.WithActor(context.Background(), audit.Actor{Subject: "dpo", Tenant: "acme"})

func (f fixture) put(t *testing.T, key, data string, o retention.PutOptions) retention.Meta {
	t.Helper()
	m, err := f.s.Put(userCtx, key, strings.NewReader(data), o)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return m
}

func (f fixture) read(key string) (string, error) {
	rc, _, err := f.s.Get(userCtx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func (f fixture) lastEvent(t *testing.T, action string) audit.Event {
	t.Helper()
	ev := f.rec.Events()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Action == action {
			return ev[i]
		}
	}
	t.Fatalf("no %s event in %v", action, ev)
	return audit.Event{}
}

func attr(e audit.Event, k string) string {
	for _, a := range e.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

func TestNewRefuses(t *testing.T) {
	b, _ := fsstore.Open(context.Background(), t.TempDir())
	var rec audit.Recorder
	tests := []struct {
		name string
		cfg  retention.Config
		want error
	}{
		{"no logger", retention.Config{}, audit.ErrNoLogger},
		{"backup above 90 days", retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{retention.ClassBackup: 91 * day}}}, retention.ErrRetentionTooLong},
		{"negative age", retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{retention.ClassLog: -day}}}, retention.ErrInvalidDuration},
		{"absurd age", retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{retention.ClassLog: 100 * 365 * day}}}, retention.ErrInvalidDuration},
		{"bad class name", retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{"Bad Class": day}}}, retention.ErrUnknownClass},
		{"empty policy", retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{}}}, retention.ErrUnknownClass},
		{"zdr ttl", retention.Config{Logger: &rec, ZDR: retention.ZDRMemory, ZDRTTL: 48 * time.Hour}, retention.ErrInvalidDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := retention.New(b, tt.cfg); !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := retention.New(b, retention.Config{Logger: &rec, ZDR: 7}); err == nil {
		t.Fatal("unknown ZDR mode accepted")
	}
	// Backups configurable up to 90 days.
	if _, err := retention.New(b, retention.Config{Logger: &rec, Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{retention.ClassBackup: 90 * day}}}); err != nil {
		t.Fatalf("90-day backups refused: %v", err)
	}
}

func TestPutValidation(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name string
		key  string
		o    retention.PutOptions
		want error
	}{
		{"empty class", "k", retention.PutOptions{}, retention.ErrUnknownClass},
		{"unknown class", "k", retention.PutOptions{Class: "secret"}, retention.ErrUnknownClass},
		{"above max", "k", retention.PutOptions{Class: retention.ClassBackup, RetainFor: 31 * day}, retention.ErrRetentionTooLong},
		{"negative", "k", retention.PutOptions{Class: retention.ClassLog, RetainFor: -time.Second}, retention.ErrInvalidDuration},
		{"absurd", "k", retention.PutOptions{Class: retention.ClassLog, RetainFor: 1 << 62}, retention.ErrInvalidDuration},
		{"negative lock", "k", retention.PutOptions{Class: retention.ClassLog, LockFor: -day, Mode: retention.LockGovernance}, retention.ErrInvalidDuration},
		{"lock beyond retention", "k", retention.PutOptions{Class: retention.ClassLog, RetainFor: day, LockFor: 2 * day, Mode: retention.LockCompliance}, retention.ErrRetentionTooLong},
		{"lock without mode", "k", retention.PutOptions{Class: retention.ClassLog, LockFor: day}, retention.ErrUnknownMode},
		{"mode without lock", "k", retention.PutOptions{Class: retention.ClassLog, Mode: retention.LockCompliance}, retention.ErrUnknownMode},
		{"unknown mode", "k", retention.PutOptions{Class: retention.ClassLog, LockFor: day, Mode: "soft"}, retention.ErrUnknownMode},
		{"empty key", "", retention.PutOptions{Class: retention.ClassLog}, retention.ErrInvalidKey},
		{"control key", "a\nb", retention.PutOptions{Class: retention.ClassLog}, retention.ErrInvalidKey},
		{"long key", strings.Repeat("k", 101), retention.PutOptions{Class: retention.ClassLog}, retention.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.Put(userCtx, tt.key, strings.NewReader("x"), tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Put = %v, want %v", err, tt.want)
			}
			if tt.key == "k" {
				if _, err := acme(t, f.b).Stat(context.Background(), "k"); !errors.Is(err, retention.ErrNotFound) {
					t.Fatalf("refused Put stored something: %v", err)
				}
			}
		})
	}
	if e := f.lastEvent(t, "retention.put"); e.Outcome != audit.OutcomeDeny {
		t.Fatalf("refusal audited as %v", e.Outcome)
	}
}

func TestStampAndExpireOnRead(t *testing.T) {
	f := newFixture(t, nil)
	m := f.put(t, "doc", "hello", retention.PutOptions{Class: retention.ClassContent, RetainFor: 2 * day})
	if m.Class != retention.ClassContent || !m.RetainUntil.Equal(f.clk.Now().Add(2*day)) || m.Tenant != "acme" || m.Subject != "alice" {
		t.Fatalf("stamped meta %+v", m)
	}
	def := f.put(t, "default", "x", retention.PutOptions{Class: retention.ClassBackup})
	if got := def.RetainUntil.Sub(def.Created); got != retention.DefaultBackupAge {
		t.Fatalf("default backup retention %v", got)
	}
	if got, err := f.read("doc"); err != nil || got != "hello" {
		t.Fatalf("read live = %q, %v", got, err)
	}
	f.clk.Advance(2*day - time.Nanosecond)
	if _, err := f.read("doc"); err != nil {
		t.Fatalf("read just before expiry: %v", err)
	}
	f.clk.Advance(time.Nanosecond)
	// Expired, not purged: never returned.
	if _, err := f.read("doc"); !errors.Is(err, retention.ErrExpired) {
		t.Fatalf("read expired = %v, want ErrExpired", err)
	}
	if _, err := f.s.Stat(userCtx, "doc"); !errors.Is(err, retention.ErrExpired) {
		t.Fatalf("stat expired = %v, want ErrExpired", err)
	}
	if _, err := acme(t, f.b).Stat(context.Background(), "doc"); err != nil {
		t.Fatalf("object should still be in the backend before purge: %v", err)
	}
	if e := f.lastEvent(t, "retention.read"); e.Outcome != audit.OutcomeDeny || e.Resource != "doc" {
		t.Fatalf("expired read audited as %+v", e)
	}
	if _, err := f.read("missing"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("read missing = %v", err)
	}
}

func TestTightenedPolicyExpiresOldObjects(t *testing.T) {
	dir := t.TempDir()
	b, _ := fsstore.Open(context.Background(), dir)
	clk := newClock()
	var rec audit.Recorder
	s1, _ := retention.New(b, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if _, err := s1.Put(userCtx, "m", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * day)
	s2, _ := retention.New(b, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now), Policy: retention.Policy{MaxAge: map[retention.Class]time.Duration{retention.ClassMetadata: 7 * day}}})
	if _, err := s2.Stat(userCtx, "m"); !errors.Is(err, retention.ErrExpired) {
		t.Fatalf("object older than tightened max age: %v", err)
	}
	rep, err := s2.Purge(opCtx, retention.PurgeOptions{})
	if err != nil || rep.Deleted != 1 {
		t.Fatalf("purge under tightened policy: %+v, %v", rep, err)
	}
	// A class the policy no longer knows is unreadable.
	if _, err := s1.Put(userCtx, "l", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Stat(userCtx, "l"); !errors.Is(err, retention.ErrUnknownClass) {
		t.Fatalf("unknown class read = %v", err)
	}
}

func TestDeleteRules(t *testing.T) {
	type step struct {
		ctx  context.Context
		want error
	}
	over := retention.WithOverride(dpoCtx, "ticket 42")
	tests := []struct {
		name    string
		o       retention.PutOptions
		advance time.Duration
		steps   []step
	}{
		{"plain", retention.PutOptions{Class: retention.ClassLog}, 0, []step{{userCtx, nil}}},
		{"compliance lock", retention.PutOptions{Class: retention.ClassLog, LockFor: day, Mode: retention.LockCompliance}, 0,
			[]step{{userCtx, retention.ErrLocked}, {over, retention.ErrLocked}}},
		{"compliance lock ended", retention.PutOptions{Class: retention.ClassLog, LockFor: day, Mode: retention.LockCompliance}, day, []step{{userCtx, nil}}},
		{"governance lock", retention.PutOptions{Class: retention.ClassLog, LockFor: day, Mode: retention.LockGovernance}, 0,
			[]step{{userCtx, retention.ErrLocked}, {retention.WithOverride(userCtx, "not privileged"), retention.ErrLocked}, {dpoCtx, retention.ErrLocked}, {over, nil}}},
		{"legal hold", retention.PutOptions{Class: retention.ClassLog, LegalHold: true}, 0,
			[]step{{userCtx, retention.ErrLegalHold}, {over, retention.ErrLegalHold}}},
		{"legal hold past max age", retention.PutOptions{Class: retention.ClassLog, RetainFor: day, LegalHold: true}, 2 * day,
			[]step{{over, retention.ErrLegalHold}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.put(t, "k", "x", tt.o)
			f.clk.Advance(tt.advance)
			for i, st := range tt.steps {
				err := f.s.Delete(st.ctx, "k")
				if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
					t.Fatalf("step %d: Delete = %v, want %v", i, err, st.want)
				}
				e := f.lastEvent(t, "retention.delete")
				if st.want != nil && e.Outcome != audit.OutcomeDeny {
					t.Fatalf("step %d: refusal audited as %+v", i, e)
				}
				if st.want == nil {
					if e.Outcome != audit.OutcomeAllow {
						t.Fatalf("step %d: delete audited as %+v", i, e)
					}
					if st.ctx == over && (e.Severity != audit.SeverityWarning || !strings.Contains(e.Reason, "ticket 42") || e.Actor.Subject != "dpo") {
						t.Fatalf("override not audited loudly: %+v", e)
					}
					if _, err := acme(t, f.b).Stat(context.Background(), "k"); !errors.Is(err, retention.ErrNotFound) {
						t.Fatalf("object survived delete: %v", err)
					}
				}
			}
		})
	}
	f := newFixture(t, nil)
	if err := f.s.Delete(userCtx, "missing"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("delete missing = %v", err)
	}
}

func TestLegalHoldLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, "k", "evidence", retention.PutOptions{Class: retention.ClassLog, RetainFor: day})
	if err := f.s.SetLegalHold(userCtx, "k", true); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * day)
	// The hold wins over the maximum age: the purge keeps it, audits it
	// and reports it.
	rep, err := f.s.Purge(opCtx, retention.PurgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || len(rep.Held) != 1 || rep.Held[0] != "acme/k" {
		t.Fatalf("purge report %+v", rep)
	}
	if e := f.lastEvent(t, "retention.purge.held"); e.Resource != "acme/k" || e.Severity != audit.SeverityWarning {
		t.Fatalf("held event %+v", e)
	}
	if e := f.lastEvent(t, "retention.purge"); attr(e, "held") != "1" || e.Severity != audit.SeverityWarning {
		t.Fatalf("purge event %+v", e)
	}
	// Still unreadable for normal readers, readable with an override.
	if _, err := f.read("k"); !errors.Is(err, retention.ErrExpired) {
		t.Fatalf("held expired read = %v", err)
	}
	rc, _, err := f.s.Get(retention.WithOverride(dpoCtx, "court order"), "k")
	if err != nil {
		t.Fatalf("override read: %v", err)
	}
	rc.Close()
	if e := f.lastEvent(t, "retention.read"); e.Outcome != audit.OutcomeAllow || e.Severity != audit.SeverityWarning {
		t.Fatalf("override read event %+v", e)
	}
	// Lifting needs the override.
	if err := f.s.SetLegalHold(userCtx, "k", false); !errors.Is(err, retention.ErrOverrideDenied) {
		t.Fatalf("unprivileged lift = %v", err)
	}
	if err := f.s.SetLegalHold(retention.WithOverride(dpoCtx, "case closed"), "k", false); err != nil {
		t.Fatal(err)
	}
	rep, err = f.s.Purge(opCtx, retention.PurgeOptions{})
	if err != nil || rep.Deleted != 1 || len(rep.Held) != 0 {
		t.Fatalf("purge after lift: %+v, %v", rep, err)
	}
	if err := f.s.SetLegalHold(userCtx, "k", true); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("hold on missing = %v", err)
	}
}

func TestPurgeEvidence(t *testing.T) {
	f := newFixture(t, nil)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		f.put(t, k, k, retention.PutOptions{Class: retention.ClassLog, RetainFor: day})
	}
	f.put(t, "live", "x", retention.PutOptions{Class: retention.ClassLog, RetainFor: 3 * day})
	f.put(t, "locked", "x", retention.PutOptions{Class: retention.ClassLog, RetainFor: day, LockFor: day, Mode: retention.LockCompliance})
	f.clk.Advance(day)
	dry, err := f.s.Purge(opCtx, retention.PurgeOptions{DryRun: true, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Deleted != 6 || dry.Expired != 6 || dry.Batches != 3 {
		t.Fatalf("dry run %+v", dry)
	}
	if _, err := acme(t, f.b).Stat(context.Background(), "a"); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	rep, err := f.s.Purge(opCtx, retention.PurgeOptions{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 6 || rep.Digest != dry.Digest || !rep.Time.Equal(f.clk.Now()) {
		t.Fatalf("purge %+v, dry %+v", rep, dry)
	}
	e := f.lastEvent(t, "retention.purge")
	if attr(e, "deleted") != "6" || attr(e, "digest") != rep.Digest || attr(e, "dry_run") != "false" || !e.Time.Equal(f.clk.Now()) {
		t.Fatalf("purge event %+v", e)
	}
	if got, err := f.read("live"); err != nil || got != "x" {
		t.Fatalf("live object: %q %v", got, err)
	}
	// Idempotent: a second run deletes nothing.
	again, err := f.s.Purge(opCtx, retention.PurgeOptions{})
	if err != nil || again.Deleted != 0 {
		t.Fatalf("second purge %+v %v", again, err)
	}
	if _, err := f.s.Purge(opCtx, retention.PurgeOptions{BatchSize: -1}); err == nil {
		t.Fatal("negative batch accepted")
	}
}

func TestPurgeFailureAudited(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, "a", "x", retention.PutOptions{Class: retention.ClassLog, RetainFor: day})
	ctx, cancel := context.WithCancel(opCtx)
	cancel()
	if _, err := f.s.Purge(ctx, retention.PurgeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled purge = %v", err)
	}
	if e := f.lastEvent(t, "retention.purge"); e.Outcome != audit.OutcomeError {
		t.Fatalf("failed purge event %+v", e)
	}
}

func TestZeroDataRetention(t *testing.T) {
	t.Run("refuse", func(t *testing.T) {
		f := newFixture(t, func(c *retention.Config) { c.ZDR = retention.ZDRRefuse })
		if _, err := f.s.Put(userCtx, "c", strings.NewReader("secret"), retention.PutOptions{Class: retention.ClassContent}); !errors.Is(err, retention.ErrZeroRetention) {
			t.Fatalf("content under ZDR = %v", err)
		}
		if _, err := acme(t, f.b).Stat(context.Background(), "c"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("content reached the backend: %v", err)
		}
		if e := f.lastEvent(t, "retention.put"); e.Outcome != audit.OutcomeDeny {
			t.Fatalf("refusal event %+v", e)
		}
		f.put(t, "m", "meta", retention.PutOptions{Class: retention.ClassMetadata})
	})
	t.Run("memory", func(t *testing.T) {
		f := newFixture(t, func(c *retention.Config) { c.ZDR = retention.ZDRMemory; c.ZDRTTL = time.Hour })
		m := f.put(t, "c", "secret", retention.PutOptions{Class: retention.ClassContent})
		if got := m.RetainUntil.Sub(m.Created); got != time.Hour {
			t.Fatalf("memory TTL %v", got)
		}
		if _, err := acme(t, f.b).Stat(context.Background(), "c"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("content reached the backend: %v", err)
		}
		if got, err := f.read("c"); err != nil || got != "secret" {
			t.Fatalf("memory read %q %v", got, err)
		}
		if _, err := f.s.Put(userCtx, "h", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassContent, LegalHold: true}); !errors.Is(err, retention.ErrZeroRetention) {
			t.Fatalf("held content under ZDR = %v", err)
		}
		f.clk.Advance(time.Hour)
		if _, err := f.read("c"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("memory content after TTL = %v", err)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, func(c *retention.Config) { c.ZDR = retention.ZDRMemory })
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				cls := retention.ClassLog
				if i%2 == 0 {
					cls = retention.ClassContent
				}
				if _, err := f.s.Put(userCtx, "k", bytes.NewReader([]byte("v")), retention.PutOptions{Class: cls}); err != nil {
					t.Error(err)
					return
				}
				if _, err := f.s.Stat(userCtx, "k"); err != nil {
					t.Error(err)
					return
				}
				if _, err := f.s.Purge(opCtx, retention.PurgeOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestPurgeReportsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	b, _ := fsstore.Open(context.Background(), dir)
	clk := newClock()
	rec := &audit.Recorder{}
	s, _ := retention.New(b, retention.Config{Logger: rec, Clock: audit.ClockFunc(clk.Now)})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(userCtx, k, strings.NewReader(k), retention.PutOptions{Class: retention.ClassLog, RetainFor: day}); err != nil {
			t.Fatal(err)
		}
	}
	// Corrupt b's record on disk (the file is named after the hex key).
	path := filepath.Join(dir, "tenants", "acme", "62", "62.obj")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[10] = '!'
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(userCtx, "b"); !errors.Is(err, retention.ErrCorruptMeta) {
		t.Fatalf("corrupt stat = %v", err)
	}
	if e := rec.Events()[len(rec.Events())-1]; e.Action != "retention.read" || e.Outcome != audit.OutcomeError {
		t.Fatalf("corrupt read audited as %+v", e)
	}
	clk.Advance(day)
	rep, err := s.Purge(opCtx, retention.PurgeOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 2 || len(rep.Corrupt) != 1 || rep.Corrupt[0] != "acme/b" {
		t.Fatalf("purge with a corrupt record: %+v", rep)
	}
	var crit bool
	for _, e := range rec.Events() {
		if e.Action == "retention.purge.corrupt" && e.Resource == "acme/b" && e.Severity == audit.SeverityCritical {
			crit = true
		}
	}
	if !crit {
		t.Fatal("corrupt record not audited")
	}
}
