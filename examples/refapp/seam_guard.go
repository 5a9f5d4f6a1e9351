package main

import (
	"context"
	"fmt"
)

// euModels are the models allowed for a § 203 tenant: EU or EU-controlled
// (TOM 004 §6). The simulated model-call endpoint accepts any name for an
// ordinary tenant.
var euModels = map[string]bool{"mistral-large-eu": true, "aleph-alpha-luminous": true}

// openGuard returns the § 203 guard.
//
// Fallback until section203 lands: a tenant marked section203 in
// tenants.json may call only EU models and may not search the web.
func openGuard(_ context.Context, a *app) (aiGuard, error) {
	return tableGuard{a.tenants}, nil
}

type tableGuard struct{ tenants map[string]tenantInfo }

func (g tableGuard) ModelCall(_ context.Context, tenant, model string) error {
	t, ok := g.tenants[tenant]
	if !ok {
		return errUnknownTenant
	}
	if t.Section203 && !euModels[model] {
		return fmt.Errorf("%w: model %q is not EU-controlled", errSection203, model)
	}
	return nil
}

func (g tableGuard) WebSearch(_ context.Context, tenant string) error {
	t, ok := g.tenants[tenant]
	if !ok {
		return errUnknownTenant
	}
	if t.Section203 {
		return fmt.Errorf("%w: web search is off", errSection203)
	}
	return nil
}

const integrationGuard = "section203: table fallback (section203 not yet wired)"
