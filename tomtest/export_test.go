package tomtest

import "time"

// SetTrailTimings shortens how long the audit-trail checks wait, for
// tests; the returned function restores the defaults.
func SetTrailTimings(wait, grace, poll time.Duration) (restore func()) {
	w, g, p := trailWait, alertGrace, trailPoll
	trailWait, alertGrace, trailPoll = wait, grace, poll
	return func() { trailWait, alertGrace, trailPoll = w, g, p }
}
