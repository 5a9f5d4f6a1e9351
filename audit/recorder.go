package audit

import (
	"context"
	"sync"
)

// Recorder is a [Logger] that keeps normalized events in memory. It is
// meant for tests and for compliance checks that inspect what a component
// emitted; it is not durable. Personal attributes are kept as given.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

var _ Logger = (*Recorder)(nil)

// Log normalizes e and appends it. It returns the normalization error, if
// any, like a durable sink would.
func (r *Recorder) Log(ctx context.Context, e Event) error {
	e, err := e.Normalize(ctx)
	if err != nil {
		return err
	}
	if _, err := e.Marshal(); err != nil {
		return err
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

// Events returns a copy of the events recorded so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
