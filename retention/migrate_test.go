package retention_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
)

// TestMigrateConflictAndResume checks that an object whose tenant's
// partition already holds a different object under its key is left in
// place and reported, never overwritten, and that one copied by an
// interrupted run (identical record) counts as moved.
func TestMigrateConflictAndResume(t *testing.T) {
	b, err := fsstore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	var rec audit.Recorder
	now := clk.Now().UTC()
	m := retention.Meta{Class: retention.ClassLog, Created: now, RetainUntil: now.Add(day), Tenant: "acme", Subject: "alice"}
	old := b.Unpartitioned()
	for _, k := range []string{"taken", "copied"} {
		if err := old.Put(userCtx, k, strings.NewReader("old "+k), m); err != nil {
			t.Fatal(err)
		}
	}
	// "taken" is acme's in the new layout already, with another record;
	// "copied" was copied by a run that died before deleting the old
	// object.
	taken := m
	taken.Subject = "bob"
	if err := acme(t, b).Put(userCtx, "taken", strings.NewReader("new"), taken); err != nil {
		t.Fatal(err)
	}
	if err := acme(t, b).Put(userCtx, "copied", strings.NewReader("old copied"), m); err != nil {
		t.Fatal(err)
	}
	s, err := retention.New(b, retention.Config{Logger: &rec, Clock: audit.ClockFunc(clk.Now)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Migrate(opCtx, retention.MigrateOptions{})
	if !errors.Is(err, retention.ErrUnpartitioned) || rep.Moved != 1 || fmt.Sprint(rep.Conflicts) != "[taken]" {
		t.Fatalf("Migrate = %+v, %v", rep, err)
	}
	if _, err := f(s).read("taken"); !errors.Is(err, retention.ErrUnpartitioned) {
		t.Fatalf("store usable with a conflict left: %v", err)
	}
	if _, err := old.Stat(userCtx, "taken"); err != nil {
		t.Fatalf("conflicting old object lost: %v", err)
	}
	if _, err := old.Stat(userCtx, "copied"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("copied old object not removed: %v", err)
	}
	// The operator resolves the conflict by hand; the store then opens.
	if err := old.Delete(userCtx, "taken"); err != nil {
		t.Fatal(err)
	}
	if got, err := f(s).read("taken"); err != nil || got != "new" {
		t.Fatalf("after resolving: %q %v", got, err)
	}
}

// f wraps s in a fixture reading as userCtx.
func f(s *retention.Store) fixture { return fixture{s: s} }
