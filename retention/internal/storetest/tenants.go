package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
)

// Actors of the tenant battery.
var (
	Acme     = audit.Actor{Subject: "alice", Tenant: "acme"}
	Globex   = audit.Actor{Subject: "gina", Tenant: "globex"}
	Operator = audit.Actor{Subject: "ops-oncall"}
)

// spy counts the calls that reach a backend.
type spy struct {
	retention.Backend
	calls atomic.Int64
}

func (s *spy) Partition(t string) (retention.Partition, error) {
	s.calls.Add(1)
	return s.Backend.Partition(t)
}

func (s *spy) Unpartitioned() retention.Partition {
	s.calls.Add(1)
	return s.Backend.Unpartitioned()
}

func (s *spy) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	s.calls.Add(1)
	return s.Backend.Tenants(ctx, after, limit)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T, b retention.Backend, c *clock, rec *audit.Recorder) *retention.Store {
	t.Helper()
	st, err := retention.New(b, retention.Config{Logger: rec, Clock: audit.ClockFunc(c.now),
		AllowOverride: func(context.Context, audit.Actor) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func as(a audit.Actor) context.Context { return audit.WithActor(context.Background(), a) }

func opCtx() context.Context {
	return retention.WithOperator(as(Operator), "storetest")
}

func attr(e audit.Event, k string) string {
	for _, a := range e.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

func lastEvent(t *testing.T, rec *audit.Recorder) audit.Event {
	t.Helper()
	es := rec.Events()
	if len(es) == 0 {
		t.Fatal("no audit event")
	}
	return es[len(es)-1]
}

func read(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runTenants is the tenant-isolation battery: partitions at the backend,
// and every Store operation under the same tenant, another tenant, no
// actor and an actor without a tenant; the operator path; migration.
func runTenants(t *testing.T, open func(t *testing.T) retention.Backend) {
	ctx := context.Background()

	t.Run("TenantNames", func(t *testing.T) {
		b := open(t)
		bad := []string{"", "A", "Acme", "acme ", "../acme", "..", ".", "a/b", `a\b`, "a.b", "-a", "a\x00b",
			"ä", "acme\n", "ACME", strings.Repeat("a", retention.MaxTenantLen+1), "a:b", "a%2fb"}
		for _, n := range bad {
			if _, err := b.Partition(n); !errors.Is(err, retention.ErrInvalidTenant) {
				t.Errorf("Partition(%q) = %v, want ErrInvalidTenant", n, err)
			}
			if err := retention.CheckTenant(n); !errors.Is(err, retention.ErrInvalidTenant) {
				t.Errorf("CheckTenant(%q) = %v, want ErrInvalidTenant", n, err)
			}
		}
		for _, n := range []string{"a", "acme", "t-1", "x_y", "0", strings.Repeat("z", retention.MaxTenantLen)} {
			if _, err := b.Partition(n); err != nil {
				t.Errorf("Partition(%q) = %v", n, err)
			}
		}
	})

	t.Run("SameKeyTwoTenants", func(t *testing.T) {
		b := open(t)
		pa, _ := b.Partition("acme")
		pg, _ := b.Partition("globex")
		ma, mg := Meta(retention.ClassLog, time.Hour), Meta(retention.ClassContent, 2*time.Hour)
		ma.Tenant, mg.Tenant = "acme", "globex"
		put(t, pa, "k", []byte("acme's"), ma)
		put(t, pg, "k", []byte("globex's"), mg)
		put(t, pa, "only-acme", []byte("x"), ma)
		if data, m := get(t, pa, "k"); string(data) != "acme's" || m.Tenant != "acme" {
			t.Fatalf("acme k = %q %+v", data, m)
		}
		if data, m := get(t, pg, "k"); string(data) != "globex's" || m.Tenant != "globex" {
			t.Fatalf("globex k = %q %+v", data, m)
		}
		for _, p := range []retention.Partition{pg} {
			if _, err := p.Stat(ctx, "only-acme"); !errors.Is(err, retention.ErrNotFound) {
				t.Fatalf("globex Stat(only-acme) = %v", err)
			}
			if err := p.Delete(ctx, "only-acme"); !errors.Is(err, retention.ErrNotFound) {
				t.Fatalf("globex Delete(only-acme) = %v", err)
			}
			if err := p.SetMeta(ctx, "only-acme", mg); !errors.Is(err, retention.ErrNotFound) {
				t.Fatalf("globex SetMeta(only-acme) = %v", err)
			}
		}
		es, err := pg.List(ctx, "", 100)
		if err != nil || fmt.Sprint(keys(es)) != "[k]" {
			t.Fatalf("globex List = %v, %v", keys(es), err)
		}
		cut := retention.Cutoff{Now: T0.Add(10 * time.Hour)}
		es, err = pg.ListExpired(ctx, cut, "", 100)
		if err != nil || fmt.Sprint(keys(es)) != "[k]" {
			t.Fatalf("globex ListExpired = %v, %v", keys(es), err)
		}
		del, err := pg.DeleteExpired(ctx, cut, []string{"k", "only-acme"})
		if err != nil || fmt.Sprint(del) != "[k]" {
			t.Fatalf("globex DeleteExpired = %v, %v", del, err)
		}
		if data, _ := get(t, pa, "k"); string(data) != "acme's" {
			t.Fatalf("acme k after globex delete = %q", data)
		}
		if _, err := pa.Stat(ctx, "only-acme"); err != nil {
			t.Fatalf("acme only-acme lost: %v", err)
		}
		ts, err := b.Tenants(ctx, "", 10)
		if err != nil || fmt.Sprint(ts) != "[acme]" && fmt.Sprint(ts) != "[acme globex]" {
			t.Fatalf("Tenants = %v, %v", ts, err)
		}
		put(t, pg, "k2", nil, mg)
		if ts, err := b.Tenants(ctx, "", 1); err != nil || fmt.Sprint(ts) != "[acme]" {
			t.Fatalf("Tenants limit 1 = %v, %v", ts, err)
		}
		if ts, err := b.Tenants(ctx, "acme", 10); err != nil || fmt.Sprint(ts) != "[globex]" {
			t.Fatalf("Tenants after acme = %v, %v", ts, err)
		}
		if es, err := b.Unpartitioned().List(ctx, "", 10); err != nil || len(es) != 0 {
			t.Fatalf("Unpartitioned lists %v, %v", keys(es), err)
		}
	})

	t.Run("RecordOfOtherTenantRefused", func(t *testing.T) {
		b := open(t)
		pa, _ := b.Partition("acme")
		m := Meta(retention.ClassLog, time.Hour)
		m.Tenant = "globex"
		if err := pa.Put(ctx, "k", strings.NewReader("x"), m); !errors.Is(err, retention.ErrInvalidTenant) {
			t.Fatalf("Put with other tenant's record = %v, want ErrInvalidTenant", err)
		}
		m.Tenant = "acme"
		put(t, pa, "k", []byte("x"), m)
		m.Tenant = "globex"
		if err := pa.SetMeta(ctx, "k", m); !errors.Is(err, retention.ErrInvalidTenant) {
			t.Fatalf("SetMeta with other tenant's record = %v, want ErrInvalidTenant", err)
		}
	})

	t.Run("StoreIsolation", func(t *testing.T) { storeIsolation(t, open) })
	t.Run("NoTenantRefused", func(t *testing.T) { noTenant(t, open) })
	t.Run("OperatorPurge", func(t *testing.T) { operatorPurge(t, open) })
	t.Run("OperatorBackup", func(t *testing.T) { operatorBackup(t, open) })
	t.Run("Migration", func(t *testing.T) { migration(t, open) })
}

// storeIsolation runs every Store operation as the owner and as another
// tenant, and checks that the other tenant sees exactly what a missing
// object gives: the same error text and the same audit event.
func storeIsolation(t *testing.T, open func(t *testing.T) retention.Backend) {
	var rec audit.Recorder
	c := &clock{T0}
	st := newStore(t, open(t), c, &rec)
	acme, globex := as(Acme), as(Globex)
	ov := func(ctx context.Context) context.Context { return retention.WithOverride(ctx, "legal request") }

	type op struct {
		name string
		do   func(ctx context.Context, key string) error
	}
	ops := []op{
		{"Get", func(ctx context.Context, key string) error {
			rc, _, err := st.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"Stat", func(ctx context.Context, key string) error { _, err := st.Stat(ctx, key); return err }},
		{"Delete", func(ctx context.Context, key string) error { return st.Delete(ctx, key) }},
		{"DeleteOverride", func(ctx context.Context, key string) error { return st.Delete(ov(ctx), key) }},
		{"HoldOn", func(ctx context.Context, key string) error { return st.SetLegalHold(ctx, key, true) }},
		{"HoldOffOverride", func(ctx context.Context, key string) error { return st.SetLegalHold(ov(ctx), key, false) }},
	}
	put := func(ctx context.Context, key, data string, o retention.PutOptions) {
		t.Helper()
		if _, err := st.Put(ctx, key, strings.NewReader(data), o); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	locked := retention.PutOptions{Class: retention.ClassLog, LockFor: time.Hour, Mode: retention.LockGovernance, LegalHold: true}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			key := "obj-" + o.name
			// What a missing object gives.
			missErr := o.do(globex, key)
			if !errors.Is(missErr, retention.ErrNotFound) {
				t.Fatalf("%s of a missing object = %v, want ErrNotFound", o.name, missErr)
			}
			missEv := lastEvent(t, &rec)
			put(acme, key, "acme's secret", locked)
			n := len(rec.Events())
			otherErr := o.do(globex, key)
			if otherErr == nil || otherErr.Error() != missErr.Error() || !errors.Is(otherErr, retention.ErrNotFound) {
				t.Fatalf("%s by another tenant = %v, want exactly %v", o.name, otherErr, missErr)
			}
			if len(rec.Events()) != n+1 {
				t.Fatalf("%s by another tenant: %d events, want 1", o.name, len(rec.Events())-n)
			}
			ev := lastEvent(t, &rec)
			if ev.Outcome != audit.OutcomeDeny || ev.Action != missEv.Action || ev.Reason != missEv.Reason ||
				ev.Resource != key || ev.Actor != (audit.Actor{}) && ev.Actor != Globex {
				t.Fatalf("%s by another tenant audited as %+v, want deny like %+v", o.name, ev, missEv)
			}
			// The owner's object is untouched.
			rc, m, err := st.Get(acme, key)
			if err != nil {
				t.Fatalf("owner Get after %s by another tenant: %v", o.name, err)
			}
			if got := read(t, rc); got != "acme's secret" || !m.LegalHold || m.Tenant != "acme" {
				t.Fatalf("owner's object changed: %q %+v", got, m)
			}
		})
	}

	t.Run("PutOver", func(t *testing.T) {
		put(acme, "shared", "acme's", retention.PutOptions{Class: retention.ClassLog})
		put(globex, "shared", "globex's", retention.PutOptions{Class: retention.ClassMetadata})
		for _, c := range []struct {
			ctx  context.Context
			want string
		}{{acme, "acme's"}, {globex, "globex's"}} {
			rc, m, err := st.Get(c.ctx, "shared")
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, rc); got != c.want || m.Tenant != audit.ActorFrom(c.ctx).Tenant {
				t.Fatalf("Get = %q %+v, want %q", got, m, c.want)
			}
		}
		if err := st.Delete(globex, "shared"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stat(acme, "shared"); err != nil {
			t.Fatalf("acme's object gone after globex's delete: %v", err)
		}
	})

	t.Run("SameTenant", func(t *testing.T) {
		put(acme, "own", "v1", retention.PutOptions{Class: retention.ClassLog})
		put(as(audit.Actor{Subject: "bob", Tenant: "acme"}), "own", "v2", retention.PutOptions{Class: retention.ClassLog})
		rc, m, err := st.Get(acme, "own")
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, rc); got != "v2" || m.Subject != "bob" {
			t.Fatalf("Get = %q %+v", got, m)
		}
		if m, err := st.Stat(acme, "own"); err != nil || m.Subject != "bob" || m.Tenant != "acme" {
			t.Fatalf("Stat = %+v, %v", m, err)
		}
		if err := st.SetLegalHold(acme, "own", true); err != nil {
			t.Fatal(err)
		}
		if err := st.SetLegalHold(ov(acme), "own", false); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(acme, "own"); err != nil {
			t.Fatal(err)
		}
	})
}

// noTenant checks that a ctx without a tenant (no actor, a subject only,
// or a malformed or reserved tenant) is refused at every entry point
// with a typed error, is audited, and reaches no backend.
func noTenant(t *testing.T, open func(t *testing.T) retention.Backend) {
	var rec audit.Recorder
	sp := &spy{Backend: open(t)}
	st := newStore(t, sp, &clock{T0}, &rec)
	if _, err := st.Put(as(Acme), "k", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog}); err != nil {
		t.Fatal(err)
	}
	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"NoActor", context.Background(), retention.ErrNoTenant},
		{"SubjectOnly", as(audit.Actor{Subject: "alice"}), retention.ErrNoTenant},
		{"OperatorMarked", retention.WithOperator(as(Operator), "x"), retention.ErrNoTenant},
		{"Traversal", as(audit.Actor{Subject: "eve", Tenant: "../acme"}), retention.ErrInvalidTenant},
		{"UpperCase", as(audit.Actor{Subject: "eve", Tenant: "ACME"}), retention.ErrInvalidTenant},
		{"Reserved", as(audit.Actor{Subject: "eve", Tenant: "_backups"}), retention.ErrInvalidTenant},
	}
	ops := map[string]func(ctx context.Context) error{
		"Put": func(ctx context.Context) error {
			_, err := st.Put(ctx, "k", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog})
			return err
		},
		"Get": func(ctx context.Context) error {
			_, _, err := st.Get(ctx, "k")
			return err
		},
		"Stat":    func(ctx context.Context) error { _, err := st.Stat(ctx, "k"); return err },
		"Delete":  func(ctx context.Context) error { return st.Delete(ctx, "k") },
		"HoldOn":  func(ctx context.Context) error { return st.SetLegalHold(ctx, "k", true) },
		"HoldOff": func(ctx context.Context) error { return st.SetLegalHold(retention.WithOverride(ctx, "r"), "k", false) },
	}
	before := sp.calls.Load()
	for _, c := range ctxs {
		for name, do := range ops {
			n := len(rec.Events())
			if err := do(c.ctx); !errors.Is(err, c.want) {
				t.Errorf("%s with %s = %v, want %v", name, c.name, err, c.want)
			}
			if got := rec.Events(); len(got) != n+1 || got[n].Outcome != audit.OutcomeDeny {
				t.Errorf("%s with %s: refusal not audited as a deny", name, c.name)
			}
		}
	}
	if got := sp.calls.Load(); got != before {
		t.Fatalf("refused calls reached the backend %d times", got-before)
	}
}

func operatorPurge(t *testing.T, open func(t *testing.T) retention.Backend) {
	var rec audit.Recorder
	c := &clock{T0}
	st := newStore(t, open(t), c, &rec)
	for _, a := range []audit.Actor{Acme, Globex} {
		for _, k := range []string{"old", "shared"} {
			if _, err := st.Put(as(a), k, strings.NewReader(a.Tenant), retention.PutOptions{Class: retention.ClassLog, RetainFor: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.t = T0.Add(30 * time.Minute)
	if _, err := st.Put(as(Acme), "live", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog}); err != nil {
		t.Fatal(err)
	}
	c.t = T0.Add(2 * time.Hour)
	for name, ctx := range map[string]context.Context{
		"Tenant":         as(Acme),
		"TenantMarked":   retention.WithOperator(as(Acme), "x"),
		"NoActorMarked":  retention.WithOperator(context.Background(), "x"),
		"OperatorNoMark": as(Operator),
	} {
		if _, err := st.Purge(ctx, retention.PurgeOptions{}); !errors.Is(err, retention.ErrNotOperator) {
			t.Fatalf("Purge by %s = %v, want ErrNotOperator", name, err)
		}
	}
	if _, err := st.Stat(as(Acme), "live"); err != nil {
		t.Fatal(err)
	}
	rep, err := st.Purge(opCtx(), retention.PurgeOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 4 || rep.Tenants != 2 {
		t.Fatalf("operator purge = %+v, want 4 deleted across 2 tenants", rep)
	}
	ev := lastEvent(t, &rec)
	if ev.Action != "retention.purge" || attr(ev, "cross_tenant") != "true" || attr(ev, "operator") != Operator.Subject ||
		attr(ev, "tenants") != "2" {
		t.Fatalf("purge event = %+v", ev)
	}
	if _, err := st.Stat(as(Acme), "live"); err != nil {
		t.Fatalf("live object purged: %v", err)
	}
	for _, a := range []audit.Actor{Acme, Globex} {
		if _, err := st.Stat(as(a), "shared"); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("%s shared after purge: %v", a.Tenant, err)
		}
	}
}

func operatorBackup(t *testing.T, open func(t *testing.T) retention.Backend) {
	var rec audit.Recorder
	c := &clock{T0}
	src := newStore(t, open(t), c, &rec)
	target := newStore(t, open(t), c, &rec)
	for _, a := range []audit.Actor{Acme, Globex} {
		for _, k := range []string{"shared", "own-" + a.Tenant} {
			if _, err := src.Put(as(a), k, strings.NewReader(a.Tenant+":"+k), retention.PutOptions{Class: retention.ClassMetadata}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bs, err := retention.NewBackups(retention.BackupConfig{Target: target, InsecurePlaintextBackups: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Snapshot(as(Acme), src); !errors.Is(err, retention.ErrNotOperator) {
		t.Fatalf("Snapshot by a tenant = %v, want ErrNotOperator", err)
	}
	info, err := bs.Snapshot(opCtx(), src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Objects != 4 {
		t.Fatalf("snapshot = %+v, want 4 objects", info)
	}
	if ev := lastEvent(t, &rec); attr(ev, "cross_tenant") != "true" || attr(ev, "operator") != Operator.Subject {
		t.Fatalf("snapshot event = %+v", ev)
	}
	// A snapshot is in no tenant's reach.
	for _, a := range []audit.Actor{Acme, Globex} {
		if _, err := target.Stat(as(a), info.ID); !errors.Is(err, retention.ErrNotFound) {
			t.Fatalf("tenant %s sees the snapshot: %v", a.Tenant, err)
		}
	}
	if _, err := bs.RestoreVerify(as(Globex), info.ID, open(t)); !errors.Is(err, retention.ErrNotOperator) {
		t.Fatalf("RestoreVerify by a tenant = %v, want ErrNotOperator", err)
	}
	// A snapshot holds objects as the backend stores them (ciphertext for
	// an encrypting backend): restore into the raw backend, read back
	// through the wrapper.
	scratch := open(t)
	vr, err := bs.RestoreVerify(opCtx(), info.ID, raw(scratch))
	if err != nil {
		t.Fatal(err)
	}
	if vr.Objects != 4 || vr.Digest != info.Digest {
		t.Fatalf("restore = %+v, snapshot %+v", vr, info)
	}
	for _, a := range []audit.Actor{Acme, Globex} {
		p, _ := scratch.Partition(a.Tenant)
		if data, m := get(t, p, "shared"); string(data) != a.Tenant+":shared" || m.Tenant != a.Tenant {
			t.Fatalf("restored %s shared = %q %+v", a.Tenant, data, m)
		}
	}
	if list, err := bs.List(opCtx()); err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// tomkit's own partitions are left out: no snapshot of a snapshot.
	c.t = c.t.Add(time.Second)
	if info, err := bs.Snapshot(opCtx(), target); err != nil || info.Objects != 0 {
		t.Fatalf("snapshot of the backup target = %+v, %v", info, err)
	}
}

// raw returns the backend an encrypting backend wraps, or b.
func raw(b retention.Backend) retention.Backend {
	if r, ok := b.(interface{ Raw() retention.Backend }); ok {
		return r.Raw()
	}
	return b
}

func migration(t *testing.T, open func(t *testing.T) retention.Backend) {
	ctx := context.Background()
	b := open(t)
	old := b.Unpartitioned()
	// An encrypting backend never stored an object without a valid
	// tenant; such orphans are written (in the clear) to the raw backend,
	// and only their placement is checked.
	encrypting := raw(b) != b
	for _, o := range []struct{ key, tenant string }{
		{"a-doc", "acme"}, {"g-doc", "globex"}, {"shared", "acme"}, {"orphan", ""}, {"bad-tenant", "Acme"},
	} {
		m := Meta(retention.ClassLog, 100*24*time.Hour)
		m.Tenant = o.tenant
		p := old
		if retention.CheckTenant(o.tenant) != nil {
			p = raw(b).Unpartitioned()
		}
		if err := p.Put(ctx, o.key, bytes.NewReader([]byte(o.key)), m); err != nil {
			t.Fatalf("legacy Put(%q): %v", o.key, err)
		}
	}
	expired := Meta(retention.ClassLog, 30*time.Minute)
	expired.Tenant = "acme"
	if err := old.Put(ctx, "expired", strings.NewReader("x"), expired); err != nil {
		t.Fatal(err)
	}
	var rec audit.Recorder
	st := newStore(t, b, &clock{T0.Add(time.Hour)}, &rec)
	// The maximum age holds for old objects too: the operator's purge
	// reaches the unpartitioned key space.
	if rep, err := st.Purge(opCtx(), retention.PurgeOptions{}); err != nil || rep.Deleted != 1 {
		t.Fatalf("purge of an unmigrated store = %+v, %v", rep, err)
	}
	_, _, err := st.Get(as(Acme), "a-doc")
	if !errors.Is(err, retention.ErrUnpartitioned) || !strings.Contains(err.Error(), "tomkit retention migrate") {
		t.Fatalf("Get on an unmigrated store = %v, want ErrUnpartitioned naming the fix", err)
	}
	if _, err := st.Put(as(Globex), "new", strings.NewReader("x"), retention.PutOptions{Class: retention.ClassLog}); !errors.Is(err, retention.ErrUnpartitioned) {
		t.Fatalf("Put on an unmigrated store = %v", err)
	}
	if _, err := st.Migrate(as(Acme), retention.MigrateOptions{}); !errors.Is(err, retention.ErrNotOperator) {
		t.Fatalf("Migrate by a tenant = %v, want ErrNotOperator", err)
	}
	rep, err := st.Migrate(opCtx(), retention.MigrateOptions{DryRun: true})
	if !errors.Is(err, retention.ErrUnpartitioned) || rep.Moved != 3 || len(rep.Orphans) != 2 {
		t.Fatalf("dry run = %+v, %v", rep, err)
	}
	if es, _ := old.List(ctx, "", 10); len(es) != 5 {
		t.Fatalf("dry run moved objects: %v", keys(es))
	}
	rep, err = st.Migrate(opCtx(), retention.MigrateOptions{})
	if !errors.Is(err, retention.ErrUnpartitioned) || rep.Moved != 3 || fmt.Sprint(rep.Orphans) != "[bad-tenant orphan]" {
		t.Fatalf("Migrate without an orphan tenant = %+v, %v", rep, err)
	}
	if _, _, err := st.Get(as(Acme), "a-doc"); !errors.Is(err, retention.ErrUnpartitioned) {
		t.Fatalf("Get with orphans left = %v, want ErrUnpartitioned", err)
	}
	rep, err = st.Migrate(opCtx(), retention.MigrateOptions{Orphans: "quarantine"})
	if err != nil || rep.Adopted != 2 || rep.Moved != 0 {
		t.Fatalf("Migrate with an orphan tenant = %+v, %v", rep, err)
	}
	ev := lastEvent(t, &rec)
	if ev.Action != "retention.migrate" || attr(ev, "operator") != Operator.Subject || attr(ev, "cross_tenant") != "true" {
		t.Fatalf("migrate event = %+v", ev)
	}
	for _, c := range []struct {
		a        audit.Actor
		key      string
		found    bool
		wantData string
	}{
		{Acme, "a-doc", true, "a-doc"}, {Acme, "shared", true, "shared"}, {Globex, "g-doc", true, "g-doc"},
		{Globex, "a-doc", false, ""}, {Acme, "g-doc", false, ""}, {Acme, "orphan", false, ""},
		{audit.Actor{Subject: "q", Tenant: "quarantine"}, "orphan", true, "orphan"},
	} {
		if encrypting && c.a.Tenant == "quarantine" {
			if _, err := st.Stat(as(c.a), c.key); err != nil {
				t.Fatalf("adopted %q: %v", c.key, err)
			}
			continue
		}
		rc, m, err := st.Get(as(c.a), c.key)
		if !c.found {
			if !errors.Is(err, retention.ErrNotFound) {
				t.Fatalf("%s Get(%q) = %v, want ErrNotFound", c.a.Tenant, c.key, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s Get(%q): %v", c.a.Tenant, c.key, err)
		}
		if got := read(t, rc); got != c.wantData || m.Tenant != c.a.Tenant {
			t.Fatalf("%s Get(%q) = %q %+v", c.a.Tenant, c.key, got, m)
		}
	}
	if es, err := old.List(ctx, "", 10); err != nil || len(es) != 0 {
		t.Fatalf("unpartitioned after migration: %v, %v", keys(es), err)
	}
}
