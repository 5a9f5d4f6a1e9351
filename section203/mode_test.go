package section203_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
)

func TestNewModesNeedsLogger(t *testing.T) {
	if _, err := section203.NewModes(section203.ModesConfig{}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("err %v, want ErrNoLogger", err)
	}
	if _, err := section203.New(section203.Config{}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("err %v, want ErrNoLogger", err)
	}
	var rec audit.Recorder
	if _, err := section203.NewModes(section203.ModesConfig{Logger: &rec, Tenants: map[string]section203.Mode{"": section203.Off}}); !errors.Is(err, section203.ErrInvalidConfig) {
		t.Fatalf("empty tenant: err %v, want ErrInvalidConfig", err)
	}
}

func TestModeFailsClosed(t *testing.T) {
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off, "kanzlei": section203.On, "zero": 0, "junk": 7})
	normal := bound(modes, "normal")
	cases := []struct {
		name string
		ctx  context.Context
		want section203.Mode
	}{
		{"configured off", normal, section203.Off},
		{"configured on", bound(modes, "kanzlei"), section203.On},
		{"zero Mode is on", bound(modes, "zero"), section203.On},
		{"unknown Mode value is on", bound(modes, "junk"), section203.On},
		{"unknown tenant", bound(modes, "unknown"), section203.On},
		{"empty tenant", bound(modes, ""), section203.On},
		{"nothing in ctx", context.Background(), section203.On},
		{"actor without binding", audit.WithActor(context.Background(), audit.Actor{Tenant: "normal"}), section203.On},
		{"actor swapped after binding", audit.WithActor(normal, audit.Actor{Subject: "mallory", Tenant: "kanzlei"}), section203.On},
		{"nil Modes", (*section203.Modes)(nil).Bind(audit.WithActor(context.Background(), audit.Actor{Tenant: "normal"})), section203.On},
	}
	for _, c := range cases {
		if got := section203.ModeFrom(c.ctx); got != c.want {
			t.Errorf("%s: mode %v, want %v", c.name, got, c.want)
		}
	}
	if got := section203.Mode(42).String(); got != "on" {
		t.Errorf("Mode(42).String() = %q, want on", got)
	}
}

func TestModeLockedOnce(t *testing.T) {
	var rec audit.Recorder
	modes := mustModes(t, &rec, map[string]section203.Mode{"normal": section203.Off})
	admin := audit.WithActor(context.Background(), audit.Actor{Subject: "admin", Tenant: "ops"})
	live := bound(modes, "normal")
	if section203.ModeFrom(live) != section203.Off {
		t.Fatal("precondition: normal is off")
	}
	if err := modes.TurnOn(admin, "normal"); err != nil {
		t.Fatal(err)
	}
	if section203.ModeFrom(live) != section203.On {
		t.Fatal("a ctx bound before TurnOn does not see the mode turned on")
	}
	// A configuration reload cannot turn it off again.
	err := modes.Reload(admin, map[string]section203.Mode{"normal": section203.Off, "new": section203.Off, "other": section203.On})
	if !errors.Is(err, section203.ErrModeLocked) {
		t.Fatalf("reload: err %v, want ErrModeLocked", err)
	}
	if modes.Mode("normal") != section203.On || modes.Mode("new") != section203.Off || modes.Mode("other") != section203.On {
		t.Fatalf("after reload: normal=%v new=%v other=%v", modes.Mode("normal"), modes.Mode("new"), modes.Mode("other"))
	}
	// Without an authorizer, nobody can turn it off.
	if err := modes.TurnOff(admin, "normal", "client left"); !errors.Is(err, section203.ErrNotPrivileged) {
		t.Fatalf("TurnOff without authorizer: err %v, want ErrNotPrivileged", err)
	}
	if modes.Mode("normal") != section203.On {
		t.Fatal("turned off without authorizer")
	}
	var sawLockedDeny, sawOffDeny bool
	for _, e := range rec.Events() {
		if e.Action == "section203.mode_off" && e.Outcome == audit.OutcomeDeny && e.Severity == audit.SeverityCritical {
			if e.Actor.Subject != "admin" {
				t.Errorf("event %+v: actor not recorded", e)
			}
			if e.Reason == "turning off is not configured" {
				sawOffDeny = true
			} else {
				sawLockedDeny = true
			}
		}
	}
	if !sawLockedDeny || !sawOffDeny {
		t.Fatalf("refusals not audited: %+v", rec.Events())
	}
}

func TestTurnOffIsPrivileged(t *testing.T) {
	errNo := errors.New("not a data protection officer")
	authorize := func(ctx context.Context, tenant string) error {
		if audit.ActorFrom(ctx).Subject != "dpo" {
			return errNo
		}
		return nil
	}
	dpo := audit.WithActor(context.Background(), audit.Actor{Subject: "dpo", Tenant: "ops"})
	eve := audit.WithActor(context.Background(), audit.Actor{Subject: "eve", Tenant: "ops"})
	cases := []struct {
		name   string
		ctx    context.Context
		tenant string
		reason string
		log    audit.Logger
		want   error
	}{
		{"authorized", dpo, "kanzlei", "contract ended, ticket 42", nil, nil},
		{"not authorized", eve, "kanzlei", "because", nil, errNo},
		{"no reason", dpo, "kanzlei", "", nil, section203.ErrNotPrivileged},
		{"unauthenticated", context.Background(), "kanzlei", "x", nil, section203.ErrNotPrivileged},
		{"empty tenant", dpo, "", "x", nil, section203.ErrNoTenant},
		{"audit fails", dpo, "kanzlei", "x", failLogger{}, section203.ErrAudit},
	}
	for _, c := range cases {
		var rec audit.Recorder
		var log audit.Logger = &rec
		if c.log != nil {
			log = c.log
		}
		modes, err := section203.NewModes(section203.ModesConfig{Logger: log, AuthorizeOff: authorize})
		if err != nil {
			t.Fatal(err)
		}
		err = modes.TurnOff(c.ctx, c.tenant, c.reason)
		if c.want == nil {
			if err != nil || modes.Mode(c.tenant) != section203.Off {
				t.Errorf("%s: err %v, mode %v", c.name, err, modes.Mode(c.tenant))
			}
		} else if !errors.Is(err, c.want) || modes.Mode(c.tenant) != section203.On {
			t.Errorf("%s: err %v (want %v), mode %v", c.name, err, c.want, modes.Mode(c.tenant))
		}
		if c.log != nil {
			continue
		}
		ev := rec.Events()
		if len(ev) != 1 || ev[0].Action != "section203.mode_off" || ev[0].Severity != audit.SeverityCritical ||
			(ev[0].Outcome == audit.OutcomeAllow) != (c.want == nil) {
			t.Errorf("%s: events %+v", c.name, ev)
		}
	}
}
