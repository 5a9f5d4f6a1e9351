package tomtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Check is one compliance check. Run returns nil when the promise is kept,
// an error wrapping [ErrFailed] when it is broken, and an error wrapping
// [ErrNotCovered] when the check could not look (for example, a component
// it needs is not configured). Any other error counts as a failure: a check
// that cannot decide has not passed.
type Check struct {
	// Name identifies the check in reports, for example "tls13-only".
	Name string
	// Clauses are the ids of the TOM clauses the check covers (see
	// [Clauses]).
	Clauses []string
	// Description says what the check does, for the evidence report.
	Description string
	Run         func(ctx context.Context) error
}

// Errors a check returns.
var (
	// ErrFailed reports a broken promise.
	ErrFailed = errors.New("tomtest: check failed")
	// ErrNotCovered reports a check that could not run.
	ErrNotCovered = errors.New("tomtest: not covered")
)

func failf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFailed}, args...)...)
}

// Status is the outcome of a check or of a clause in a report.
type Status string

// The statuses.
const (
	StatusPass       Status = "pass"
	StatusFail       Status = "fail"
	StatusNotCovered Status = "not covered"
)

// Result is the outcome of one check.
type Result struct {
	Check       string        `json:"check"`
	Clauses     []string      `json:"clauses"`
	Description string        `json:"description,omitempty"`
	Status      Status        `json:"status"`
	Detail      string        `json:"detail,omitempty"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"duration_ns"`
}

// DefaultTimeout bounds one check when ctx has no deadline of its own.
const DefaultTimeout = 2 * time.Minute

// Run runs the checks one after another and returns their results in
// order. A check with a nil Run, or one that panics, fails.
func Run(ctx context.Context, checks ...Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, runOne(ctx, c))
	}
	return out
}

func runOne(ctx context.Context, c Check) (r Result) {
	r = Result{Check: c.Name, Clauses: append([]string(nil), c.Clauses...), Description: c.Description, Started: time.Now().UTC()}
	start := time.Now()
	defer func() {
		r.Duration = time.Since(start)
		if p := recover(); p != nil {
			r.Status, r.Detail = StatusFail, fmt.Sprintf("check panicked: %v", p)
		}
	}()
	if c.Run == nil {
		r.Status, r.Detail = StatusFail, "check has no Run function"
		return r
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	err := c.Run(ctx)
	switch {
	case err == nil:
		r.Status, r.Detail = StatusPass, "ok"
	case errors.Is(err, ErrNotCovered):
		r.Status, r.Detail = StatusNotCovered, err.Error()
	default:
		r.Status, r.Detail = StatusFail, err.Error()
	}
	return r
}

// Require runs the checks as a test: each broken promise is reported with
// tb.Errorf, naming the check and its clauses, and a check that could not
// run is reported with tb.Errorf too (a compliance test that silently
// skips proves nothing). It returns the results.
func Require(tb testing.TB, checks ...Check) []Result {
	tb.Helper()
	ctx := context.Background()
	if t, ok := tb.(interface{ Context() context.Context }); ok {
		ctx = t.Context()
	}
	res := Run(ctx, checks...)
	for _, r := range res {
		if r.Status != StatusPass {
			tb.Errorf("tomtest: %s (TOM %v): %s: %s", r.Check, r.Clauses, r.Status, r.Detail)
		}
	}
	return res
}
