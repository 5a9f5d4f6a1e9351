package section203

import (
	"errors"
	"fmt"
	"strings"
)

// The errors of this package. Every refusal by a guard is a
// [*RefusedError], which matches [ErrRefused] and the specific sentinel
// below with [errors.Is].
var (
	// ErrRefused matches every refusal by a guard.
	ErrRefused = errors.New("section203: refused")
	// ErrNoTenant reports a ctx whose actor has no tenant.
	ErrNoTenant = errors.New("section203: no tenant")
	// ErrProvider reports a model provider, model or endpoint that is not
	// registered or not permitted in the tenant's mode.
	ErrProvider = errors.New("section203: provider not permitted")
	// ErrTool reports a tool that is unknown, unclassified or not
	// permitted in the tenant's mode.
	ErrTool = errors.New("section203: tool not permitted")
	// ErrEgress reports a destination that is not allowlisted, or a
	// request that names its destination ambiguously.
	ErrEgress = errors.New("section203: egress not permitted")
	// ErrCrossTenant reports access to another tenant's knowledge base or
	// storage.
	ErrCrossTenant = errors.New("section203: cross-tenant access")
	// ErrTraining reports an attempt to use customer content for training.
	ErrTraining = errors.New("section203: training use refused")
	// ErrModeLocked reports an attempt to turn § 203 mode off through
	// configuration.
	ErrModeLocked = errors.New("section203: mode is locked on")
	// ErrNotPrivileged reports a refused [Modes.TurnOff].
	ErrNotPrivileged = errors.New("section203: not privileged")
	// ErrAudit reports that the audit Logger failed; the action it was to
	// record did not happen.
	ErrAudit = errors.New("section203: audit failed")
	// ErrZeroRetention reports content of a tenant in § 203 mode that a
	// [retention.Store] refused to store under [ZeroRetention] with the
	// rule [retention.ZDRRefuse]. The error the store returns matches it
	// and [retention.ErrZeroRetention].
	ErrZeroRetention = errors.New("section203: content not stored: § 203 zero retention (rule: refuse)")
	// ErrInvalidConfig reports an invalid configuration.
	ErrInvalidConfig = errors.New("section203: invalid configuration")
)

// RefusedError is a guard's refusal. It matches [ErrRefused] and Err.
type RefusedError struct {
	Decision Decision
	// Err is the specific sentinel, such as [ErrEgress], possibly joined
	// with an [ErrAudit] when the refusal could not be recorded.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("section203: %s denied (decision %s, mode %s): %s", strings.TrimPrefix(e.Decision.Action, "section203."), e.Decision.ID, e.Decision.Mode, e.Decision.Reason)
}

// Unwrap returns [ErrRefused] and Err.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Err} }
