package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
)

// maxBody bounds request bodies; a larger one is refused with 413.
const maxBody = 1 << 20

// The limit on unauthenticated requests per client address: they are
// refused either way, and the limit keeps one client from turning each
// into a durable audit write at line rate.
const (
	anonRate  = 5  // unauthenticated requests per second per address
	anonBurst = 20 // burst of unauthenticated requests per address
)

var tracer = otel.Tracer("github.com/tomkit/tomkit/examples/refapp")

// guardConfig is the httpguard configuration of both listeners: the
// chain authenticates, rate-limits, checks the tenant and the policy,
// maps errors to the contract's JSON codes and writes exactly one audit
// event per response before releasing it.
func (a *app) guardConfig() httpguard.Config {
	return httpguard.Config{
		Service:       "refapp",
		Logger:        a.audit,
		Authenticator: httpguard.AuthenticatorFunc(a.authenticate),
		Enforcer:      a.authz.enf,
		MaxBodyBytes:  maxBody,
		Rate:          rate.Limit(a.opts.rate),
		Burst:         a.opts.burst,
		FailureRate:   anonRate,
		FailureBurst:  anonBurst,
		// Another tenant is 403, an unknown one 404 unknown_tenant,
		// only after authentication.
		KnownTenant: func(t string) bool { _, ok := a.tenants[t]; return ok },
		Errors: []httpguard.Mapping{
			{Err: errNotFound, Status: http.StatusNotFound, Code: httpguard.CodeNotFound, Message: "no such document"},
			{Err: errSection203, Status: http.StatusForbidden, Code: httpguard.CodeSection203, Message: "refused by the § 203 guard"},
		},
		Alert:       a.mon.guardAlert,
		AlertAtOnce: true,
		Clock:       audit.ClockFunc(a.now),
	}
}

// routes is the HTTP contract (README.md). Every route but /healthz is
// authenticated, rate limited, authorized and audited by httpguard.
func (a *app) routes() (http.Handler, error) {
	g, err := httpguard.New(a.guardConfig())
	if err != nil {
		return nil, err
	}
	api := func(pattern string, rt httpguard.Route, h httpguard.HandlerFunc) {
		g.Handle(pattern, rt, func(w http.ResponseWriter, r *http.Request) error {
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("refapp.action", rt.Name))
			return h(w, r)
		})
	}
	own := httpguard.Route{HandlerAuthorizes: true} // the handler asks rbac itself
	api("POST /v1/tenants/{tenant}/documents", named(own, "document.create"), a.createDocument(g))
	api("GET /v1/tenants/{tenant}/documents/{id}", httpguard.Route{Name: "document.read", Action: "read", Object: "/documents/{id}"}, a.readDocument)
	api("DELETE /v1/tenants/{tenant}/documents/{id}", httpguard.Route{Name: "document.delete", Action: "delete", Object: "/documents/{id}"}, a.deleteDocument)
	api("POST /v1/tenants/{tenant}/model-calls", named(own, "model.call"), a.modelCall(g))
	api("POST /v1/tenants/{tenant}/web-search", httpguard.Route{Name: "web.search", Action: "search", Object: "/ai/web-search"}, a.webSearch)
	api("POST /v1/tenants/{tenant}/access-requests", named(own, "access.request"), a.requestAccess)
	api("POST /v1/tenants/{tenant}/access-requests/{id}/approve", named(own, "access.approve"), a.approveAccess)
	api("POST /v1/tenants/{tenant}/erase", httpguard.Route{Name: "tenant.erase", Action: "erase", Object: "/tenant"}, a.eraseTenant)
	api("POST /v1/break-glass", named(own, "breakglass.open"), a.openBreakGlass)
	// Everything else, any method: an audited 404 after authentication.
	g.Handle("/", httpguard.Route{Name: "request", HandlerAuthorizes: true}, func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: no such route", httpguard.ErrNotFound)
	})
	g.Handle("GET /healthz", httpguard.Route{Name: "health", Public: true, Unaudited: true}, func(w http.ResponseWriter, r *http.Request) error {
		return httpguard.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return a.outer(g), nil
}

func named(rt httpguard.Route, name string) httpguard.Route {
	rt.Name = name
	return rt
}

// plainRoutes is the plain-HTTP listener: every request is redirected to
// HTTPS (no HSTS here) and audited like any other response.
func (a *app) plainRoutes(tlsAddr net.Addr) (http.Handler, error) {
	g, err := httpguard.New(a.guardConfig())
	if err != nil {
		return nil, err
	}
	redirect := redirectHandler(tlsAddr)
	g.Handle("/", httpguard.Route{Name: "https_redirect", Public: true}, func(w http.ResponseWriter, r *http.Request) error {
		redirect.ServeHTTP(w, r)
		return nil
	})
	return g, nil
}

// outer adds what every HTTPS response carries: HSTS and the security
// headers, and a trace span.
func (a *app) outer(next http.Handler) http.Handler {
	return secureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	}))
}

var errUnknownToken = errors.New("refapp: unknown token")

// authenticate maps the bearer token to a principal (httpguard has
// already refused a missing, malformed or repeated Authorization field).
// The comparison is on the token's SHA-256, so the map lookup reveals
// nothing useful about the stored tokens. A principal flagged MFA counts
// as MFA-verified at the time of the request; an identity provider would
// give its own MFA time here.
func (a *app) authenticate(_ context.Context, tok string) (httpguard.Principal, error) {
	if len(tok) > 512 {
		return httpguard.Principal{}, errUnknownToken
	}
	p, ok := a.tokens[tokenHash(tok)]
	if !ok {
		return httpguard.Principal{}, errUnknownToken
	}
	hp := httpguard.Principal{Actor: audit.Actor{Subject: p.Subject, Tenant: p.Tenant}}
	if p.MFA {
		hp.MFAVerifiedAt = a.now()
	}
	return hp, nil
}
