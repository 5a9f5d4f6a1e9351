package section203

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203/internal/hostname"
)

// EgressConfig is the outbound allowlist. Its zero value allows only the
// registered providers' endpoints (see [Config.Providers]).
//
// Every endpoint of a registered [Provider] is allowlisted automatically,
// so the registry is the one place where a model API is named: in normal
// operation every registered endpoint, in § 203 mode only the EU
// endpoints of providers that [Guard.Model] would accept in § 203 mode.
// Allow and AllowOff add destinations that are not model APIs.
type EgressConfig struct {
	// Allow lists the destinations permitted in § 203 mode, each as
	// "host", "host:port", "https://host[:port]" or "http://host[:port]".
	// The scheme defaults to https and the port to the scheme's default.
	// Host names are matched exactly after normalisation (case, trailing
	// dot, IDNA A-labels); there are no wildcards. IP literals, such as
	// "10.0.0.7:8443" or "[2001:db8::1]", are refused unless listed.
	Allow []string
	// AllowOff lists the destinations permitted in normal operation, in
	// the same form. Nil means Allow applies in normal operation too.
	AllowOff []string
	// AllowedCIDRs, when not empty, turns on the resolved-address check:
	// the dialer resolves every allowlisted name itself, keeps only
	// addresses inside these prefixes, and connects to those addresses,
	// so that a DNS answer changed between check and use (DNS rebinding)
	// cannot redirect a connection.
	AllowedCIDRs []netip.Prefix
	// Resolver resolves names for the AllowedCIDRs check. Nil means
	// [net.DefaultResolver].
	Resolver Resolver
	// Base is the transport behind the Guard's own guarded transport,
	// which [Guard.ModelClient] uses. It is cloned and stripped of its
	// proxy and dial hooks as [Guard.Transport] does. Nil means a clone
	// of [http.DefaultTransport].
	Base *http.Transport
}

// Resolver looks up the addresses of a host. [*net.Resolver] implements
// it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

type destKey struct {
	scheme string
	host   string
	port   uint16
}

type allowSet struct {
	dests map[destKey]string // scheme, host, port -> scheme://host:port
	dial  map[destKey]bool   // host, port (scheme empty)
}

type egressPolicy struct {
	on, off  allowSet
	cidrs    []netip.Prefix
	resolver Resolver
}

func compileAllow(entries []string) (allowSet, error) {
	s := allowSet{dests: map[destKey]string{}, dial: map[destKey]bool{}}
	for _, e := range entries {
		scheme, hostport := "https", e
		if i := strings.Index(e, "://"); i >= 0 {
			scheme, hostport = e[:i], e[i+3:]
		}
		if scheme != "https" && scheme != "http" {
			return allowSet{}, fmt.Errorf("%w: egress entry %q: scheme must be http or https", ErrInvalidConfig, e)
		}
		a, err := hostname.Parse(hostport, defaultPort(scheme))
		if err != nil {
			return allowSet{}, fmt.Errorf("%w: egress entry %q: %w", ErrInvalidConfig, e, err)
		}
		s.dests[destKey{scheme, a.Host(), a.Port}] = origin(scheme, a)
		s.dial[destKey{"", a.Host(), a.Port}] = true
	}
	return s, nil
}

// add allowlists the origin of a registered endpoint.
func (s *allowSet) add(e endpoint) {
	s.dests[destKey{e.scheme, e.host, e.port}] = e.key
	s.dial[destKey{"", e.host, e.port}] = true
}

func compileEgress(c EgressConfig, providers map[string]*provider) (egressPolicy, error) {
	var p egressPolicy
	var err error
	if p.on, err = compileAllow(c.Allow); err != nil {
		return p, err
	}
	off := c.AllowOff
	if off == nil {
		off = c.Allow
	}
	if p.off, err = compileAllow(off); err != nil {
		return p, err
	}
	for _, pr := range providers {
		for _, e := range pr.endpoints {
			p.off.add(e)
			if pr.refuseOn == "" && e.eu {
				p.on.add(e)
			}
		}
	}
	for _, c := range c.AllowedCIDRs {
		if !c.IsValid() {
			return p, fmt.Errorf("%w: invalid CIDR", ErrInvalidConfig)
		}
		p.cidrs = append(p.cidrs, c.Masked())
	}
	p.resolver = c.Resolver
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	return p, nil
}

func (p *egressPolicy) set(m Mode) *allowSet {
	if m == Off {
		return &p.off
	}
	return &p.on
}

func (p *egressPolicy) inCIDRs(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, c := range p.cidrs {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}

// Transport is an [http.RoundTripper] that lets a request through only to
// an allowlisted destination of the tenant's mode (see [EgressConfig]).
// Every request is a decision, audited as "section203.egress"; every
// connection is checked again at the dialer ("section203.dial").
//
// The checks, in order: the ctx carries a tenant; the scheme is http or
// https; the URL has no userinfo; the host normalises (see
// [EgressConfig.Allow]) and is not a numeric name that a resolver might
// read as an IPv4 address (2130706433, 0x7f.1); a Host header, if set,
// names the same host; the normalised scheme, host and port are on the
// allowlist. The request is then sent with its host rewritten to the
// normal form, so the dialer connects to exactly what was checked.
//
// Redirects: an [http.Client] sends each hop through its Transport, so
// every hop is decided again. [Transport.Client] also installs
// [Transport.CheckRedirect], which refuses a redirect before it is
// followed. Wrap a Transport (for tracing, say) freely, but never wrap the
// base transport it was made from around it.
//
// Proxies: the Transport never uses a proxy. The Proxy function of the
// base transport, including [http.ProxyFromEnvironment] and HTTPS_PROXY,
// is removed, because a proxy would make the dial target a host the
// allowlist never saw.
//
// Bodies: the Transport never reads, logs or traces request or response
// bodies, paths or queries; audit events and span events carry the
// scheme, host and port only.
type Transport struct {
	g    *Guard
	base *http.Transport
}

var _ http.RoundTripper = (*Transport)(nil)

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Transport returns a guarded copy of base. Nil base means a clone of
// [http.DefaultTransport]. base itself is not modified and must not be
// used to bypass the guard.
func (g *Guard) Transport(base *http.Transport) *Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	b := base.Clone()
	b.Proxy = nil
	b.OnProxyConnectResponse = nil
	b.GetProxyConnectHeader = nil
	b.ProxyConnectHeader = nil
	t := &Transport{g: g, base: b}

	dial := b.DialContext
	//lint:ignore SA1019 the deprecated hooks must not escape the guard
	oldDial, oldDialTLS := b.Dial, b.DialTLS
	if dial == nil && oldDial != nil {
		dial = func(_ context.Context, n, a string) (net.Conn, error) { return oldDial(n, a) }
	}
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	b.DialContext = t.guardDial(dial)
	if b.DialTLSContext == nil && oldDialTLS != nil {
		b.DialTLSContext = func(_ context.Context, n, a string) (net.Conn, error) { return oldDialTLS(n, a) }
	}
	if b.DialTLSContext != nil {
		b.DialTLSContext = t.guardDial(b.DialTLSContext)
	}
	//lint:ignore SA1019 cleared so that only the guarded hooks remain
	b.Dial, b.DialTLS = nil, nil
	return t
}

// Client returns an [http.Client] that sends through t and checks every
// redirect with [Transport.CheckRedirect].
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t, CheckRedirect: t.CheckRedirect}
}

// CloseIdleConnections closes the idle connections of the underlying
// transport.
func (t *Transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// RoundTrip decides whether req may leave, and sends it if so. A refusal
// is a [*RefusedError] matching [ErrEgress]; the request body is closed
// either way, as [http.RoundTripper] requires.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := t.check(req, "section203.egress")
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(out)
}

// CheckRedirect is an [http.Client.CheckRedirect] function: it refuses a
// redirect to a destination that is not allowlisted, and more than 10
// redirects. Every call is an audited decision, "section203.redirect".
func (t *Transport) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		ctx := req.Context()
		actor, mode := subject(ctx)
		_, err := t.g.decide(ctx, actor, Decision{Action: "section203.redirect", Mode: mode, Reason: "more than 10 redirects"}, "redirect", ErrEgress)
		return err
	}
	_, err := t.check(req, "section203.redirect")
	return err
}

// check decides on req and returns the request to send: req itself, or a
// copy whose URL host is in normal form.
func (t *Transport) check(req *http.Request, action string) (*http.Request, error) {
	ctx := req.Context()
	actor, mode := subject(ctx)
	d := Decision{Action: action, Mode: mode}
	p := &t.g.egress
	u := req.URL
	resource := "invalid"
	var a hostname.Addr
	var err error
	switch {
	case actor.Tenant == "":
		d.Reason = "no tenant"
	case u == nil:
		d.Reason = "no URL"
	case u.Scheme != "https" && u.Scheme != "http":
		d.Reason = "scheme must be http or https"
	case u.User != nil:
		d.Reason = "userinfo in URL"
	default:
		a, err = hostname.Parse(u.Host, defaultPort(u.Scheme))
		if err != nil {
			d.Reason = strings.TrimPrefix(err.Error(), "section203: ")
			break
		}
		o, ok := p.set(mode).dests[destKey{u.Scheme, a.Host(), a.Port}]
		if ok {
			resource = o
		} else {
			resource = origin(u.Scheme, a)
		}
		if req.Host != "" && req.Host != u.Host {
			h, err := hostname.Parse(req.Host, a.Port)
			if err != nil || h.Host() != a.Host() {
				d.Reason = "Host header names another host"
				break
			}
		}
		switch {
		case !ok:
			d.Reason = "destination not allowlisted"
		case a.IP.IsValid() && len(p.cidrs) > 0 && !p.inCIDRs(a.IP):
			d.Reason = "address outside the allowed CIDRs"
		default:
			d.Allowed, d.Reason = true, "allowlisted"
		}
	}
	if _, err := t.g.decide(ctx, actor, d, resource, ErrEgress); err != nil {
		return nil, err
	}
	canon := a.Host()
	if a.IP.Is6() {
		canon = "[" + canon + "]"
	}
	if u.Port() != "" {
		canon += ":" + strconv.Itoa(int(a.Port))
	}
	if canon == u.Host && (req.Host == "" || req.Host == u.Host) {
		return req, nil
	}
	out := req.Clone(ctx)
	out.URL.Host = canon
	out.Host = canon
	return out, nil
}

// origin returns scheme://host:port with one allocation.
func origin(scheme string, a hostname.Addr) string {
	var buf [96]byte
	b := append(buf[:0], scheme...)
	b = append(b, "://"...)
	if a.IP.Is6() {
		b = append(b, '[')
		b = a.IP.AppendTo(b)
		b = append(b, ']')
	} else if a.IP.IsValid() {
		b = a.IP.AppendTo(b)
	} else {
		b = append(b, a.Name...)
	}
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(a.Port), 10)
	return string(b)
}

// guardDial checks every connection the base transport opens, and, when
// AllowedCIDRs is set, resolves the name itself and connects to a checked
// address.
func (t *Transport) guardDial(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		actor, mode := subject(ctx)
		p := &t.g.egress
		d := Decision{Action: "section203.dial", Mode: mode}
		targets := []string{addr}
		resource := "invalid"
		a, err := hostname.Parse(addr, 0)
		switch {
		case actor.Tenant == "":
			d.Reason = "no tenant"
		case err != nil:
			d.Reason = strings.TrimPrefix(err.Error(), "section203: ")
		case !p.set(mode).dial[destKey{"", a.Host(), a.Port}]:
			resource = a.String()
			d.Reason = "destination not allowlisted"
		case len(p.cidrs) == 0:
			resource = a.String()
			d.Allowed, d.Reason = true, "allowlisted"
		default:
			resource = a.String()
			ips := []netip.Addr{a.IP}
			if !a.IP.IsValid() {
				if ips, err = p.resolver.LookupNetIP(ctx, "ip", a.Name); err != nil {
					d.Reason = "resolve failed"
					break
				}
			}
			targets = targets[:0]
			for _, ip := range ips {
				if p.inCIDRs(ip) {
					targets = append(targets, netip.AddrPortFrom(ip.Unmap(), a.Port).String())
				}
			}
			if len(targets) == 0 {
				d.Reason = "resolved addresses outside the allowed CIDRs"
				break
			}
			d.Allowed, d.Reason = true, "allowlisted, resolved inside the allowed CIDRs"
		}
		if _, err := t.g.decide(ctx, actor, d, resource, ErrEgress, audit.String("targets", strings.Join(targets, ","))); err != nil {
			return nil, err
		}
		var errs []error
		for _, target := range targets {
			c, err := next(ctx, network, target)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}
