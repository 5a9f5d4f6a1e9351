// Package testclock is the audit.Clock of tomkit's tests: the time comes
// from a function the test controls and every ticker is one channel the
// test drives by hand, so that nothing waits on the wall clock.
package testclock

import "time"

// Clock reads the time from a function and hands out one channel as
// every ticker.
type Clock struct {
	now  func() time.Time
	tick <-chan time.Time
}

// New returns a clock reading now (time.Now if nil) whose tickers all
// receive from tick; a nil tick never fires.
func New(now func() time.Time, tick <-chan time.Time) Clock {
	if now == nil {
		now = time.Now
	}
	return Clock{now: now, tick: tick}
}

// Now returns the test's time.
func (c Clock) Now() time.Time { return c.now() }

// NewTicker returns the test's tick channel, whatever d.
func (c Clock) NewTicker(time.Duration) (<-chan time.Time, func()) { return c.tick, func() {} }
