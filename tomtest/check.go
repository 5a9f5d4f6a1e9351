package tomtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	// [Clauses]). In a report, a passing check proves the parts of these
	// clauses that the catalogue lists it for ([Part.Checks]) and
	// nothing else; a failing one fails every clause it names.
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

// Status is the outcome of a check, of a part of a clause, or of a clause
// in a report. A check and a part are pass, fail or not covered; only a
// clause can be partial.
type Status string

// The statuses.
const (
	// StatusPass: for a check, it ran and the promise was kept; for a
	// clause, every part of it was checked and passed.
	StatusPass Status = "pass"
	// StatusPartial is a clause whose checked parts passed while other
	// parts were not checked. It is not a pass: the report lists the
	// parts that no check proved.
	StatusPartial Status = "partial"
	// StatusFail: a check found the promise broken. A clause fails when
	// any check behind it failed, however many of its parts passed.
	StatusFail Status = "fail"
	// StatusNotCovered: a check could not look, or no part of a clause
	// was proven.
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
//
// A green test proves the checks passed, not that the clauses they name
// are kept: most clauses have parts no check can see. So that a CI cannot
// mistake one for the other, Require also reports every clause the
// checks name with tb.Attr ("tomkit.clause.000-6.3" = "partial"; `go test
// -json` carries it as an "attr" event) and with a tb.Logf line that says
// pass, partial (naming the parts not checked) or not covered. To claim
// that clauses are kept, use [RequireClauses].
func Require(tb testing.TB, checks ...Check) []Result {
	tb.Helper()
	res := Run(tb.Context(), checks...)
	for _, r := range res {
		if r.Status != StatusPass {
			tb.Errorf("tomtest: %s (TOM %v): %s: %s", r.Check, r.Clauses, r.Status, r.Detail)
		}
	}
	for _, c := range NewReport("", res).Clauses {
		if len(c.Checks) == 0 {
			continue
		}
		tb.Attr("tomkit.clause."+c.ID, string(c.Status))
		tb.Logf("tomtest: TOM %s: %s", c.ID, clauseLine(c))
	}
	return res
}

// RequireClauses runs the checks like [Require] and, in addition, fails the
// test for each clause in ids that they do not prove in every part: a
// partial clause fails with the parts not checked, so a green test is a
// claim that every named clause passed. An id that is not in [Clauses]
// fails too.
func RequireClauses(tb testing.TB, ids []string, checks ...Check) []Result {
	tb.Helper()
	res := Require(tb, checks...)
	byID := map[string]ClauseResult{}
	for _, c := range NewReport("", res).Clauses {
		byID[c.ID] = c
	}
	for _, id := range ids {
		c, ok := byID[id]
		switch {
		case !ok:
			tb.Errorf("tomtest: TOM %s: no such clause", id)
		case c.Status != StatusPass:
			tb.Errorf("tomtest: TOM %s is not proven: %s", id, clauseLine(c))
		}
	}
	return res
}

// clauseLine is a clause's status with the parts that keep it from
// passing.
func clauseLine(c ClauseResult) string {
	var open []string
	for _, p := range c.Parts {
		if p.Status != StatusPass {
			open = append(open, p.ID+" ("+string(p.Status)+": "+p.Reason+")")
		}
	}
	switch c.Status {
	case StatusPass:
		return "pass: every part checked and passed"
	case StatusPartial:
		return "partial: not checked: " + strings.Join(open, "; ")
	}
	return string(c.Status) + ": " + c.Reason
}
