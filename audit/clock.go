package audit

import "time"

// Clock is where a tomkit component reads the time and gets its tickers.
// Every tomkit config that needs time has a Clock field, and a nil Clock
// means the system clock. Tests pass their own to move time without
// sleeping; a program passes one to pin the time of a decision (as
// `tomkit rbac check --at` does).
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a channel that receives a value every d (d > 0)
	// until stop is called, as [time.NewTicker] does.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
}

// ClockFunc is a [Clock] that reads the time from a function and ticks
// on the system's tickers. ClockFunc(time.Now) is the system clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

// NewTicker returns a system ticker's channel and its Stop.
func (f ClockFunc) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

var _ Clock = ClockFunc(nil)

// systemClock is the clock a nil Clock means.
var systemClock Clock = ClockFunc(time.Now)

// clockOr returns c, or the system clock if c is nil.
func clockOr(c Clock) Clock {
	if c == nil {
		return systemClock
	}
	return c
}
