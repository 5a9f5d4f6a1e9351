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
		Run:         window(max, probe, "object"),
	}
}

// BackupRetention checks that a backup set keeps no snapshot longer than
// max, the way [RetentionWindow] checks a store: probe takes a snapshot,
// lets age pass, rotates the backup set and reports whether the snapshot
// is still kept. A snapshot aged max plus one hour must be gone, one aged a
// minute must be kept. It covers TOM 000 ("Auf einen Blick" and §7:
// backups kept at most 30 days) when max is at most [MaxRetention000] and
// 004 §3 (backup deletion cycles up to 90 days) when max is at most
// [MaxRetention004].
func BackupRetention(max time.Duration, probe RetentionProbe) Check {
	clauses := []string{}
	if max <= MaxRetention000 {
		clauses = append(clauses, "000-0.5", "000-7.2")
	}
	if max <= MaxRetention004 {
		clauses = append(clauses, "004-3.1")
	}
	return Check{
		Name:        "backup-retention",
		Clauses:     clauses,
		Description: fmt.Sprintf("a backup snapshot older than %s is rotated out; a fresh one is kept", max),
		Run:         window(max, probe, "snapshot"),
	}
}

// window is the Run of [RetentionWindow] and [BackupRetention].
func window(max time.Duration, probe RetentionProbe, what string) func(context.Context) error {
	return func(ctx context.Context) error {
		if probe == nil || max <= 0 {
			return fmt.Errorf("%w: no retention probe or window given", ErrNotCovered)
		}
		held, err := probe(ctx, time.Minute)
		if err != nil {
			return failf("retention probe (fresh %s): %v", what, err)
		}
		if !held {
			return failf("a one-minute-old %s is already gone: the probe cannot see them", what)
		}
		held, err = probe(ctx, max+time.Hour)
		if err != nil {
			return failf("retention probe (expired %s): %v", what, err)
		}
		if held {
			return failf("a %s aged %s is still held; the window is %s", what, max+time.Hour, max)
		}
		return nil
	}
}
