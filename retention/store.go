package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention/internal/record"
)

// ZDRMode selects zero-data-retention behaviour for [ClassContent].
type ZDRMode int

// The zero-data-retention modes.
const (
	// ZDROff stores content like any other class.
	ZDROff ZDRMode = iota
	// ZDRRefuse refuses every content-class write with
	// [ErrZeroRetention]. Nothing reaches the backend.
	ZDRRefuse
	// ZDRMemory keeps content-class objects in process memory only, for
	// at most [Config.ZDRTTL]. They never reach the backend, so no backup
	// can contain them, and they are lost on restart by design.
	ZDRMemory
)

// DefaultZDRTTL is the in-memory lifetime of content under [ZDRMemory]
// when [Config.ZDRTTL] is zero.
const DefaultZDRTTL = 15 * time.Minute

// MaxZDRTTL is the longest in-memory lifetime [Config.ZDRTTL] may set.
const MaxZDRTTL = 24 * time.Hour

// Config configures a [Store]. The zero Config is not usable only because
// Logger is required; every other zero field has a safe meaning.
//
// A Config must not be modified after it has been passed to [New].
type Config struct {
	// Policy gives each class its maximum age. The zero Policy means
	// [DefaultPolicy].
	Policy Policy
	// Logger receives the audit events. Required: [New] returns
	// [audit.ErrNoLogger] without one.
	Logger audit.Logger
	// Clock gives the time of stamps, expiry and zero-data-retention
	// TTLs. Nil means the system clock.
	Clock audit.Clock
	// ZDR is the zero-data-retention mode. Zero is [ZDROff]; an unknown
	// value makes [New] fail.
	ZDR ZDRMode
	// ZDRFor, when set, decides zero data retention per call from the
	// ctx, so that each tenant's content follows its own rule: use
	// section203.ZeroRetention for tenants in § 203 mode. It returns the
	// mode for the tenant in ctx. A non-nil error means refuse: the write
	// fails with an error that matches both [ErrZeroRetention] and that
	// error, which should name the rule. An unknown mode counts as
	// [ZDRRefuse]. When ZDR is set as well, the stricter of the two
	// applies (ZDRRefuse, then ZDRMemory, then ZDROff). Nil means ZDR
	// alone decides.
	ZDRFor func(ctx context.Context) (ZDRMode, error)
	// ZDRTTL is how long content lives in memory under [ZDRMemory]. Zero
	// means [DefaultZDRTTL]; it may not exceed [MaxZDRTTL].
	ZDRTTL time.Duration
	// AllowOverride decides whether the actor in ctx may use a privileged
	// override requested with [WithOverride]: an early delete under a
	// governance lock, reading an expired object kept by a legal hold,
	// lifting a legal hold. Nil grants nothing.
	AllowOverride func(ctx context.Context, a audit.Actor) bool
}

// Store enforces a retention [Policy] over a [Backend], and keeps tenants
// apart: every object belongs to the tenant of the [audit.Actor] in the ctx
// that wrote it, and lives in that tenant's [Partition]. It is safe for
// concurrent use.
type Store struct {
	b      Backend
	policy Policy
	log    audit.Logger
	now    func() time.Time
	zdr    ZDRMode
	zdrFor func(context.Context) (ZDRMode, error)
	ttl    time.Duration
	allow  func(context.Context, audit.Actor) bool

	// partitioned is set once the backend's unpartitioned key space has
	// been seen empty.
	partitioned atomic.Bool
	// parts caches the Partition of each tenant seen (a Partition is a
	// stateless view; Backend.Partition does no I/O).
	parts sync.Map

	mu  sync.Mutex
	mem map[memKey]memObject
}

type memKey struct{ tenant, key string }

type memObject struct {
	data []byte
	meta Meta
}

// New returns a Store over b.
func New(b Backend, cfg Config) (*Store, error) {
	if b == nil {
		return nil, errors.New("retention: nil backend")
	}
	if cfg.Logger == nil {
		return nil, audit.ErrNoLogger
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	s := &Store{b: b, policy: cfg.Policy, log: cfg.Logger, now: time.Now, zdr: cfg.ZDR, zdrFor: cfg.ZDRFor, ttl: cfg.ZDRTTL, allow: cfg.AllowOverride}
	if s.policy.MaxAge == nil {
		s.policy = DefaultPolicy()
	}
	if cfg.Clock != nil {
		s.now = cfg.Clock.Now
	}
	switch s.zdr {
	case ZDROff, ZDRRefuse, ZDRMemory:
	default:
		return nil, fmt.Errorf("retention: unknown zero-data-retention mode %d", s.zdr)
	}
	if s.ttl == 0 {
		s.ttl = DefaultZDRTTL
	}
	if s.ttl < 0 || s.ttl > MaxZDRTTL {
		return nil, fmt.Errorf("%w: zero-data-retention ttl %v", ErrInvalidDuration, s.ttl)
	}
	return s, nil
}

// Backend returns the backend s wraps. Writing to it directly bypasses
// every rule, tenant isolation included; it is there for backups and
// restore tests.
func (s *Store) Backend() Backend { return s.b }

// Policy returns the policy s enforces.
func (s *Store) Policy() Policy { return s.policy }

// partition returns the partition of the tenant in ctx. A ctx without a
// tenant is [ErrNoTenant], a malformed or reserved tenant
// [ErrInvalidTenant], a store not yet migrated [ErrUnpartitioned]; each
// refusal is audited and nothing reaches the backend.
func (s *Store) partition(ctx context.Context, action, key string) (Partition, string, error) {
	tenant := audit.ActorFrom(ctx).Tenant
	if err := checkActorTenant(tenant); err != nil {
		return nil, "", s.deny(ctx, action, key, err)
	}
	if err := s.checkPartitioned(ctx); err != nil {
		return nil, "", s.deny(ctx, action, key, err)
	}
	if p, ok := s.parts.Load(tenant); ok {
		return p.(Partition), tenant, nil
	}
	p, err := s.b.Partition(tenant)
	if err != nil {
		return nil, "", s.deny(ctx, action, key, err)
	}
	s.parts.Store(tenant, p)
	return p, tenant, nil
}

// checkPartitioned returns [ErrUnpartitioned] while the backend holds
// objects from before tenant partitioning. Once it is seen empty, the
// answer is kept.
func (s *Store) checkPartitioned(ctx context.Context) error {
	if s.partitioned.Load() {
		return nil
	}
	es, err := s.b.Unpartitioned().List(ctx, "", 1)
	if err != nil {
		return errtext.Errorf("retention: check for unpartitioned objects: %w", err)
	}
	if len(es) > 0 {
		return ErrUnpartitioned
	}
	s.partitioned.Store(true)
	return nil
}

// PutOptions says how an object is to be retained.
type PutOptions struct {
	// Class is the data class. Required.
	Class Class
	// RetainFor is the maximum retention from now. Zero means the class's
	// maximum age; more than that is [ErrRetentionTooLong].
	RetainFor time.Duration
	// LockFor is the minimum retention from now. Zero means none. It may
	// not exceed the retention.
	LockFor time.Duration
	// Mode is the lock's mode, required when LockFor is set.
	Mode LockMode
	// LegalHold puts the object under legal hold at once.
	LegalHold bool
}

type overrideKey struct{}

// WithOverride returns a copy of ctx that requests a privileged override
// for the reason given. The override takes effect only when
// [Config.AllowOverride] grants it to the actor in ctx, and every use is
// audited with the reason at warning severity. An override acts within
// the actor's own tenant only.
func WithOverride(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, overrideKey{}, reason)
}

func (s *Store) overrideGranted(ctx context.Context) (string, bool) {
	reason, ok := ctx.Value(overrideKey{}).(string)
	if !ok || reason == "" || s.allow == nil {
		return "", false
	}
	return reason, s.allow(ctx, audit.ActorFrom(ctx))
}

func (s *Store) stamp(o PutOptions, owner audit.Actor) (Meta, error) {
	max, err := s.policy.MaxAgeOf(o.Class)
	if err != nil {
		return Meta{}, err
	}
	if o.RetainFor < 0 || o.RetainFor > MaxAbsurdAge || o.LockFor < 0 || o.LockFor > MaxAbsurdAge {
		return Meta{}, fmt.Errorf("%w: retain %v, lock %v", ErrInvalidDuration, o.RetainFor, o.LockFor)
	}
	retain := o.RetainFor
	if retain == 0 {
		retain = max
	}
	if retain > max {
		return Meta{}, fmt.Errorf("%w: %v asked, class %s allows %v", ErrRetentionTooLong, retain, o.Class, max)
	}
	if o.LockFor > retain {
		return Meta{}, fmt.Errorf("%w: lock %v longer than retention %v", ErrRetentionTooLong, o.LockFor, retain)
	}
	switch {
	case o.LockFor == 0 && o.Mode != LockNone:
		return Meta{}, fmt.Errorf("%w: %q without a lock duration", ErrUnknownMode, o.Mode)
	case o.LockFor > 0 && o.Mode != LockGovernance && o.Mode != LockCompliance:
		return Meta{}, fmt.Errorf("%w: %q", ErrUnknownMode, o.Mode)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	m := Meta{Class: o.Class, Created: now, RetainUntil: now.Add(retain), Mode: o.Mode,
		LegalHold: o.LegalHold, Tenant: owner.Tenant, Subject: owner.Subject}
	if o.LockFor > 0 {
		m.LockUntil = now.Add(o.LockFor)
	}
	return m, m.Validate()
}

// Put stores the content read from r under key in the partition of the
// tenant in ctx, stamped with its class, retain-until and owner. Another
// tenant's object under the same key is a different object and is left
// alone. Under zero data retention, content-class objects are refused
// ([ZDRRefuse]) or kept in memory only ([ZDRMemory]). A refused write is
// audited as "retention.put" with outcome deny.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, o PutOptions) (Meta, error) {
	p, tenant, err := s.partition(ctx, "retention.put", key)
	if err != nil {
		return Meta{}, err
	}
	a := audit.ActorFrom(ctx)
	return s.put(ctx, p, key, r, o, audit.Actor{Tenant: tenant, Subject: a.Subject})
}

// zdrMode returns the zero-data-retention mode of a call, and the rule
// that refuses when it refuses for a reason of its own (see
// [Config.ZDRFor]).
func (s *Store) zdrMode(ctx context.Context) (ZDRMode, error) {
	if s.zdrFor == nil {
		return s.zdr, nil
	}
	mode, rule := s.zdrFor(ctx)
	switch {
	case rule != nil:
		return ZDRRefuse, rule
	case mode != ZDROff && mode != ZDRMemory:
		mode = ZDRRefuse
	}
	if zdrRank(s.zdr) > zdrRank(mode) {
		mode = s.zdr
	}
	return mode, nil
}

// refusedByRule is a content write refused by the rule that
// [Config.ZDRFor] returned: it reads as the rule and matches both it and
// [ErrZeroRetention].
type refusedByRule struct{ rule error }

func (e refusedByRule) Error() string   { return e.rule.Error() }
func (e refusedByRule) Unwrap() []error { return []error{ErrZeroRetention, e.rule} }

func zdrRank(m ZDRMode) int {
	switch m {
	case ZDROff:
		return 0
	case ZDRMemory:
		return 1
	}
	return 2
}

// keepsMemory reports whether s may hold content in memory.
func (s *Store) keepsMemory() bool { return s.zdr == ZDRMemory || s.zdrFor != nil }

func (s *Store) put(ctx context.Context, p Partition, key string, r io.Reader, o PutOptions, owner audit.Actor) (Meta, error) {
	if err := record.CheckKey(key); err != nil {
		return Meta{}, err
	}
	m, err := s.stamp(o, owner)
	zdr := ZDROff
	if err == nil && o.Class == ClassContent {
		var rule error
		zdr, rule = s.zdrMode(ctx)
		switch {
		case rule != nil:
			err = refusedByRule{rule}
		case zdr == ZDRRefuse || zdr == ZDRMemory && (o.LegalHold || o.LockFor != 0):
			err = ErrZeroRetention
		}
	}
	if err != nil {
		return Meta{}, s.deny(ctx, "retention.put", key, err)
	}
	mk := memKey{owner.Tenant, key}
	if zdr == ZDRMemory {
		if ttl := s.ttl; m.RetainUntil.Sub(m.Created) > ttl {
			m.RetainUntil = m.Created.Add(ttl)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return Meta{}, errtext.Errorf("retention: put %q: %w", key, err)
		}
		s.mu.Lock()
		if s.mem == nil {
			s.mem = make(map[memKey]memObject)
		}
		s.mem[mk] = memObject{data: data, meta: m}
		s.mu.Unlock()
		return m, nil
	}
	if err := p.Put(ctx, key, r, m); err != nil {
		return Meta{}, errtext.Errorf("retention: put %q: %w", key, err)
	}
	if s.keepsMemory() {
		s.mu.Lock()
		delete(s.mem, mk) // the newer object wins
		s.mu.Unlock()
	}
	return m, nil
}

func (s *Store) memGet(k memKey, now time.Time) (memObject, bool) {
	if !s.keepsMemory() {
		return memObject{}, false // only ZDRMemory keeps content in memory
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.mem[k]
	if ok && !o.meta.RetainUntil.After(now) {
		delete(s.mem, k)
		return memObject{}, false
	}
	return o, ok
}

// Get returns the object under key in the partition of the tenant in ctx,
// and its record. An object of another tenant is [ErrNotFound], exactly as
// a missing one (same error, same path), and every miss is audited as
// "retention.read" with outcome deny. An object past its retain-until, or
// older than its class's current maximum age, is [ErrExpired] even when
// no purge has removed it yet, and the attempt is audited. The one
// exception is an expired object kept by a legal hold, which a granted
// override (see [WithOverride]) may read; that read is audited at warning
// severity.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, Meta, error) {
	p, tenant, err := s.partition(ctx, "retention.read", key)
	if err != nil {
		return nil, Meta{}, err
	}
	return s.get(ctx, p, tenant, key)
}

func (s *Store) get(ctx context.Context, p Partition, tenant, key string) (io.ReadCloser, Meta, error) {
	if err := record.CheckKey(key); err != nil {
		return nil, Meta{}, err
	}
	now := s.now()
	if o, ok := s.memGet(memKey{tenant, key}, now); ok {
		return io.NopCloser(bytes.NewReader(o.data)), o.meta, nil
	}
	rc, m, err := p.Get(ctx, key)
	if err == nil {
		err = owned(key, tenant, m)
		if err != nil {
			rc.Close()
		}
	}
	if err != nil {
		return nil, Meta{}, s.backendErr(ctx, key, errtext.Errorf("retention: get %q: %w", key, err))
	}
	if err := s.readable(ctx, key, m, now); err != nil {
		rc.Close()
		return nil, Meta{}, err
	}
	return rc, m, nil
}

// owned returns [ErrCorruptMeta] when a partition returns a record
// naming another tenant: it fails closed rather than hand out another
// tenant's object.
func owned(key, tenant string, m Meta) error {
	if m.Tenant != tenant {
		return fmt.Errorf("%w: object %q in the partition of tenant %q records tenant %q", ErrCorruptMeta, key, tenant, m.Tenant)
	}
	return nil
}

// Stat returns the record of the object under key in the partition of
// the tenant in ctx, with the same rules as [Store.Get].
func (s *Store) Stat(ctx context.Context, key string) (Meta, error) {
	p, tenant, err := s.partition(ctx, "retention.read", key)
	if err != nil {
		return Meta{}, err
	}
	if err := record.CheckKey(key); err != nil {
		return Meta{}, err
	}
	now := s.now()
	if o, ok := s.memGet(memKey{tenant, key}, now); ok {
		return o.meta, nil
	}
	m, err := p.Stat(ctx, key)
	if err == nil {
		err = owned(key, tenant, m)
	}
	if err != nil {
		return Meta{}, s.backendErr(ctx, key, errtext.Errorf("retention: stat %q: %w", key, err))
	}
	if err := s.readable(ctx, key, m, now); err != nil {
		return Meta{}, err
	}
	return m, nil
}

func (s *Store) readable(ctx context.Context, key string, m Meta, now time.Time) error {
	max, err := s.policy.MaxAgeOf(m.Class)
	if err != nil {
		return s.deny(ctx, "retention.read", key, err)
	}
	if m.RetainUntil.After(now) && m.Created.After(now.Add(-max)) {
		return nil
	}
	if m.LegalHold {
		if reason, ok := s.overrideGranted(ctx); ok {
			return s.logErr(ctx, audit.Event{Action: "retention.read", Resource: key, Outcome: audit.OutcomeAllow,
				Severity: audit.SeverityWarning, Reason: "override: read of expired object under legal hold: " + reason})
		}
	}
	return s.deny(ctx, "retention.read", key, fmt.Errorf("%w: %q retain-until %s", ErrExpired, key, m.RetainUntil.Format(time.RFC3339)))
}

// Delete removes the object under key in the partition of the tenant in
// ctx (another tenant's object is [ErrNotFound]), applying the hold rules:
//   - an object under legal hold is never deleted ([ErrLegalHold]);
//   - before its lock ends, an object in compliance mode is never deleted
//     ([ErrLocked]), and one in governance mode only with a granted
//     override ([WithOverride]);
//   - otherwise, and always once the lock has ended, the delete proceeds.
//
// Every delete and every refusal is audited as "retention.delete".
func (s *Store) Delete(ctx context.Context, key string) error {
	p, tenant, err := s.partition(ctx, "retention.delete", key)
	if err != nil {
		return err
	}
	if err := record.CheckKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	_, inMem := s.mem[memKey{tenant, key}]
	delete(s.mem, memKey{tenant, key})
	s.mu.Unlock()
	m, err := p.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) && inMem {
		return s.logErr(ctx, audit.Event{Action: "retention.delete", Resource: key, Outcome: audit.OutcomeAllow})
	}
	if err == nil {
		err = owned(key, tenant, m)
	}
	if err != nil {
		return s.deny(ctx, "retention.delete", key, errtext.Errorf("retention: delete %q: %w", key, err))
	}
	now := s.now()
	ev := audit.Event{Action: "retention.delete", Resource: key, Outcome: audit.OutcomeAllow}
	switch {
	case m.LegalHold:
		return s.deny(ctx, "retention.delete", key, fmt.Errorf("%w: %q", ErrLegalHold, key))
	case m.Mode == LockCompliance && m.LockUntil.After(now):
		return s.deny(ctx, "retention.delete", key, fmt.Errorf("%w: %q in compliance mode until %s", ErrLocked, key, m.LockUntil.Format(time.RFC3339)))
	case m.Mode == LockGovernance && m.LockUntil.After(now):
		reason, ok := s.overrideGranted(ctx)
		if !ok {
			return s.deny(ctx, "retention.delete", key, fmt.Errorf("%w: %q in governance mode until %s", ErrLocked, key, m.LockUntil.Format(time.RFC3339)))
		}
		ev.Severity, ev.Reason = audit.SeverityWarning, "override: early delete under governance lock: "+reason
	}
	if err := s.log.Log(ctx, ev); err != nil {
		return errtext.Errorf("retention: delete %q: audit: %w", key, err)
	}
	if err := p.Delete(ctx, key); err != nil {
		return errtext.Errorf("retention: delete %q: %w", key, err)
	}
	return nil
}

// SetLegalHold places (on) or lifts (off) a legal hold on the object under
// key in the partition of the tenant in ctx (another tenant's object is
// [ErrNotFound]). Placing a hold is always allowed; lifting one needs a
// granted override ([WithOverride]), else [ErrOverrideDenied]. Both are
// audited as "retention.hold". A hold placed on an expired object keeps
// it from the purge; it stays unreadable except through an override.
func (s *Store) SetLegalHold(ctx context.Context, key string, on bool) error {
	p, tenant, err := s.partition(ctx, "retention.hold", key)
	if err != nil {
		return err
	}
	if err := record.CheckKey(key); err != nil {
		return err
	}
	m, err := p.Stat(ctx, key)
	if err == nil {
		err = owned(key, tenant, m)
	}
	if err != nil {
		return s.deny(ctx, "retention.hold", key, errtext.Errorf("retention: hold %q: %w", key, err))
	}
	ev := audit.Event{Action: "retention.hold", Resource: key, Outcome: audit.OutcomeAllow, Severity: audit.SeverityNotice,
		Attributes: []audit.Attr{audit.String("legal_hold", fmt.Sprint(on))}}
	if !on && m.LegalHold {
		reason, ok := s.overrideGranted(ctx)
		if !ok {
			return s.deny(ctx, "retention.hold", key, fmt.Errorf("%w: lifting legal hold on %q", ErrOverrideDenied, key))
		}
		ev.Severity, ev.Reason = audit.SeverityWarning, "override: legal hold lifted: "+reason
	}
	m.LegalHold = on
	if err := s.log.Log(ctx, ev); err != nil {
		return errtext.Errorf("retention: hold %q: audit: %w", key, err)
	}
	if err := p.SetMeta(ctx, key, m); err != nil {
		return errtext.Errorf("retention: hold %q: %w", key, err)
	}
	return nil
}

// deny audits a refused action and returns err (or the audit failure
// joined with it).
func (s *Store) deny(ctx context.Context, action, key string, err error) error {
	out := audit.OutcomeDeny
	if errors.Is(err, ErrCorruptMeta) || !isPolicyErr(err) {
		out = audit.OutcomeError
	}
	ev := audit.Event{Action: action, Resource: key, Outcome: out, Reason: err.Error(), Severity: audit.SeverityNotice}
	if lerr := s.log.Log(ctx, ev); lerr != nil {
		return errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	return err
}

// backendErr audits a corrupt record met on a read (the object is
// unreadable from then on) and a miss (which is how another tenant's
// object looks), and returns err.
func (s *Store) backendErr(ctx context.Context, key string, err error) error {
	if errors.Is(err, ErrCorruptMeta) || errors.Is(err, ErrNotFound) {
		return s.deny(ctx, "retention.read", key, err)
	}
	return err
}

func isPolicyErr(err error) bool {
	for _, e := range []error{ErrUnknownClass, ErrRetentionTooLong, ErrInvalidDuration, ErrExpired, ErrLocked,
		ErrLegalHold, ErrOverrideDenied, ErrZeroRetention, ErrNotFound, ErrUnknownMode, ErrInvalidKey,
		ErrNoTenant, ErrInvalidTenant, ErrNotOperator} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Store) logErr(ctx context.Context, e audit.Event) error {
	if err := s.log.Log(ctx, e); err != nil {
		return errtext.Errorf("retention: audit: %w", err)
	}
	return nil
}
