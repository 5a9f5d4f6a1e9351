// Package tomtest is tomkit's compliance kit for downstream CI: checks that
// a service and its configuration keep the technical promises of a TOM
// document (Art. 32 GDPR), each naming the clause it covers, and an
// evidence report that maps every clause to pass, partial, fail or not
// covered.
//
// A [Check] is a name, the clauses it covers and a function that returns
// nil when the promise is kept. The constructors ([TLS13Only], [HSTS],
// [EncryptedAtRest], [DenyByDefault], [MFARequired], [AuditIntegrity],
// [RetentionWindow], [BackupRetention], [Section203]) and the methods of
// [Service], which drive a service speaking the reference service's HTTP
// contract (examples/refapp/README.md), build the checks tomkit knows;
// given the service's [AuditTrail] some find the records their own
// requests left, and given its Prometheus endpoint ([Metrics])
// [Service.HTTPMetricsCounters] watches its counters. Every check first
// proves that it can see what it checks before it reports a pass.
//
// The catalogue ([Clauses]) splits every technical clause into parts
// ([Part]), each proven by named checks or marked not observable with the
// reason. A clause passes only when every part passed; it is partial when
// the checked parts passed and others were not checked; it fails when any
// check behind it failed; otherwise it is not covered. A report's verdict
// ([Report.Verdict]) never says more: "no check failed; 5 clauses proven,
// 17 partly, 26 not covered".
//
// From go test, [Require] runs checks, fails the test for each broken
// promise and reports the clauses; [RequireClauses] also fails for each
// named clause not proven in every part. From code (and `tomkit check`),
// [Run] and [NewReport] give a [Report] written as JSON, Markdown or JUnit.
// The guide, docs/TOMTEST.md in the repository, has every check, the
// statuses, the threat model and the clauses.
package tomtest
