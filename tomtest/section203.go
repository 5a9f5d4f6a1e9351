package tomtest

import (
	"context"
	"fmt"
)

// Guard203 is what [Section203] asks of a § 203 guard, for the tenant in
// ctx ([audit.ActorFrom]). A nil error means the call may go ahead.
type Guard203 struct {
	// WebSearch decides whether a web search may go out.
	WebSearch func(ctx context.Context) error
	// Model decides whether the named model may be called.
	Model func(ctx context.Context, model string) error
	// NonEUModel is a model that is not EU-controlled, which must be
	// refused, and EUModel one that is, which must be allowed. Empty
	// EUModel skips the allow half.
	NonEUModel, EUModel string
}

// Section203 checks the § 203 guards: web search is refused, a non-EU
// model is refused and (when EUModel is set) an EU model is allowed, which
// proves the guard is not simply refusing everything. It covers TOM 004 §6
// (§ 203 mode: EU models only, web search off) and §1 (separate tenant).
func Section203(g Guard203) Check {
	return Check{
		Name:        "section203-guards",
		Clauses:     []string{"004-1.4", "004-6.2"},
		Description: "in § 203 mode web search is refused and only EU-controlled models are allowed",
		Run: func(ctx context.Context) error {
			if g.WebSearch == nil || g.Model == nil || g.NonEUModel == "" {
				return fmt.Errorf("%w: no § 203 guard given", ErrNotCovered)
			}
			if err := g.WebSearch(ctx); err == nil {
				return failf("web search allowed in § 203 mode")
			}
			if err := g.Model(ctx, g.NonEUModel); err == nil {
				return failf("non-EU model %q allowed in § 203 mode", g.NonEUModel)
			}
			if g.EUModel != "" {
				if err := g.Model(ctx, g.EUModel); err != nil {
					return failf("EU model %q refused in § 203 mode (%v): the guard refuses everything", g.EUModel, err)
				}
			}
			return nil
		},
	}
}
