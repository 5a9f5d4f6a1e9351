package section203

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Mode is whether a tenant operates in § 203 mode.
//
// The zero Mode is [On]: a tenant whose mode is unknown, unset or cannot
// be resolved is treated as a § 203 tenant.
type Mode uint8

// The modes.
const (
	// On is § 203 mode: isolated tenant, EU-only providers, no web
	// search, allowlisted egress, zero content retention.
	On Mode = iota
	// Off is normal operation.
	Off
)

// String returns "on" or "off"; any other value prints as "on", the mode
// it is treated as.
func (m Mode) String() string {
	if m == Off {
		return "off"
	}
	return "on"
}

// ModesConfig configures [NewModes]. Its zero value (with a Logger) puts
// every tenant in § 203 mode and refuses every attempt to turn it off.
type ModesConfig struct {
	// Tenants maps a tenant, as in [audit.Actor.Tenant], to its mode. A
	// tenant that is not listed is in § 203 mode. The zero Mode is [On].
	Tenants map[string]Mode
	// Logger records every change of mode and every refused change. It is
	// required: NewModes returns [audit.ErrNoLogger] without it.
	Logger audit.Logger
	// AuthorizeOff decides whether the actor in ctx may turn § 203 mode
	// off for tenant. It returns nil to allow. Nil means nobody may: the
	// mode, once on, stays on for the life of the process.
	AuthorizeOff func(ctx context.Context, tenant string) error
}

// Modes is the per-tenant mode table. Its methods are safe for concurrent
// use. A tenant's mode, once on, is locked: configuration reloads cannot
// turn it off, only [Modes.TurnOff], which is privileged and audited.
type Modes struct {
	log       audit.Logger
	authorize func(ctx context.Context, tenant string) error

	mu      sync.Mutex // serialises changes; reads go through tenants
	tenants atomic.Pointer[map[string]*tenantMode]
}

type tenantMode struct{ off atomic.Bool }

func (t *tenantMode) mode() Mode {
	if t != nil && t.off.Load() {
		return Off
	}
	return On
}

// NewModes returns the mode table for cfg.
func NewModes(cfg ModesConfig) (*Modes, error) {
	if cfg.Logger == nil {
		return nil, errtext.Errorf("section203: new modes: %w", audit.ErrNoLogger)
	}
	m := &Modes{log: cfg.Logger, authorize: cfg.AuthorizeOff}
	tenants := make(map[string]*tenantMode, len(cfg.Tenants))
	for name, mode := range cfg.Tenants {
		if name == "" {
			return nil, fmt.Errorf("%w: empty tenant name", ErrInvalidConfig)
		}
		t := new(tenantMode)
		t.off.Store(mode == Off)
		tenants[name] = t
	}
	m.tenants.Store(&tenants)
	return m, nil
}

func (m *Modes) lookup(tenant string) *tenantMode {
	return (*m.tenants.Load())[tenant]
}

// ensure returns the state of tenant, adding it in § 203 mode when it is
// new. m.mu must be held.
func (m *Modes) ensure(tenant string) *tenantMode {
	if t := m.lookup(tenant); t != nil {
		return t
	}
	old := *m.tenants.Load()
	next := make(map[string]*tenantMode, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	t := new(tenantMode)
	next[tenant] = t
	m.tenants.Store(&next)
	return t
}

// Mode returns the current mode of tenant. An empty or unknown tenant is
// in § 203 mode.
func (m *Modes) Mode(tenant string) Mode {
	if m == nil || tenant == "" {
		return On
	}
	return m.lookup(tenant).mode()
}

type modeKey struct{}

type binding struct {
	tenant string
	state  *tenantMode
}

// Bind returns a copy of ctx that carries the mode of the tenant of the
// actor in ctx (see [audit.WithActor]). The binding is live: when the
// tenant's mode is turned on later, requests already bound see it at
// once. Guards read it with [ModeFrom].
func (m *Modes) Bind(ctx context.Context) context.Context {
	tenant := audit.ActorFrom(ctx).Tenant
	b := &binding{tenant: tenant}
	if m != nil && tenant != "" {
		b.state = m.lookup(tenant)
	}
	return context.WithValue(ctx, modeKey{}, b)
}

// ModeFrom returns the mode carried by ctx. It fails closed: it returns
// [On] when ctx carries no mode, when the tenant is unknown, and when the
// actor in ctx belongs to another tenant than the one the mode was bound
// for.
func ModeFrom(ctx context.Context) Mode {
	return modeFor(ctx, audit.ActorFrom(ctx).Tenant)
}

func modeFor(ctx context.Context, tenant string) Mode {
	b, _ := ctx.Value(modeKey{}).(*binding)
	if b == nil || b.state == nil || tenant != b.tenant {
		return On
	}
	return b.state.mode()
}

// TurnOn puts tenant into § 203 mode and locks it there. It is idempotent.
// The change takes effect even when the audit Logger fails (turning the
// mode on never weakens anything); the Logger's error is returned.
func (m *Modes) TurnOn(ctx context.Context, tenant string) error {
	if tenant == "" {
		return errtext.Errorf("section203: turn on: %w", ErrNoTenant)
	}
	m.mu.Lock()
	m.ensure(tenant).off.Store(false)
	m.mu.Unlock()
	return m.record(ctx, tenant, "section203.mode_on", audit.OutcomeAllow, audit.SeverityNotice, "")
}

// TurnOff takes tenant out of § 203 mode. It is the one way to do so, and
// it is privileged: [ModesConfig.AuthorizeOff] must approve the actor in
// ctx, and reason must say why. Every attempt is audited with severity
// critical. The mode changes only after the event is recorded; when the
// Logger fails, the tenant stays in § 203 mode.
func (m *Modes) TurnOff(ctx context.Context, tenant, reason string) error {
	const action = "section203.mode_off"
	deny := func(err error, why string) error {
		if lerr := m.record(ctx, tenant, action, audit.OutcomeDeny, audit.SeverityCritical, why); lerr != nil {
			err = errors.Join(err, lerr)
		}
		return errtext.Errorf("section203: turn off %q: %w", tenant, err)
	}
	switch {
	case tenant == "":
		return deny(ErrNoTenant, "empty tenant")
	case reason == "":
		return deny(ErrNotPrivileged, "no reason given")
	case audit.ActorFrom(ctx).Subject == "":
		return deny(ErrNotPrivileged, "unauthenticated")
	case m.authorize == nil:
		return deny(ErrNotPrivileged, "turning off is not configured")
	}
	if err := m.authorize(ctx, tenant); err != nil {
		return deny(fmt.Errorf("%w: %w", ErrNotPrivileged, err), "not authorized")
	}
	if err := m.record(ctx, tenant, action, audit.OutcomeAllow, audit.SeverityCritical, reason); err != nil {
		return errtext.Errorf("section203: turn off %q: %w", tenant, err)
	}
	m.mu.Lock()
	m.ensure(tenant).off.Store(true)
	m.mu.Unlock()
	return nil
}

// Reload applies a new configuration. Tenants listed as [On] are turned on;
// tenants not yet known are added with their configured mode. A tenant in
// § 203 mode that the new configuration lists as [Off] stays on: Reload
// returns [ErrModeLocked] for it (audited), and applies everything else.
// Tenants missing from tenants keep their current mode.
func (m *Modes) Reload(ctx context.Context, tenants map[string]Mode) error {
	var errs []error
	for name, mode := range tenants {
		if name == "" {
			errs = append(errs, fmt.Errorf("%w: empty tenant name", ErrInvalidConfig))
			continue
		}
		m.mu.Lock()
		t, known := m.lookup(name), m.lookup(name) != nil
		switch {
		case mode != Off:
			if known && t.mode() == On {
				m.mu.Unlock()
				continue
			}
			m.ensure(name).off.Store(false)
			m.mu.Unlock()
			errs = append(errs, m.record(ctx, name, "section203.mode_on", audit.OutcomeAllow, audit.SeverityNotice, "configuration"))
		case !known:
			m.ensure(name).off.Store(true)
			m.mu.Unlock()
			errs = append(errs, m.record(ctx, name, "section203.configure", audit.OutcomeAllow, audit.SeverityNotice, "new tenant in normal operation"))
		case t.mode() == On:
			m.mu.Unlock()
			err := errtext.Errorf("section203: reload %q: %w", name, ErrModeLocked)
			errs = append(errs, err, m.record(ctx, name, "section203.mode_off", audit.OutcomeDeny, audit.SeverityCritical, "locked: configuration may not turn § 203 mode off"))
		default:
			m.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

func (m *Modes) record(ctx context.Context, tenant, action string, o audit.Outcome, s audit.Severity, reason string) error {
	err := m.log.Log(ctx, audit.Event{
		Actor:    audit.ActorFrom(ctx),
		Action:   action,
		Resource: "tenant/" + tenant,
		Outcome:  o,
		Reason:   reason,
		Severity: s,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}
