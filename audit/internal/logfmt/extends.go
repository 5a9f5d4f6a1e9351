package logfmt

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Errors of [Extends].
var (
	ErrNotExtended = errors.New("log does not extend the checkpoint")
	ErrBelowPrune  = errors.New("checkpoint below the prune point")
)

// Extends checks that the verified log res (read keeping every hash)
// extends old: its latest checkpoint covers at least old's records, and
// its tree over the first old.Size of them has old's root.
func Extends(res *Result, old Checkpoint) error {
	latest := res.Latest
	switch {
	case latest == nil || latest.Size < old.Size:
		var size int64
		if latest != nil {
			size = latest.Size
		}
		return fmt.Errorf("%w: the checkpoint covers %d records, the log's latest only %d", ErrNotExtended, old.Size, size)
	case res.Prune != nil && old.Size < res.Prune.Min:
		return fmt.Errorf("%w: the checkpoint's size %d is below the prune point %d", ErrBelowPrune, old.Size, res.Prune.Min)
	}
	p, err := tlog.ProveTree(latest.Size, old.Size, res.State.Tree())
	if err != nil {
		return fmt.Errorf("prove consistency: %w", err)
	}
	if err := tlog.CheckTree(p, latest.Size, latest.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("%w: the first %d records differ from the checkpoint's", ErrNotExtended, old.Size)
	}
	return nil
}
