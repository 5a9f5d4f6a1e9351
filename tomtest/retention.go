package tomtest

import (
	"context"
	"fmt"
	"time"
)

// The retention windows of the reference TOM documents.
const (
	// MaxRetention000 is TOM 000 §7: "Retention: max. 30 Tage".
	MaxRetention000 = 30 * 24 * time.Hour
	// MaxRetention004 is TOM 004 §3: deletion cycles "up to 90 days".
	MaxRetention004 = 90 * 24 * time.Hour
)

// RetentionProbe writes one object, lets age pass on the store's injected
// clock, runs the store's purge, and reports whether the object is still
// held. It must use a fresh object (and may use a fresh store) per call.
type RetentionProbe func(ctx context.Context, age time.Duration) (held bool, err error)

// RetentionWindow checks that a store holds nothing longer than max: an
// object aged max plus one hour must be gone. To prove the probe can see an
// object at all, an object aged one minute must still be held. It covers
// TOM 000 §7 when max is at most [MaxRetention000] and 004 §3 when max is
// at most [MaxRetention004].
func RetentionWindow(max time.Duration, probe RetentionProbe) Check {
	clauses := []string{}
	if max <= MaxRetention000 {
		clauses = append(clauses, "000-0.5", "000-7.2")
	}
	if max <= MaxRetention004 {
		clauses = append(clauses, "004-3.1")
	}
	return Check{
		Name:        "retention-window",
		Clauses:     clauses,
		Description: fmt.Sprintf("an object older than %s is purged; a fresh one is kept", max),
		Run: func(ctx context.Context) error {
			if probe == nil || max <= 0 {
				return fmt.Errorf("%w: no retention probe or window given", ErrNotCovered)
			}
			held, err := probe(ctx, time.Minute)
			if err != nil {
				return failf("retention probe (fresh object): %v", err)
			}
			if !held {
				return failf("a one-minute-old object is already gone: the probe cannot see objects")
			}
			held, err = probe(ctx, max+time.Hour)
			if err != nil {
				return failf("retention probe (expired object): %v", err)
			}
			if held {
				return failf("an object aged %s is still held; the window is %s", max+time.Hour, max)
			}
			return nil
		},
	}
}
