package tomtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/tomtest"
)

// recTrail is an AuditTrail over an audit.Recorder.
type recTrail struct{ rec *audit.Recorder }

func (r recTrail) End(context.Context) (int64, error) { return int64(len(r.rec.Events())), nil }
func (r recTrail) Events(_ context.Context, from int64) ([]audit.Event, error) {
	evs := r.rec.Events()
	if from > int64(len(evs)) {
		return nil, nil
	}
	return evs[from:], nil
}

// fakeService speaks enough of the reference service's contract for the
// audit-trail checks, and audits to rec the way refapp does, unless a
// flaw is switched on.
type fakeService struct {
	rec *audit.Recorder
	ps  *audit.Pseudonymizer
	// Flaws.
	leakInAlert, clearAddress, noAlert, noLog, wrongOutcome, noRateLimit bool
	// limitAnon answers unauthenticated requests 10 to 12 with 429, as
	// a service that limits clients per address does (not a flaw).
	limitAnon bool
	anon      int

	mu       sync.Mutex
	failures int
	docs     map[string][]byte
	n        int
	// good counts requests with the good token: numbers 31 to 40 are
	// over the rate limit, and the first of them raises an alert.
	good int
}

func (f *fakeService) log(ctx context.Context, e audit.Event) {
	if f.noLog {
		return
	}
	if !f.clearAddress {
		e = audit.Protect(e, f.ps)
	}
	_ = f.rec.Log(ctx, e)
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("req-%d", f.n)
	w.Header().Set("X-Request-Id", id)
	ctx := audit.WithRequestID(r.Context(), id)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := audit.Event{Action: "fake.request", Resource: r.URL.Path, Attributes: []audit.Attr{audit.Personal("client.address", host)}}
	if r.Header.Get("Authorization") != "Bearer good" {
		if f.anon++; f.limitAnon && f.anon >= 10 && f.anon <= 12 {
			ev.Actor, ev.Outcome = audit.Actor{Subject: "anonymous", Tenant: "-"}, audit.OutcomeDeny
			f.log(ctx, ev)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		f.failures++
		if f.failures > 5 && !f.noAlert {
			detail := "repeated authentication failures"
			if f.leakInAlert {
				detail += " from " + host
			}
			f.log(ctx, audit.Event{Actor: audit.Actor{Subject: "anonymous", Tenant: "-"}, Action: "fake.alert", Outcome: audit.OutcomeAllow, Severity: audit.SeverityCritical, Attributes: []audit.Attr{audit.String("detail", detail)}})
		}
		ev.Actor, ev.Outcome = audit.Actor{Subject: "anonymous", Tenant: "-"}, audit.OutcomeDeny
		f.log(ctx, ev)
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"unauthenticated"}}`))
		return
	}
	ev.Actor, ev.Outcome = audit.Actor{Subject: "alice", Tenant: "acme"}, audit.OutcomeAllow
	f.good++
	if f.good > 30 && f.good <= 40 && !f.noRateLimit {
		if f.good == 31 && !f.noAlert {
			f.log(ctx, audit.Event{Actor: ev.Actor, Action: "fake.alert", Outcome: audit.OutcomeAllow, Severity: audit.SeverityCritical, Reason: "rate limit exceeded"})
		}
		ev.Outcome = audit.OutcomeDeny
		f.log(ctx, ev)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if f.wrongOutcome {
		ev.Outcome = audit.OutcomeDeny
	}
	f.log(ctx, ev)
	switch {
	case r.Method == http.MethodPost:
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		doc := fmt.Sprintf("%032d", f.n)
		f.docs[doc] = b.Bytes()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"id": doc})
	case r.Method == http.MethodGet:
		b, ok := f.docs[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(b)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestAuditTrailChecks(t *testing.T) {
	defer tomtest.SetTrailTimings(500*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond)()
	ps, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "fake-1", Secret: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ pseudonyms, alert, logged, rateAlert tomtest.Status }
	pass, fail, nc := tomtest.StatusPass, tomtest.StatusFail, tomtest.StatusNotCovered
	tests := []struct {
		name   string
		flaw   func(*fakeService)
		want   want
		detail string
	}{
		{"keeps every promise", func(*fakeService) {}, want{pass, pass, pass, pass}, ""},
		{"raw address in an alert", func(f *fakeService) { f.leakInAlert = true }, want{fail, pass, pass, pass}, "raw client address"},
		{"address in clear", func(f *fakeService) { f.clearAddress = true }, want{fail, pass, pass, pass}, "raw client address"},
		{"no alert", func(f *fakeService) { f.noAlert = true }, want{pass, fail, pass, fail}, "raised no alert"},
		{"no audit log", func(f *fakeService) { f.noLog = true }, want{fail, fail, fail, fail}, "no record"},
		{"access logged as denied", func(f *fakeService) { f.wrongOutcome = true }, want{pass, pass, fail, pass}, "outcome allow"},
		{"no rate limit", func(f *fakeService) { f.noRateLimit = true }, want{pass, pass, pass, nc}, ""},
		{"limits unauthenticated clients", func(f *fakeService) { f.limitAnon = true }, want{pass, pass, pass, pass}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeService{rec: &audit.Recorder{}, ps: ps, docs: map[string][]byte{}}
			tt.flaw(f)
			srv := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, f)
			svc := tomtest.Service{BaseURL: srv.URL, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			trail := recTrail{f.rec}
			res := tomtest.Run(t.Context(), svc.HTTPAuditPseudonyms(trail), svc.HTTPAuthFailureAlert(trail), svc.HTTPAccessLogged("good", "acme", trail), svc.HTTPRateLimitAlert("good", "acme", trail))
			got := want{res[0].Status, res[1].Status, res[2].Status, res[3].Status}
			if got != tt.want {
				t.Fatalf("pseudonyms, alert, logged, rate-limit alert: %v, want %v\n%+v", got, tt.want, res)
			}
			if tt.detail != "" {
				found := false
				for _, r := range res {
					found = found || (r.Status == fail && strings.Contains(r.Detail, tt.detail))
				}
				if !found {
					t.Errorf("no failure says %q: %+v", tt.detail, res)
				}
			}
		})
	}
	t.Run("no trail", func(t *testing.T) {
		svc := tomtest.Service{BaseURL: "https://127.0.0.1:1"}
		for _, c := range []tomtest.Check{svc.HTTPAuditPseudonyms(nil), svc.HTTPAuthFailureAlert(nil), svc.HTTPAccessLogged("tok", "acme", nil), svc.HTTPAccessLogged("", "acme", recTrail{&audit.Recorder{}}), svc.HTTPRateLimitAlert("tok", "acme", nil)} {
			if r := run1(t, c); r.Status != tomtest.StatusNotCovered {
				t.Errorf("%s: %s, want not covered", r.Check, r.Status)
			}
		}
	})
}
