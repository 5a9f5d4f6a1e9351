package tlsconfig

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"
)

// The Strict-Transport-Security values sent by [HSTS] and [HSTSPreload].
// Two years, the value the HSTS preload list recommends; the list requires
// at least one year (31536000 s), includeSubDomains and preload.
const (
	HSTSValue        = "max-age=63072000; includeSubDomains"
	HSTSPreloadValue = "max-age=63072000; includeSubDomains; preload"
)

// HSTS wraps next so that every response to a request that arrived over
// TLS carries Strict-Transport-Security: max-age=63072000;
// includeSubDomains. Over plain HTTP the header is never sent: RFC 6797
// §7.2 forbids it, and a man in the middle could strip or forge it there.
// Use [RedirectHTTPS] on the plain-HTTP port.
func HSTS(next http.Handler) http.Handler {
	return hsts(next, HSTSValue)
}

// HSTSPreload is [HSTS] with the preload directive, for a domain that is
// submitted to the browsers' HSTS preload list. Preloading cannot be undone
// quickly: every subdomain must serve HTTPS for years. Opt in deliberately.
func HSTSPreload(next http.Handler) http.Handler {
	return hsts(next, HSTSPreloadValue)
}

func hsts(next http.Handler, value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", value)
		}
		next.ServeHTTP(w, r)
	})
}

// SecureHeaders wraps next so that every response carries the headers an
// API response needs against content sniffing, framing and leaking URLs:
//
//	X-Content-Type-Options: nosniff
//	Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
//	X-Frame-Options: DENY
//	Referrer-Policy: no-referrer
//	Cache-Control: no-store
//
// They are set before next runs, so next may override one (for example
// Cache-Control on a public, cacheable resource).
func SecureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// RedirectHTTPS returns a handler for the plain-HTTP port that redirects
// every request to the same path and query over HTTPS: 301 for GET and HEAD,
// 308 otherwise, so no method is silently turned into GET. It never serves
// content and never sends HSTS.
//
// httpsAddr chooses the target. Empty means the request's host on the
// default port 443. ":8443" keeps the request's host with that port.
// "example.com" or "example.com:8443" redirects to that fixed host, which is
// safer when the Host header cannot be trusted.
func RedirectHTTPS(httpsAddr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := httpsAddr
		if host == "" || strings.HasPrefix(host, ":") {
			h := r.Host
			if hh, _, err := net.SplitHostPort(h); err == nil {
				h = hh
			}
			if h == "" {
				http.Error(w, "missing host", http.StatusBadRequest)
				return
			}
			if strings.Contains(h, ":") { // IPv6 literal
				h = "[" + h + "]"
			}
			if host == ":443" {
				host = ""
			}
			host = h + host
		}
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		target := "https://" + host + r.URL.RequestURI()
		w.Header().Set("Location", target)
		w.Header().Set("Connection", "close")
		w.WriteHeader(code)
	})
}

// Timeouts and limits set by [HTTPServer].
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// HTTPServer returns an *http.Server for addr that serves h over tc with
// timeouts against slow clients (slowloris and slow-read attacks):
// [ReadHeaderTimeout], [ReadTimeout], [WriteTimeout], [IdleTimeout] and
// [MaxHeaderBytes]. Start it with ListenAndServeTLS("", ""), since the
// certificates are in tc. A handler that streams for longer than
// WriteTimeout must extend its deadline with http.ResponseController.
func HTTPServer(addr string, h http.Handler, tc *tls.Config) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
