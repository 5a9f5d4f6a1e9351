package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	fileadapter "github.com/casbin/casbin/v2/persist/file-adapter"
)

// casbinModel is RBAC with tenants as domains. Anything not matched is
// denied.
const casbinModel = `
[request_definition]
r = sub, dom, act

[policy_definition]
p = sub, dom, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.act == p.act
`

// openAuthorizer returns the deny-by-default authorizer.
//
// Fallback until rbac lands: casbin directly, with the policy file from
// the data directory; admin actions (tenant.*) need MFA; a principal acts
// only in its own tenant.
func openAuthorizer(_ context.Context, a *app) (authorizer, error) {
	m, err := model.NewModelFromString(casbinModel)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewEnforcer(m, fileadapter.NewAdapter(a.data.path(filePolicy)))
	if err != nil {
		return nil, err
	}
	return casbinAuthz{e}, nil
}

type casbinAuthz struct{ e *casbin.Enforcer }

func (c casbinAuthz) Authorize(_ context.Context, p principal, action, tenant string) error {
	if p.Subject == "" || p.Tenant == "" || tenant == "" || p.Tenant != tenant {
		return fmt.Errorf("%w: %s may not act in tenant %q", errDenied, p.Subject, tenant)
	}
	ok, err := c.e.Enforce(p.Subject, tenant, action)
	if err != nil || !ok {
		return fmt.Errorf("%w: %s may not %s in %s", errDenied, p.Subject, action, tenant)
	}
	if strings.HasPrefix(action, "tenant.") && !p.MFA {
		return fmt.Errorf("%w: %s", errMFARequired, action)
	}
	return nil
}

const integrationAuthz = "authz: casbin fallback (rbac not yet wired)"
