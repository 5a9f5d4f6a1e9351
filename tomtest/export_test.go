package tomtest

import "time"

// SetTrailTimings shortens how long the audit-trail checks wait (a
// Retry-After second becomes poll), for tests; the returned function
// restores the defaults.
func SetTrailTimings(wait, grace, poll time.Duration) (restore func()) {
	w, g, p, u := trailWait, alertGrace, trailPoll, retryUnit
	trailWait, alertGrace, trailPoll, retryUnit = wait, grace, poll, poll
	return func() { trailWait, alertGrace, trailPoll, retryUnit = w, g, p, u }
}
