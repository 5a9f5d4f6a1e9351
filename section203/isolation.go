package section203

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention"
)

// ZeroRetention is the zero-data-retention rule of tenants in § 203 mode,
// for [retention.Config.ZDRFor]: pass its ZDR method, and a
// [retention.Store] keeps each tenant's content as its mode says, read
// from the ctx of each call ([ModeFrom], bound by [Modes.Bind]). Content
// of a tenant in normal operation is stored as usual; content of a tenant
// in § 203 mode (or whose mode is unknown, or not bound in ctx) follows
// its rule:
//
//   - [retention.ZDRRefuse]: the write fails with an error matching
//     [ErrZeroRetention] and [retention.ErrZeroRetention]; nothing is
//     stored.
//   - [retention.ZDRMemory]: the content is kept in process memory only,
//     for at most [retention.Config.ZDRTTL], never in the backend or a
//     backup. This is how a product serves a § 203 tenant content it
//     needs for a while (a draft, the context of a conversation).
//
// Other classes (metadata, logs) are stored in every mode: keep what a
// § 203 tenant's product must keep out of [retention.ClassContent]. The
// zero ZeroRetention refuses the content of every tenant in § 203 mode.
type ZeroRetention struct {
	// Default is the rule of a tenant in § 203 mode that Tenants does not
	// list. [retention.ZDROff], the zero value, and any unknown mode mean
	// [retention.ZDRRefuse]: § 203 mode never stores content.
	Default retention.ZDRMode
	// Tenants gives tenants a rule of their own, as Default does.
	Tenants map[string]retention.ZDRMode
}

// ZDR returns the zero-data-retention mode for the tenant in ctx: see
// [ZeroRetention]. With [retention.ZDRRefuse] it returns
// [ErrZeroRetention], which the store's error wraps.
func (z ZeroRetention) ZDR(ctx context.Context) (retention.ZDRMode, error) {
	tenant := audit.ActorFrom(ctx).Tenant
	if tenant != "" && modeFor(ctx, tenant) == Off {
		return retention.ZDROff, nil
	}
	rule, ok := z.Tenants[tenant]
	if !ok {
		rule = z.Default
	}
	if rule == retention.ZDRMemory {
		return rule, nil
	}
	return retention.ZDRRefuse, ErrZeroRetention
}

// IsolationConfig configures [Guard.Isolation]: where each tenant's key
// and storage come from.
type IsolationConfig struct {
	// Keyring holds one KEK per tenant (scope audit.Actor{Tenant: t}). It
	// is required.
	Keyring *kms.Keyring
	// Backend opens the storage of one tenant, given its namespace (see
	// [Namespace]): a directory, a bucket prefix, a schema that no other
	// tenant's Backend can reach. It is required, and called once per
	// tenant and mode.
	Backend func(ctx context.Context, namespace string) (retention.Backend, error)
	// Retention is the template for every tenant's [retention.Store]. A
	// nil Logger means the Guard's. In § 203 mode a ZDR of
	// [retention.ZDROff] is raised to [retention.ZDRRefuse]: content is
	// never written to storage.
	Retention retention.Config
	// Envelope is the template for every tenant's [envelope.Envelope]. A
	// nil Audit means the Guard's Logger.
	Envelope envelope.Config
}

// Isolation hands out each tenant's own encryption and storage: the
// composition that makes a § 203 tenant "separated from normal operation
// with its own, isolated knowledge base" (TOM 004 §1). It is safe for
// concurrent use.
//
// Isolation is the building block for a separate backend per tenant (a
// directory, bucket or database each). For one backend shared by all
// tenants, use the path docs/SECTION203.md shows under "Storing
// tenant data": a [retention.Store] over [retention.NewEncrypted], whose
// partitions and keys are per tenant already, with [ZeroRetention].
type Isolation struct {
	g   *Guard
	cfg IsolationConfig

	mu    sync.Mutex
	silos map[siloKey]*Silo
}

type siloKey struct {
	tenant string
	mode   Mode
}

// Silo is one tenant's isolated resources. Obtain it per request with
// [Isolation.Open], which checks the tenant in ctx; do not pass a Silo
// across tenants.
type Silo struct {
	// Namespace is the tenant's storage namespace, [Namespace] of its
	// name.
	Namespace string
	// Mode is the mode the Silo was opened in.
	Mode Mode
	// Envelope seals and opens under the tenant's own KEK. Bind
	// [Silo.Context] to every message so that a ciphertext cannot be
	// moved to another tenant.
	Envelope *envelope.Envelope
	// Store is the tenant's retention store on its own Backend, with zero
	// data retention for content in § 203 mode.
	Store *retention.Store

	tenant string
}

// Context returns the encryption context that binds a ciphertext to the
// Silo's tenant.
func (s *Silo) Context() envelope.Context {
	return envelope.Context{"tenant": s.tenant}
}

// Namespace returns the storage namespace of tenant: "t-" and 32 hex
// digits of its SHA-256, safe as a directory name, key prefix or schema
// name, and distinct for distinct tenants.
func Namespace(tenant string) string {
	sum := sha256.Sum256([]byte("tomkit section203 namespace\x00" + tenant))
	return "t-" + hex.EncodeToString(sum[:16])
}

// Isolation returns the isolation helper for cfg.
func (g *Guard) Isolation(cfg IsolationConfig) (*Isolation, error) {
	if cfg.Keyring == nil || cfg.Backend == nil {
		return nil, fmt.Errorf("%w: isolation needs a Keyring and a Backend", ErrInvalidConfig)
	}
	if cfg.Retention.Logger == nil {
		cfg.Retention.Logger = g.log
	}
	if cfg.Envelope.Logger == nil {
		cfg.Envelope.Logger = g.log
	}
	return &Isolation{g: g, cfg: cfg, silos: map[siloKey]*Silo{}}, nil
}

// Open returns the Silo of the tenant in ctx, creating its KEK and opening
// its storage on first use. The decision is audited as
// "section203.isolate". Without a tenant it is refused with
// [ErrNoTenant].
func (i *Isolation) Open(ctx context.Context) (*Silo, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.isolate", Mode: mode}
	if actor.Tenant == "" {
		d.Reason = "no tenant"
		_, err := i.g.decide(ctx, actor, d, "silo", ErrNoTenant)
		return nil, err
	}
	ns := Namespace(actor.Tenant)
	key := siloKey{actor.Tenant, mode}
	i.mu.Lock()
	defer i.mu.Unlock()
	s := i.silos[key]
	if s == nil {
		var err error
		if s, err = i.build(ctx, actor.Tenant, ns, mode); err != nil {
			d.Reason = "cannot open: " + err.Error()
			_, derr := i.g.decide(ctx, actor, d, "silo/"+ns, err)
			return nil, derr
		}
		i.silos[key] = s
	}
	d.Allowed, d.Reason = true, "own KEK and storage namespace"
	if _, err := i.g.decide(ctx, actor, d, "silo/"+ns, nil, audit.String("namespace", ns)); err != nil {
		return nil, err
	}
	return s, nil
}

func (i *Isolation) build(ctx context.Context, tenant, ns string, mode Mode) (*Silo, error) {
	scope := audit.Actor{Tenant: tenant}
	if err := i.cfg.Keyring.Create(ctx, scope); err != nil {
		return nil, errtext.Errorf("section203: isolate: %w", err)
	}
	env, err := envelope.New(i.cfg.Keyring.KEK(scope), i.cfg.Envelope)
	if err != nil {
		return nil, errtext.Errorf("section203: isolate: %w", err)
	}
	b, err := i.cfg.Backend(ctx, ns)
	if err != nil {
		return nil, errtext.Errorf("section203: isolate: %w", err)
	}
	rc := i.cfg.Retention
	if mode == On && rc.ZDR == retention.ZDROff {
		rc.ZDR = retention.ZDRRefuse
	}
	st, err := retention.New(b, rc)
	if err != nil {
		return nil, errtext.Errorf("section203: isolate: %w", err)
	}
	return &Silo{Namespace: ns, Mode: mode, Envelope: env, Store: st, tenant: tenant}, nil
}
