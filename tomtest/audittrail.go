package tomtest

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// AuditTrail is read access to the audit log of the service a check
// drives. The checks that use it ([Service.HTTPAccessLogged],
// [Service.HTTPAuditPseudonyms], [Service.HTTPAuthFailureAlert]) note the
// log's end, send their requests, then read what the log gained and find
// their own requests in it by the X-Request-Id the service answered with.
type AuditTrail interface {
	// End returns the log's size now: the index its next record will
	// have.
	End(ctx context.Context) (int64, error)
	// Events returns the records from index from on that can be read
	// now, in log order. For a tamper-evident log these are the records
	// a signed checkpoint covers, each proven to be included.
	Events(ctx context.Context, from int64) ([]audit.Event, error)
}

// AuthFailureBurst is how many requests with unknown tokens
// [Service.HTTPAuthFailureAlert] sends, as fast as the service answers.
const AuthFailureBurst = 20

// trailWait bounds how long a check waits for its requests' records to
// become readable, and alertGrace how long it then waits for an alert
// that a service raises after the request's own record.
var (
	trailWait  = 30 * time.Second
	alertGrace = 3 * time.Second
	trailPoll  = 200 * time.Millisecond
	// retryUnit is what one second of a Retry-After header means.
	retryUnit   = time.Second
	trailAlerts = func(evs []audit.Event, ids map[string]bool) bool { return len(alertsFor(evs, ids)) > 0 }
)

// awaitRecords reads trail from index from until every request id in ids
// has a record of its own (not only an alert it raised) and done (if not nil) holds, or, once every id has a
// record, until alertGrace has passed. It fails when the records do not
// appear within trailWait: the log is not the service's, or the service
// does not log its requests.
func awaitRecords(ctx context.Context, trail AuditTrail, from int64, ids map[string]bool, done func([]audit.Event, map[string]bool) bool) ([]audit.Event, error) {
	deadline := time.Now().Add(trailWait)
	var grace time.Time
	for {
		evs, err := trail.Events(ctx, from)
		if err != nil {
			return nil, failf("reading the audit trail: %v", err)
		}
		// A request's own record counts, not an alert it raised: a
		// service may write the alert first.
		seen := map[string]bool{}
		for _, e := range evs {
			if ids[e.RequestID] && !isAlert(e) {
				seen[e.RequestID] = true
			}
		}
		all := len(seen) == len(ids)
		if all && (done == nil || done(evs, ids)) {
			return evs, nil
		}
		now := time.Now()
		if all && grace.IsZero() {
			grace = now.Add(alertGrace)
		}
		if all && now.After(grace) {
			return evs, nil
		}
		if !all && now.After(deadline) {
			var missing []string
			for id := range ids {
				if !seen[id] {
					missing = append(missing, id)
				}
			}
			return nil, failf("the audit trail has no record of %d of the check's %d requests (X-Request-Id %s) after %s: either the log is not the service's, or the service does not log its requests", len(missing), len(ids), strings.Join(missing, ", "), trailWait)
		}
		select {
		case <-ctx.Done():
			return nil, failf("waiting for the audit trail: %v", ctx.Err())
		case <-time.After(trailPoll):
		}
	}
}

// alertsFor returns the alerts among evs that a request in ids raised: a
// critical event whose action is "alert" or ends in ".alert".
func alertsFor(evs []audit.Event, ids map[string]bool) []audit.Event {
	var out []audit.Event
	for _, e := range evs {
		if ids[e.RequestID] && isAlert(e) {
			out = append(out, e)
		}
	}
	return out
}

// isAlert reports whether e is an alert: a critical event whose action is
// "alert" or ends in ".alert".
func isAlert(e audit.Event) bool {
	return e.Severity == audit.SeverityCritical && (e.Action == "alert" || strings.HasSuffix(e.Action, ".alert"))
}

// unknownTokenBurst sends n document requests with random unknown tokens,
// each of which must be refused with 401 and carry an X-Request-Id. It
// returns the request ids and the addresses the requests left from.
// maxBurstWait bounds, in seconds, how long a burst waits for a service's
// per-address limit in all.
const maxBurstWait = 30

func (s Service) unknownTokenBurst(ctx context.Context, n int) (ids, clients map[string]bool, err error) {
	ids, clients = map[string]bool{}, map[string]bool{}
	path := "/v1/tenants/tomtest/documents/" + randomName()
	// A service that limits unauthenticated clients per address (as TOM
	// 000 §6 wants) answers part of a burst with 429: the burst then
	// waits as told and goes on, within a bound, so that every one of
	// its n requests is a refused authentication.
	waited := 0
	for i := 0; i < n; i++ {
		r, err := s.do(ctx, http.MethodGet, path, "tomtest-invalid-"+randomName(), nil)
		if err != nil {
			return nil, nil, failf("GET %s: %v", path, err)
		}
		if r.status == http.StatusTooManyRequests && waited < maxBurstWait {
			d := min(max(r.retryAfter, 1), maxBurstWait-waited)
			waited += d
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(time.Duration(d) * retryUnit):
			}
			i--
			continue
		}
		if r.status != http.StatusUnauthorized {
			return nil, nil, failf("GET %s with an unknown token: status %d, want 401", path, r.status)
		}
		if r.requestID == "" {
			return nil, nil, failf("GET %s: no X-Request-Id in the response, so the audit trail cannot be searched for it", path)
		}
		ids[r.requestID] = true
		if r.client != "" {
			clients[r.client] = true
		}
	}
	return ids, clients, nil
}

// HTTPAuthFailureAlert checks that a burst of authentication failures
// raises an alert: it sends [AuthFailureBurst] requests with unknown
// tokens from one address (each must be refused with 401), then reads the
// service's audit trail, which must hold a record of every one of them and
// an alert raised by one of them (a critical event whose action is
// "alert" or ends in ".alert", with the request's id). It covers TOM 000
// §6 (alerting on authentication failures).
//
// A service that aggregates repeated alerts raises one per kind and
// window, so run this check before anything else that provokes
// authentication failures (such as [Service.HTTPAuditPseudonyms]), and
// not twice within the service's window.
func (s Service) HTTPAuthFailureAlert(trail AuditTrail) Check {
	return Check{
		Name:        "auth-failure-alert",
		Clauses:     []string{"000-6.3"},
		Description: fmt.Sprintf("a burst of %d requests with unknown tokens is refused with 401, and the audit trail records an alert (a critical event whose action ends in \"alert\") raised by one of them", AuthFailureBurst),
		Run: func(ctx context.Context) error {
			if trail == nil {
				return fmt.Errorf("%w: the alert check needs the service's audit trail", ErrNotCovered)
			}
			from, err := trail.End(ctx)
			if err != nil {
				return failf("reading the audit trail: %v", err)
			}
			ids, _, err := s.unknownTokenBurst(ctx, AuthFailureBurst)
			if err != nil {
				return err
			}
			evs, err := awaitRecords(ctx, trail, from, ids, trailAlerts)
			if err != nil {
				return err
			}
			if len(alertsFor(evs, ids)) == 0 {
				return failf("%d authentication failures in a burst raised no alert in the audit trail (no critical \"alert\" event with one of their request ids)", len(ids))
			}
			return nil
		},
	}
}

// PseudonymBurst is how many requests with unknown tokens
// [Service.HTTPAuditPseudonyms] sends: enough to trip a service's alert on
// authentication failures, so that the alert's records are inspected too.
const PseudonymBurst = 8

// HTTPAuditPseudonyms checks that the audit trail carries pseudonyms, not
// the raw client address: it sends [PseudonymBurst] requests with unknown
// tokens, then reads the service's audit trail. The record of every
// request must carry at least one attribute that is a pseudonym
// ("hmac-sha256:<key id>:<hex>", see [audit.Pseudonymizer]) or
// [audit.Redacted], and no record the log gained meanwhile (including
// alerts the burst raised) may contain the address the requests left
// from. It covers TOM 004 §1 (pseudonymization).
//
// The address is the one the check's connections had on its side; when a
// proxy or NAT sits between the check and the service, the service sees
// another, and only the pseudonym half proves anything. Run it where the
// service sees the check's own address, as the reference gate does.
func (s Service) HTTPAuditPseudonyms(trail AuditTrail) Check {
	return Check{
		Name:        "audit-pseudonyms",
		Clauses:     []string{"004-1.5"},
		Description: fmt.Sprintf("%d requests with unknown tokens leave audit records that carry a pseudonymized (or redacted) attribute, and no record the log gained meanwhile contains the client's raw address", PseudonymBurst),
		Run: func(ctx context.Context) error {
			if trail == nil {
				return fmt.Errorf("%w: the pseudonymization check needs the service's audit trail", ErrNotCovered)
			}
			from, err := trail.End(ctx)
			if err != nil {
				return failf("reading the audit trail: %v", err)
			}
			ids, clients, err := s.unknownTokenBurst(ctx, PseudonymBurst)
			if err != nil {
				return err
			}
			if len(clients) == 0 {
				return fmt.Errorf("%w: the client address of the check's connections is unknown", ErrNotCovered)
			}
			evs, err := awaitRecords(ctx, trail, from, ids, trailAlerts)
			if err != nil {
				return err
			}
			protected := map[string]bool{}
			for _, e := range evs {
				b, err := e.Marshal()
				if err != nil {
					return failf("record %s of request %s: %v", e.Action, e.RequestID, err)
				}
				for c := range clients {
					if strings.Contains(string(b), c) {
						return failf("audit record %s (request %s) contains the raw client address %s", e.Action, e.RequestID, c)
					}
				}
				if !ids[e.RequestID] {
					continue
				}
				for _, a := range e.Attributes {
					if a.Value == audit.Redacted || isPseudonym(a.Value) {
						protected[e.RequestID] = true
					}
				}
			}
			for id := range ids {
				if !protected[id] {
					return failf("the audit records of request %s carry no pseudonymized or redacted attribute: the client is not recorded pseudonymously", id)
				}
			}
			return nil
		},
	}
}

// isPseudonym reports whether v has the form of an [audit.Pseudonymizer]
// pseudonym: "hmac-sha256:<key id>:<64 lowercase hex digits>".
func isPseudonym(v string) bool {
	rest, ok := strings.CutPrefix(v, "hmac-sha256:")
	if !ok {
		return false
	}
	id, h, ok := strings.Cut(rest, ":")
	if !ok || id == "" || len(h) != 64 || strings.ToLower(h) != h {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// HTTPAccessLogged checks that accesses are logged: with token, a
// principal of tenant stores a document and reads it back, and a request
// without a token is refused; the service's audit trail must then hold,
// for each request (found by its X-Request-Id), a record with the right
// outcome: allow, with the tenant as the actor's tenant and a subject,
// for the two accesses, and deny for the refused one. It covers TOM 004
// §1 (access logging) and §2 (input control, logging of relevant
// actions).
func (s Service) HTTPAccessLogged(token, tenant string, trail AuditTrail) Check {
	return Check{
		Name:        "access-logged",
		Clauses:     []string{"004-1.3", "004-2.3"},
		Description: "a document stored and read back by a principal of " + tenant + ", and a request without a token, each leave an audit record with their X-Request-Id and the right outcome and actor",
		Run: func(ctx context.Context) error {
			if trail == nil || token == "" || tenant == "" {
				return fmt.Errorf("%w: the access-logging check needs a token, its tenant and the service's audit trail", ErrNotCovered)
			}
			from, err := trail.End(ctx)
			if err != nil {
				return failf("reading the audit trail: %v", err)
			}
			base := "/v1/tenants/" + tenant + "/documents"
			c, err := s.do(ctx, http.MethodPost, base, token, []byte("tomtest-access-log-"+randomName()))
			if err != nil || c.status != http.StatusCreated {
				return failf("storing a document in %s: status %d, err %v", tenant, c.status, err)
			}
			var doc struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(c.body, &doc); err != nil || doc.ID == "" {
				return failf("storing a document in %s: no id in %q", tenant, c.body)
			}
			rd, err := s.do(ctx, http.MethodGet, base+"/"+doc.ID, token, nil)
			if err != nil || rd.status != http.StatusOK {
				return failf("reading back document %s: status %d, err %v", doc.ID, rd.status, err)
			}
			anon, err := s.do(ctx, http.MethodGet, base+"/"+doc.ID, "", nil)
			if err != nil || anon.status != http.StatusUnauthorized {
				return failf("reading document %s without a token: status %d, err %v", doc.ID, anon.status, err)
			}
			_, _ = s.do(ctx, http.MethodDelete, base+"/"+doc.ID, token, nil)
			want := map[string]audit.Outcome{c.requestID: audit.OutcomeAllow, rd.requestID: audit.OutcomeAllow, anon.requestID: audit.OutcomeDeny}
			if _, ok := want[""]; ok || len(want) != 3 {
				return failf("the responses carry no distinct X-Request-Id, so the audit trail cannot be searched for them")
			}
			ids := map[string]bool{}
			for id := range want {
				ids[id] = true
			}
			evs, err := awaitRecords(ctx, trail, from, ids, nil)
			if err != nil {
				return err
			}
			for id, outcome := range want {
				ok := false
				for _, e := range evs {
					if e.RequestID != id || e.Outcome != outcome {
						continue
					}
					if outcome == audit.OutcomeAllow && (e.Actor.Tenant != tenant || e.Actor.Subject == "") {
						continue
					}
					ok = true
				}
				if !ok {
					return failf("no audit record of request %s with outcome %s (and, for an access, the actor of tenant %s)", id, outcome, tenant)
				}
			}
			return nil
		},
	}
}

// MaxRateLimitProbes bounds how many requests [Service.HTTPRateLimitAlert]
// sends to reach the service's rate limit.
const MaxRateLimitProbes = 1000

// HTTPRateLimitAlert checks that a rate-limit violation raises an alert:
// with token, a principal of tenant sends document reads from several
// connections at once until the service answers 429 (at most
// [MaxRateLimitProbes]), then reads the service's audit trail, which must
// hold a record of every refused request and an alert raised by one of
// them (a critical event whose action is "alert" or ends in ".alert",
// with the request's id). It then waits, up to 30 seconds, until the
// token is served again, so that later checks are not refused. It covers
// TOM 000 §6 (alerting on rate-limit violations).
//
// A service that reaches no limit within the probes leaves the check not
// covered. A service that raises one alert per principal and period (the
// reference service: one a minute) alerts only on the first run in that
// period; run the check on an instance the principal has not exhausted
// lately.
func (s Service) HTTPRateLimitAlert(token, tenant string, trail AuditTrail) Check {
	return Check{
		Name:        "rate-limit-alert",
		Clauses:     []string{"000-6.3"},
		Description: "requests by a principal of " + tenant + " from several connections at once until the service answers 429; the audit trail records an alert (a critical event whose action ends in \"alert\") raised by a refused request",
		Run: func(ctx context.Context) error {
			if trail == nil || token == "" || tenant == "" {
				return fmt.Errorf("%w: the rate-limit alert check needs a token, its tenant and the service's audit trail", ErrNotCovered)
			}
			from, err := trail.End(ctx)
			if err != nil {
				return failf("reading the audit trail: %v", err)
			}
			limited, err := s.exhaustRate(ctx, token, tenant)
			if err != nil {
				return err
			}
			if len(limited) == 0 {
				return fmt.Errorf("%w: %d requests reached no rate limit (no 429)", ErrNotCovered, MaxRateLimitProbes)
			}
			evs, err := awaitRecords(ctx, trail, from, limited, trailAlerts)
			if err != nil {
				return err
			}
			if len(alertsFor(evs, limited)) == 0 {
				return failf("%d requests refused by the rate limit raised no alert in the audit trail (no critical \"alert\" event with one of their request ids)", len(limited))
			}
			return s.awaitServed(ctx, token, tenant)
		},
	}
}

// exhaustRate sends document reads with token from several kept-alive
// connections at once until one is refused with 429, and returns the request ids
// of the refused ones.
func (s Service) exhaustRate(ctx context.Context, token, tenant string) (map[string]bool, error) {
	const workers = 8
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/v1/tenants/" + tenant + "/documents/" + randomName()
	var (
		mu      sync.Mutex
		sent    int
		limited = map[string]bool{}
		first   error
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := httpsClient(s.RootCAs)
			defer c.CloseIdleConnections()
			for {
				mu.Lock()
				stop := sent >= MaxRateLimitProbes || len(limited) > 0 || first != nil
				sent++
				mu.Unlock()
				if stop {
					return
				}
				r, err := s.doWith(ctx, c, http.MethodGet, path, token, nil)
				mu.Lock()
				switch {
				case err != nil && ctx.Err() == nil:
					first = cmp.Or(first, failf("GET %s: %v", path, err))
				case err != nil:
				case r.status == http.StatusTooManyRequests:
					if r.requestID == "" {
						first = cmp.Or(first, failf("GET %s: 429 without an X-Request-Id, so the audit trail cannot be searched for it", path))
					}
					limited[r.requestID] = true
				case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
					first = cmp.Or(first, failf("GET %s with the token: status %d: the token is not a principal of %s", path, r.status, tenant))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return limited, nil
}

// awaitServed waits until a request with token is no longer refused with
// 429.
func (s Service) awaitServed(ctx context.Context, token, tenant string) error {
	path := "/v1/tenants/" + tenant + "/documents/" + randomName()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := s.do(ctx, http.MethodGet, path, token, nil)
		if err == nil && r.status != http.StatusTooManyRequests {
			return nil
		}
		if time.Now().After(deadline) {
			return failf("the token is still refused (429, err %v) 30s after the rate-limit burst", err)
		}
		select {
		case <-ctx.Done():
			return failf("waiting for the rate limit to lift: %v", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
