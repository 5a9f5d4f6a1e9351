package section203_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/section203"
)

// server is a real httptest server on loopback that counts every
// connection it accepts, so a test sees whether a request reached it even
// when the TLS handshake or the request fails.
type server struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func newServer(t testing.TB, name string, useTLS bool, h http.Handler) *server {
	t.Helper()
	s := &server{name: name}
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.hits.Add(1)
		}
	}
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) addr() string { return s.srv.Listener.Addr().String() }

// testNet maps test host names ("eu.example.com:443") to loopback servers.
// Every address it does not know goes to the sink server "evil", so that a
// request the guard should have refused is counted there.
type testNet struct {
	eu, eu2, plain, evil, us, lookalike, proxy *server
	routes                                     map[string]string
	pool                                       *x509.CertPool
}

// handler serves "/redirect?to=URL" as a 302 and echoes everything else.
func handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/loop", http.StatusFound)
			return
		}
		if to := r.URL.Query().Get("to"); r.URL.Path == "/redirect" && to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", name, b)
	})
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	n := &testNet{}
	n.eu = newServer(t, "eu", true, handler("eu"))
	n.eu2 = newServer(t, "eu2", true, handler("eu2"))
	n.plain = newServer(t, "plain", false, handler("plain"))
	n.evil = newServer(t, "evil", true, handler("evil"))
	n.us = newServer(t, "us", true, handler("us"))
	n.lookalike = newServer(t, "lookalike", true, handler("lookalike"))
	n.proxy = newServer(t, "proxy", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "recording proxy", http.StatusForbidden)
	}))
	n.routes = map[string]string{
		"eu.example.com:443":        n.eu.addr(),
		"127.0.0.2:443":             n.eu.addr(),
		"eu2.example.com:443":       n.eu2.addr(),
		"plain.example.com:80":      n.plain.addr(),
		"evil.example.com:443":      n.evil.addr(),
		"us.example.com:443":        n.us.addr(),
		"xn--u-itb.example.com:443": n.lookalike.addr(),
		"proxy.example.com:3128":    n.proxy.addr(),
	}
	n.pool = x509.NewCertPool()
	n.pool.AddCert(n.eu.srv.Certificate())
	return n
}

func (n *testNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	target, ok := n.routes[addr]
	if !ok {
		target = n.evil.addr()
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

// base returns an unguarded transport that reaches the test servers and
// honours a proxy like an application that reads HTTPS_PROXY would.
func (n *testNet) base(proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	return &http.Transport{
		DialContext:       n.dial,
		TLSClientConfig:   &tls.Config{RootCAs: n.pool},
		Proxy:             proxy,
		DisableKeepAlives: false,
	}
}

func (n *testNet) servers() []*server {
	return []*server{n.eu, n.eu2, n.plain, n.evil, n.us, n.lookalike, n.proxy}
}

func (n *testNet) hits() map[string]int64 {
	m := map[string]int64{}
	for _, s := range n.servers() {
		if h := s.hits.Load(); h > 0 {
			m[s.name] = h
		}
	}
	return m
}

func (n *testNet) reset() {
	for _, s := range n.servers() {
		s.hits.Store(0)
	}
}

// failLogger fails every Log call.
type failLogger struct{}

func (failLogger) Log(context.Context, audit.Event) error { return fmt.Errorf("disk full") }

// nopLogger records nothing, for benchmarks of the decision alone.
type nopLogger struct{}

func (nopLogger) Log(context.Context, audit.Event) error { return nil }

// bound returns a ctx for subject in tenant, bound to modes.
func bound(modes *section203.Modes, tenant string) context.Context {
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: tenant})
	return modes.Bind(ctx)
}

func mustModes(t testing.TB, log audit.Logger, tenants map[string]section203.Mode) *section203.Modes {
	t.Helper()
	m, err := section203.NewModes(section203.ModesConfig{Tenants: tenants, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
