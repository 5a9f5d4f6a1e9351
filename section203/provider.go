package section203

import (
	"context"
	"fmt"
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
	key string // scheme://host:port
	eu  bool
}

func endpointKey(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Host == "" {
		return "", fmt.Errorf("%w: endpoint %q: want an http(s) URL without userinfo", ErrConfig, raw)
	}
	a, err := hostname.Parse(u.Host, defaultPort(u.Scheme))
	if err != nil {
		return "", fmt.Errorf("%w: endpoint %q: %w", ErrConfig, raw, err)
	}
	return u.Scheme + "://" + a.String(), nil
}

func compileProviders(ps []Provider) (map[string]*provider, error) {
	out := make(map[string]*provider, len(ps))
	for _, p := range ps {
		if p.Name == "" {
			return nil, fmt.Errorf("%w: provider without name", ErrConfig)
		}
		if out[p.Name] != nil {
			return nil, fmt.Errorf("%w: provider %q listed twice", ErrConfig, p.Name)
		}
		c := &provider{name: p.Name, jur: p.Jurisdiction, models: map[string]bool{}, endpoints: map[string]endpoint{}}
		for _, m := range p.Models {
			c.models[m] = true
		}
		for _, e := range p.Endpoints {
			key, err := endpointKey(e.URL)
			if err != nil {
				return nil, err
			}
			ep := endpoint{key: key, eu: euCountries[strings.ToUpper(e.Region)]}
			c.endpoints[e.URL] = ep
			c.endpoints[key] = ep
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
			if key, err := endpointKey(endpointURL); err == nil {
				ep, ok = p.endpoints[key]
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

func defaultPort(scheme string) uint16 {
	if scheme == "http" {
		return 80
	}
	return 443
}
