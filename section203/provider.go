package section203

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203/internal/hostname"
)

// Jurisdiction is the legal reach a model provider is under. The zero
// Jurisdiction is [NonEU].
type Jurisdiction uint8

// The jurisdictions.
const (
	// NonEU is a provider under the control of a non-EU parent or state,
	// for example one subject to the US CLOUD Act. It is the zero value.
	NonEU Jurisdiction = iota
	// EU is a provider established and controlled in the EU.
	EU
	// EUControlled is a provider established outside the EU but
	// controlled by an EU entity and bound to EU law.
	EUControlled
)

func (j Jurisdiction) String() string {
	switch j {
	case EU:
		return "eu"
	case EUControlled:
		return "eu-controlled"
	default:
		return "non-eu"
	}
}

// Provider is one entry of the provider and model registry.
type Provider struct {
	// Name identifies the provider, for example "mistral".
	Name         string
	Jurisdiction Jurisdiction
	// Models lists the models that may be used. Nil means none.
	Models []string
	// Endpoints lists where the provider's API is reached. A request to
	// an endpoint that is not listed is refused.
	Endpoints []Endpoint
	// ZDRAttestation references the provider's zero-data-retention
	// attestation (a document id or URL). Empty means there is none.
	ZDRAttestation string
	// Commitment references the provider's written § 203 confidentiality
	// commitment (§ 203 Abs. 4 Satz 2 Nr. 1 StGB). Empty means there is
	// none.
	Commitment string
}

// Endpoint is one API endpoint of a [Provider].
type Endpoint struct {
	// URL is the endpoint's base URL, for example
	// "https://api.eu.example.com/v1". Scheme, host and port identify it.
	URL string
	// Region is where the endpoint processes data: an ISO 3166-1 alpha-2
	// country code such as "FR", or "EU" for a multi-region endpoint that
	// stays inside the EU. Anything else, including "global" and "", is
	// outside the EU.
	Region string
}

var euCountries = map[string]bool{
	"EU": true, "AT": true, "BE": true, "BG": true, "HR": true, "CY": true, "CZ": true, "DK": true,
	"EE": true, "FI": true, "FR": true, "DE": true, "GR": true, "HU": true, "IE": true, "IT": true,
	"LV": true, "LT": true, "LU": true, "MT": true, "NL": true, "PL": true, "PT": true, "RO": true,
	"SK": true, "SI": true, "ES": true, "SE": true,
}

type provider struct {
	name      string
	jur       Jurisdiction
	models    map[string]bool
	endpoints map[string]endpoint // by URL as registered and by scheme://host:port
	// refuseOn is why the provider may not be used in § 203 mode, or "".
	refuseOn string
}

type endpoint struct {
	key    string // scheme://host:port
	scheme string
	host   string // normalised
	port   uint16
	eu     bool
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("%w: endpoint %q: want an http(s) URL without userinfo", ErrInvalidConfig, raw)
	}
	a, err := hostname.Parse(u.Host, defaultPort(u.Scheme))
	if err != nil {
		return endpoint{}, fmt.Errorf("%w: endpoint %q: %w", ErrInvalidConfig, raw, err)
	}
	return endpoint{key: origin(u.Scheme, a), scheme: u.Scheme, host: a.Host(), port: a.Port}, nil
}

func compileProviders(ps []Provider) (map[string]*provider, error) {
	out := make(map[string]*provider, len(ps))
	for _, p := range ps {
		if p.Name == "" {
			return nil, fmt.Errorf("%w: provider without name", ErrInvalidConfig)
		}
		if out[p.Name] != nil {
			return nil, fmt.Errorf("%w: provider %q listed twice", ErrInvalidConfig, p.Name)
		}
		c := &provider{name: p.Name, jur: p.Jurisdiction, models: map[string]bool{}, endpoints: map[string]endpoint{}}
		for _, m := range p.Models {
			c.models[m] = true
		}
		for _, e := range p.Endpoints {
			ep, err := parseEndpoint(e.URL)
			if err != nil {
				return nil, err
			}
			ep.eu = euCountries[strings.ToUpper(e.Region)]
			c.endpoints[e.URL] = ep
			c.endpoints[ep.key] = ep
		}
		switch {
		case p.Jurisdiction != EU && p.Jurisdiction != EUControlled:
			c.refuseOn = "provider jurisdiction is " + p.Jurisdiction.String()
		case p.ZDRAttestation == "":
			c.refuseOn = "provider has no zero-data-retention attestation"
		case p.Commitment == "":
			c.refuseOn = "provider has no § 203 confidentiality commitment"
		}
		out[p.Name] = c
	}
	return out, nil
}

// Model decides whether the tenant in ctx may send content to model of
// provider at endpoint (a URL; only its scheme, host and port count).
//
// In every mode the provider, the model and the endpoint must be
// registered. In § 203 mode the provider must also be [EU] or
// [EUControlled], have a zero-data-retention attestation and a § 203
// commitment, and the endpoint must be in the EU; a global endpoint is
// not.
func (g *Guard) Model(ctx context.Context, providerName, model, endpointURL string) (Decision, error) {
	actor, mode := subject(ctx)
	d := Decision{Action: "section203.model", Mode: mode, Allowed: true}
	p := g.providers[providerName]
	var ep endpoint
	var ok bool
	if p != nil {
		if ep, ok = p.endpoints[endpointURL]; !ok {
			if e, err := parseEndpoint(endpointURL); err == nil {
				ep, ok = p.endpoints[e.key]
			}
		}
	}
	switch {
	case actor.Tenant == "":
		d.Allowed, d.Reason = false, "no tenant"
	case p == nil:
		d.Allowed, d.Reason = false, "provider not registered"
	case !p.models[model]:
		d.Allowed, d.Reason = false, "model not registered"
	case !ok:
		d.Allowed, d.Reason = false, "endpoint not registered"
	case mode == Off:
		d.Reason = "registered provider"
	case p.refuseOn != "":
		d.Allowed, d.Reason = false, p.refuseOn
	case !ep.eu:
		d.Allowed, d.Reason = false, "endpoint is outside the EU"
	default:
		d.Reason = "EU provider with attestation and commitment, EU endpoint"
	}
	return g.decide(ctx, actor, d, providerName+"/"+model, ErrProvider, audit.String("endpoint", ep.key))
}

// ModelClient decides, as [Guard.Model] does, whether the tenant in ctx
// may send content to model of provider at endpoint, and if so returns an
// [http.Client] that can reach that endpoint and nothing else. One call
// thus covers both halves of a model call: the registry check and the
// guarded egress. Every request the client sends is still an audited
// egress decision of the tenant in the request's ctx (use
// [http.NewRequestWithContext] with ctx); a request or redirect to any
// other origin than the endpoint's scheme, host and port is refused with
// [ErrEgress], even if that origin is allowlisted. Clients share the
// Guard's connection pool (see [EgressConfig.Base]).
func (g *Guard) ModelClient(ctx context.Context, provider, model, endpoint string) (*http.Client, error) {
	if _, err := g.Model(ctx, provider, model, endpoint); err != nil {
		return nil, err
	}
	ep := g.providers[provider].endpoints[endpoint] // Model found it by URL or by key
	if ep.key == "" {
		if e, err := parseEndpoint(endpoint); err == nil {
			ep = g.providers[provider].endpoints[e.key]
		}
	}
	pin := &pinned{t: g.transport, ep: ep}
	return &http.Client{Transport: pin, CheckRedirect: pin.checkRedirect}, nil
}

// pinned sends only to one registered model endpoint, through the Guard's
// guarded transport.
type pinned struct {
	t  *Transport
	ep endpoint
}

func (p *pinned) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := p.check(req, "section203.egress"); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return p.t.RoundTrip(req)
}

func (p *pinned) checkRedirect(req *http.Request, via []*http.Request) error {
	if err := p.check(req, "section203.redirect"); err != nil {
		return err
	}
	return p.t.CheckRedirect(req, via)
}

// check refuses, audited, a request whose origin is not the endpoint's.
func (p *pinned) check(req *http.Request, action string) error {
	if req.URL != nil && (req.URL.Scheme == "https" || req.URL.Scheme == "http") && req.URL.User == nil {
		if a, err := hostname.Parse(req.URL.Host, defaultPort(req.URL.Scheme)); err == nil &&
			req.URL.Scheme == p.ep.scheme && a.Host() == p.ep.host && a.Port == p.ep.port {
			return nil
		}
	}
	ctx := req.Context()
	actor, mode := subject(ctx)
	d := Decision{Action: action, Mode: mode, Reason: "not the model endpoint " + p.ep.key}
	_, err := p.t.g.decide(ctx, actor, d, "model-endpoint", ErrEgress)
	return err
}

func defaultPort(scheme string) uint16 {
	if scheme == "http" {
		return 80
	}
	return 443
}
