package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tomkit/tomkit/tomtest"
)

// metricsFlags registers the flags of the metrics check.
func metricsFlags(fs *flag.FlagSet, o *checkOptions) {
	fs.StringVar(&o.metrics, "metrics", "", "Prometheus `URL` of the service's /metrics (with --url: the authentication-failure and rate-limit counters rise after provoked failures; run last, it exhausts the checker's per-address allowance)")
}

// metricsCheck is the check --metrics asks for, or, without the inputs it
// needs, the same check not covered, saying why.
func metricsCheck(svc tomtest.Service, o checkOptions) tomtest.Check {
	c := svc.HTTPMetricsCounters(tomtest.Metrics{URL: o.metrics})
	if o.metrics == "" || o.url == "" {
		c.Run = func(context.Context) error {
			return fmt.Errorf("%w: give --url and --metrics", tomtest.ErrNotCovered)
		}
	}
	return c
}
