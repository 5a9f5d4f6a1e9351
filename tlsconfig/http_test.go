package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/tlsconfig"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// tlsServer starts an httptest server over a tlsconfig.Server config and
// returns it with a client that trusts it.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	ca := newCA(t, "test ca")
	sc, err := tlsconfig.Server(tlsconfig.Config{Certificates: []tls.Certificate{ca.leaf(t, leafOpts{}).cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = sc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cc, err := tlsconfig.Client(tlsconfig.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	return srv, &http.Client{Transport: &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: true}}
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHSTS(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap func(http.Handler) http.Handler
		want string
	}{
		{"default", tlsconfig.HSTS, "max-age=63072000; includeSubDomains"},
		{"preload", tlsconfig.HSTSPreload, "max-age=63072000; includeSubDomains; preload"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.wrap(okHandler)
			srv, c := tlsServer(t, h)
			resp := get(t, c, srv.URL)
			if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
				t.Fatalf("not TLS 1.3: %+v", resp.TLS)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != tt.want {
				t.Fatalf("over TLS: Strict-Transport-Security %q, want %q", got, tt.want)
			}
			checkPreloadRules(t, resp.Header.Get("Strict-Transport-Security"), tt.name == "preload")

			plain := httptest.NewServer(h)
			defer plain.Close()
			resp = get(t, plain.Client(), plain.URL)
			if got, ok := resp.Header["Strict-Transport-Security"]; ok {
				t.Fatalf("over plain HTTP: Strict-Transport-Security %q sent", got)
			}
		})
	}
}

// checkPreloadRules checks an HSTS value against the preload list's
// requirements: max-age of at least a year, includeSubDomains, and (when
// preloading) the preload directive.
func checkPreloadRules(t *testing.T, v string, preload bool) {
	t.Helper()
	var maxAge int
	dirs := map[string]bool{}
	for _, d := range strings.Split(v, ";") {
		d = strings.TrimSpace(d)
		if n, ok := strings.CutPrefix(d, "max-age="); ok {
			maxAge, _ = strconv.Atoi(n)
		}
		dirs[d] = true
	}
	if maxAge < 31536000 || !dirs["includeSubDomains"] || dirs["preload"] != preload {
		t.Fatalf("HSTS %q breaks the preload rules (preload=%v)", v, preload)
	}
}

func TestSecureHeaders(t *testing.T) {
	srv, c := tlsServer(t, tlsconfig.HSTS(tlsconfig.SecureHeaders(okHandler)))
	resp := get(t, c, srv.URL)
	want := map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
		"Strict-Transport-Security": tlsconfig.HSTSValue,
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	// A handler may override a default.
	h := tlsconfig.SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("Cache-Control"); got != "public, max-age=60" {
		t.Errorf("override lost: %q", got)
	}
}

func TestRedirectHTTPS(t *testing.T) {
	tests := []struct {
		name, addr, method, host, target string
		code                             int
	}{
		{"same host", "", "GET", "example.com", "https://example.com/a/b?x=1", http.StatusMovedPermanently},
		{"drops http port", "", "GET", "example.com:8080", "https://example.com/a/b?x=1", http.StatusMovedPermanently},
		{"port 443", ":443", "HEAD", "example.com:80", "https://example.com/a/b?x=1", http.StatusMovedPermanently},
		{"other port", ":8443", "GET", "example.com:8080", "https://example.com:8443/a/b?x=1", http.StatusMovedPermanently},
		{"ipv6", ":8443", "GET", "[::1]:8080", "https://[::1]:8443/a/b?x=1", http.StatusMovedPermanently},
		{"fixed host", "api.example.com", "GET", "evil.example", "https://api.example.com/a/b?x=1", http.StatusMovedPermanently},
		{"post keeps method", "", "POST", "example.com", "https://example.com/a/b?x=1", http.StatusPermanentRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// HSTS around the redirect must still send nothing: the request
			// is plain HTTP.
			h := tlsconfig.HSTS(tlsconfig.RedirectHTTPS(tt.addr))
			req := httptest.NewRequest(tt.method, "http://"+tt.host+"/a/b?x=1", strings.NewReader("body"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code || rec.Header().Get("Location") != tt.target {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.code, tt.target)
			}
			if _, ok := rec.Header()["Strict-Transport-Security"]; ok {
				t.Fatal("HSTS sent over plain HTTP")
			}
			if rec.Body.Len() != 0 {
				t.Fatalf("redirect served content: %q", rec.Body)
			}
		})
	}
	// A real plain-HTTP listener, with a client that does not follow.
	plain := httptest.NewServer(tlsconfig.RedirectHTTPS(":8443"))
	defer plain.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := get(t, c, plain.URL+"/x")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://127.0.0.1:8443/x" {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestHTTPServer(t *testing.T) {
	tc := &tls.Config{}
	s := tlsconfig.HTTPServer("127.0.0.1:0", okHandler, tc)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("missing timeout or limit: %+v", s)
	}
	if s.ReadHeaderTimeout > s.ReadTimeout || s.TLSConfig != tc || s.Addr != "127.0.0.1:0" {
		t.Fatalf("server not built as documented: %+v", s)
	}
}
