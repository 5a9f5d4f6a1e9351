package tomtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MinHSTSMaxAge is the shortest HSTS max-age [HSTS] accepts: one year, as
// browsers' preload lists require.
const MinHSTSMaxAge = 365 * 24 * time.Hour

func hostPortOf(rawURL string) (hostport, serverName string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", fmt.Errorf("%w: bad url %q: %v", ErrNotCovered, rawURL, err)
	}
	if u.Scheme != "https" {
		return "", "", failf("url %q is not https", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), u.Hostname(), nil
}

func handshake(ctx context.Context, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// TLS13Only checks, with real handshakes, that the endpoint at rawURL
// speaks TLS 1.3 with a certificate that verifies against roots (nil means
// the system roots), and refuses clients that offer at most TLS 1.2, and at
// most TLS 1.1. It covers TOM 000 §3 (TLS 1.3, strict ciphers), 004 §2 (including
// transfer control) and §5.
//
// The first handshake proves the check can reach the endpoint: if it
// fails, the check fails, rather than counting the refused legacy
// handshakes as a pass.
func TLS13Only(rawURL string, roots *x509.CertPool) Check {
	return Check{
		Name:        "tls13-only",
		Clauses:     []string{"000-0.1", "000-3.1", "004-2.1", "004-2.3", "004-5.1"},
		Description: "real handshakes against " + rawURL + ": TLS 1.3 with a verified certificate succeeds; TLS 1.2-only and TLS 1.1-only clients are refused",
		Run: func(ctx context.Context) error {
			addr, name, err := hostPortOf(rawURL)
			if err != nil {
				return err
			}
			st, err := handshake(ctx, addr, &tls.Config{RootCAs: roots, ServerName: name, MinVersion: tls.VersionTLS13})
			if err != nil {
				return failf("tls 1.3 handshake with %s: %v", addr, err)
			}
			if st.Version != tls.VersionTLS13 {
				return failf("%s negotiated %s, want TLS 1.3", addr, tls.VersionName(st.Version))
			}
			legacy := []struct {
				name     string
				min, max uint16
			}{
				{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12},
				{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11},
			}
			for _, l := range legacy {
				// Certificate verification is skipped on purpose:
				// the question is only whether the server agrees
				// to the protocol version at all.
				st, err := handshake(ctx, addr, &tls.Config{InsecureSkipVerify: true, ServerName: name, MinVersion: l.min, MaxVersion: l.max})
				if err == nil {
					return failf("%s accepted a %s-only client (negotiated %s)", addr, l.name, tls.VersionName(st.Version))
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return failf("%s-only handshake with %s timed out instead of being refused: %v", l.name, addr, err)
				}
			}
			return nil
		},
	}
}

// HSTS checks that a GET of rawURL over TLS 1.3 answers with a
// Strict-Transport-Security header whose max-age is at least
// [MinHSTSMaxAge]. It covers TOM 000 §3 ("HSTS").
func HSTS(rawURL string, roots *x509.CertPool) Check {
	return Check{
		Name:        "hsts",
		Clauses:     []string{"000-3.1"},
		Description: "GET " + rawURL + " carries Strict-Transport-Security with max-age of at least one year",
		Run: func(ctx context.Context) error {
			if _, _, err := hostPortOf(rawURL); err != nil {
				return err
			}
			c := httpsClient(roots)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrNotCovered, err)
			}
			resp, err := c.Do(req)
			if err != nil {
				return failf("GET %s: %v", rawURL, err)
			}
			resp.Body.Close()
			v := resp.Header.Get("Strict-Transport-Security")
			if v == "" {
				return failf("GET %s: no Strict-Transport-Security header", rawURL)
			}
			age, ok := hstsMaxAge(v)
			if !ok {
				return failf("GET %s: Strict-Transport-Security %q has no valid max-age", rawURL, v)
			}
			if age < MinHSTSMaxAge {
				return failf("GET %s: HSTS max-age %s is shorter than %s", rawURL, age, MinHSTSMaxAge)
			}
			return nil
		},
	}
}

// hstsMaxAge parses the max-age directive of a Strict-Transport-Security
// value (RFC 6797 §6.1).
func hstsMaxAge(v string) (time.Duration, bool) {
	found, age := false, time.Duration(0)
	for _, d := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "max-age") {
			continue
		}
		if found {
			return 0, false // duplicate directive: invalid
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		n, err := strconv.ParseUint(val, 10, 63)
		if err != nil || n > uint64(1<<62)/uint64(time.Second) {
			return 0, false
		}
		found, age = true, time.Duration(n)*time.Second
	}
	return age, found
}

// httpsClient returns a client that speaks TLS 1.3 only, verifies against
// roots and does not follow redirects.
func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
