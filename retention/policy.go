package retention

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tomkit/tomkit/retention/internal/record"
)

// Class is a data class. Every stored object belongs to exactly one, and
// the class decides the object's maximum age.
type Class string

// The classes of [DefaultPolicy]. A [Policy] may define more; a class name
// is 1 to 32 characters from a-z, 0-9, '-' and '_', starting with a letter.
const (
	// ClassContent is customer content: documents, prompts, answers. It
	// is the class that zero data retention keeps off persistent storage.
	ClassContent Class = "content"
	// ClassMetadata is data about content: ids, sizes, timestamps, audit
	// correlation. It stays allowed under zero data retention.
	ClassMetadata Class = "metadata"
	// ClassBackup is a backup snapshot.
	ClassBackup Class = "backup"
	// ClassLog is operational logging.
	ClassLog Class = "log"
	// ClassAudit is audit evidence.
	ClassAudit Class = "audit"
)

const day = 24 * time.Hour

// Limits on durations. A duration outside them is [ErrInvalidDuration] or,
// for backups, [ErrRetentionTooLong].
const (
	// MaxBackupAge is the ceiling for the backup class: the TOMs promise
	// deletion and overwrite cycles of at most 90 days.
	MaxBackupAge = 90 * day
	// DefaultBackupAge is the default backup retention: the TOMs promise
	// backups are kept at most 30 days.
	DefaultBackupAge = 30 * day
	// MaxAbsurdAge is the longest maximum age any class may have. Anything
	// longer is a mistake (a unit error, an overflow), not a policy.
	MaxAbsurdAge = 30 * 365 * day
)

// Errors about policies and the durations asked of them.
var (
	// ErrUnknownClass reports a class the policy does not define, or an
	// empty class.
	ErrUnknownClass = errors.New("retention: unknown data class")
	// ErrRetentionTooLong reports a retention longer than the class
	// allows, a lock longer than the retention, or a backup age above
	// [MaxBackupAge].
	ErrRetentionTooLong = errors.New("retention: retention exceeds class maximum")
	// ErrInvalidDuration reports a negative, zero where not allowed, or
	// absurdly long duration.
	ErrInvalidDuration = errors.New("retention: invalid duration")
)

// Policy maps each data class to its maximum age: an object of the class
// is gone (unreadable at once, deleted by the next [Store.Purge]) no later
// than its creation plus the maximum age.
//
// A Policy must not be modified after it has been passed to [New].
type Policy struct {
	// MaxAge is the maximum age per class. Nil means the defaults of
	// [DefaultPolicy]. A non-nil map replaces them entirely: classes it
	// does not name are unknown.
	MaxAge map[Class]time.Duration
}

// DefaultPolicy returns the TOM defaults: content 30 days, metadata 90
// days, backups 30 days ([DefaultBackupAge]), logs 30 days and audit
// evidence 365 days.
func DefaultPolicy() Policy {
	return Policy{MaxAge: map[Class]time.Duration{
		ClassContent:  30 * day,
		ClassMetadata: 90 * day,
		ClassBackup:   DefaultBackupAge,
		ClassLog:      30 * day,
		ClassAudit:    365 * day,
	}}
}

func (p Policy) ages() map[Class]time.Duration {
	if p.MaxAge == nil {
		return DefaultPolicy().MaxAge
	}
	return p.MaxAge
}

// Validate reports whether p is usable: every class name well-formed, every
// age positive and at most [MaxAbsurdAge], and the backup class at most
// [MaxBackupAge].
func (p Policy) Validate() error {
	ages := p.ages()
	if len(ages) == 0 {
		return fmt.Errorf("%w: policy defines no class", ErrUnknownClass)
	}
	for c, a := range ages {
		if !record.ValidClass(string(c)) {
			return fmt.Errorf("%w: malformed class name %q", ErrUnknownClass, c)
		}
		if a <= 0 || a > MaxAbsurdAge {
			return fmt.Errorf("%w: class %s max age %v", ErrInvalidDuration, c, a)
		}
		if c == ClassBackup && a > MaxBackupAge {
			return fmt.Errorf("%w: backup max age %v above %v", ErrRetentionTooLong, a, MaxBackupAge)
		}
	}
	return nil
}

// MaxAgeOf returns the maximum age of c, or [ErrUnknownClass].
func (p Policy) MaxAgeOf(c Class) (time.Duration, error) {
	a, ok := p.ages()[c]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownClass, c)
	}
	return a, nil
}

// Classes returns the classes p defines, sorted.
func (p Policy) Classes() []Class {
	var cs []Class
	for c := range p.ages() {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return cs
}

// Cutoff returns the [Cutoff] of p at now: what a purge at now removes.
func (p Policy) Cutoff(now time.Time) Cutoff {
	cb := make(map[Class]time.Time, len(p.ages()))
	for c, a := range p.ages() {
		cb[c] = now.Add(-a)
	}
	return Cutoff{Now: now, CreatedBefore: cb}
}
