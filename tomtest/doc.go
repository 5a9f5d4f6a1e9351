// Package tomtest is tomkit's compliance kit for downstream CI: checks that
// a service and its configuration keep the technical promises of a TOM
// document (Art. 32 GDPR), each naming the clause it covers, and an
// evidence report that maps every clause to pass, partial, fail or not
// covered.
//
// A check is a [Check]: a name, the clauses it covers and a function that
// returns nil when the promise is kept. The constructors build the checks
// tomkit knows:
//
//   - [TLS13Only]: real handshakes against an endpoint; TLS 1.3 must
//     succeed and a TLS 1.2-only client must fail.
//   - [HSTS]: the endpoint sends Strict-Transport-Security with a max-age
//     of at least a year.
//   - [EncryptedAtRest]: a random canary written through a store does not
//     appear, in any common encoding, in the bytes the store keeps.
//   - [DenyByDefault]: an enforcer refuses requests nobody was granted: no
//     actor, no tenant, an unknown subject, an unknown action, another
//     tenant.
//   - [MFARequired]: privileged permissions are refused without MFA and
//     granted with it.
//   - [AuditIntegrity]: a log verifies, and fails to verify once a byte
//     is flipped, at positions spread over all of its files.
//   - [RetentionWindow]: a store no longer holds an object once it is
//     older than the promised maximum; [BackupRetention]: the same for a
//     backup set's snapshots.
//   - [Section203]: in § 203 mode web search is refused and only
//     EU-controlled models are allowed.
//
// and the methods of [Service] ([Service.HTTPAuthRequired],
// [Service.HTTPTenantSeparation], [Service.HTTPEncryptedAtRest],
// [Service.HTTPSection203]), which drive a service that speaks the
// reference service's HTTP contract (examples/refapp/README.md). Given
// the service's [AuditTrail], four more look for the records their own
// requests left: [Service.HTTPAccessLogged] (access logging),
// [Service.HTTPAuditPseudonyms] (client addresses only as pseudonyms),
// [Service.HTTPAuthFailureAlert] and [Service.HTTPRateLimitAlert] (a burst
// of authentication failures, or of requests over the rate limit, raises
// an alert). Given its Prometheus endpoint ([Metrics]),
// [Service.HTTPMetricsCounters] checks that the authentication-failure and
// rate-limit counters rise after failures it provokes.
//
// # Pass, partial, fail, not covered
//
// Most clauses promise several things: 000-3.1 is TLS 1.3, HSTS and strict
// ciphers; 000-6.3 is alerting on authentication failures, on rate-limit
// violations and on anomalies. The catalogue splits every technical clause
// into explicit parts ([Part]), each proven by named checks or marked as
// not observable with the reason. A clause passes only when every part was
// checked and passed; it is partial when the checked parts passed and
// others were not checked; it fails when any check behind it failed,
// however many parts passed; otherwise it is not covered. A report's
// verdict ([Report.Verdict]) never says more: "no check failed; 5 clauses
// proven, 17 partly, 26 not covered".
//
// From go test, [Require] runs checks and fails the test for each broken
// promise:
//
//	func TestTOM(t *testing.T) {
//		decide := func(ctx context.Context, action, object string) error {
//			return enforcer.Check(ctx, object, action) // an rbac.Enforcer
//		}
//		tomtest.Require(t,
//			tomtest.TLS13Only(srv.URL, roots),
//			tomtest.HSTS(srv.URL+"/healthz", roots),
//			tomtest.DenyByDefault(decide),
//		)
//	}
//
// A passing test proves that the checks passed, not that their clauses are
// kept, so Require also reports each clause the checks name, as pass,
// partial or not covered, with t.Attr and t.Log (visible in `go test -v`
// and `go test -json`). [RequireClauses] makes the stronger claim: it
// fails the test for each named clause that is not proven in every part.
//
// From code (and from `tomkit check`), [Run] returns a [Result] per check
// and [NewReport] turns them into an evidence [Report] over [Clauses],
// written as JSON, Markdown or JUnit XML; all three carry the four
// statuses and every clause's parts.
//
// # Threat model
//
// The kit defends against configuration drift and silent regressions: a
// deploy that re-enables TLS 1.2, a store that writes plaintext, a policy
// that grows an "allow all", an audit log whose verifier accepts anything.
// A check that cannot fail is worthless, so every check first proves that
// it can see what it checks (the handshake works, the store wrote bytes,
// the verifier rejects a tampered copy) before it reports a pass.
//
// It cannot prove what code cannot observe: physical security, contracts,
// training, incident playbooks, hosting regions, the cipher behind a
// ciphertext. Those clauses and parts are reported as not covered, with
// the reason, and a clause with such a part is at best partial.
//
// # TOM clauses
//
// The clauses are those of the two reference TOM documents, "000"
// (ex-nihilo GmbH) and "004" (EZTO, Art. 32 GDPR); see [Clauses]. A check
// names clause ids such as "000-3.1" (TLS 1.3, HSTS, strict ciphers) or
// "004-6.2" (§ 203 mode).
package tomtest
