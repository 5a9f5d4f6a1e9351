package tomtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/tomtest"
)

// builtins are every check this package builds, with no inputs.
func builtins() []tomtest.Check {
	return []tomtest.Check{
		tomtest.TLS13Only("", nil), tomtest.HSTS("", nil), tomtest.EncryptedAtRest(nil, nil),
		tomtest.DenyByDefault(nil), tomtest.MFARequired(nil, nil), tomtest.AuditIntegrity("", nil),
		tomtest.RetentionWindow(tomtest.MaxRetention000, nil), tomtest.Section203(tomtest.Guard203{}),
		tomtest.Service{}.HTTPAuthRequired(), tomtest.Service{}.HTTPTenantSeparation("", "", ""),
		tomtest.Service{}.HTTPAuthFailureAlert(nil), tomtest.Service{}.HTTPAuditPseudonyms(nil),
		tomtest.Service{}.HTTPAccessLogged("", "", nil), tomtest.Service{}.HTTPRateLimitAlert("", "", nil),
		tomtest.BackupRetention(tomtest.MaxRetention000, nil), tomtest.Service{}.HTTPMetricsCounters(tomtest.Metrics{}),
	}
}

// wantWhenAllPass is every clause's status when every check of this
// package runs and passes: the most the reference catalogue lets the kit
// claim. A catalogue change that claims more (a part dropped, a check
// mapped to a part it does not prove) changes a line here.
var wantWhenAllPass = map[string]tomtest.Status{
	"000-0.1": tomtest.StatusPartial, // EU hosting and the AES-256 cipher are not observable
	"000-0.2": tomtest.StatusPartial, // four-eyes is not checked externally
	"000-0.3": tomtest.StatusNotCovered,
	"000-0.4": tomtest.StatusNotCovered,
	"000-0.5": tomtest.StatusPartial, // backup schedule and DR test are not observable
	"000-1.1": tomtest.StatusNotCovered,
	"000-1.2": tomtest.StatusNotCovered,
	"000-1.3": tomtest.StatusNotCovered,
	"000-2.1": tomtest.StatusPartial, // least privilege of the grants is a policy review
	"000-2.2": tomtest.StatusPartial, // login factor and cloud MFA are not observable
	"000-2.3": tomtest.StatusNotCovered,
	"000-3.1": tomtest.StatusPass,
	"000-3.2": tomtest.StatusPartial, // volume encryption is infrastructure
	"000-3.3": tomtest.StatusNotCovered,
	"000-4.1": tomtest.StatusNotCovered,
	"000-4.2": tomtest.StatusNotCovered,
	"000-4.3": tomtest.StatusNotCovered,
	"000-5.1": tomtest.StatusNotCovered,
	"000-5.2": tomtest.StatusNotCovered,
	"000-5.3": tomtest.StatusPartial, // network firewall rules are infrastructure
	"000-6.1": tomtest.StatusPartial, // traces and alert routing are infrastructure
	"000-6.2": tomtest.StatusPartial, // central log storage is infrastructure
	"000-6.3": tomtest.StatusPartial, // anomaly alerts are not checked
	"000-7.1": tomtest.StatusNotCovered,
	"000-7.2": tomtest.StatusPartial, // restore tests are a process
	"000-7.3": tomtest.StatusNotCovered,
	"000-8.1": tomtest.StatusNotCovered,
	"000-8.2": tomtest.StatusNotCovered,
	"000-8.3": tomtest.StatusNotCovered,
	"000-9.1": tomtest.StatusNotCovered,
	"000-9.2": tomtest.StatusNotCovered,
	"004-0.1": tomtest.StatusNotCovered,
	"004-1.1": tomtest.StatusNotCovered,
	"004-1.2": tomtest.StatusPartial, // the login factor is the identity provider's; least privilege is a policy review
	"004-1.3": tomtest.StatusPass,
	"004-1.4": tomtest.StatusPartial, // the knowledge base's storage isolation is not observable
	"004-1.5": tomtest.StatusPartial, // minimisation for the purpose is a judgement
	"004-2.1": tomtest.StatusPass,
	"004-2.2": tomtest.StatusPartial, // the cipher is not observable
	"004-2.3": tomtest.StatusPass,
	"004-3.1": tomtest.StatusPartial, // the backup schedule and its contents are not observable
	"004-3.2": tomtest.StatusNotCovered,
	"004-4.1": tomtest.StatusNotCovered,
	"004-4.2": tomtest.StatusNotCovered,
	"004-5.1": tomtest.StatusPartial, // the cipher is not observable
	"004-5.2": tomtest.StatusNotCovered,
	"004-6.1": tomtest.StatusNotCovered,
	"004-6.2": tomtest.StatusPass,
}

func allPass() []tomtest.Result {
	var checks []tomtest.Check
	for _, c := range builtins() {
		c.Run = func(context.Context) error { return nil }
		checks = append(checks, c)
	}
	return tomtest.Run(context.Background(), checks...)
}

func TestCatalogueStatusesWhenEveryCheckPasses(t *testing.T) {
	r := tomtest.NewReport("all checks pass", allPass())
	if len(r.Clauses) != len(wantWhenAllPass) {
		t.Fatalf("report has %d clauses, the table %d", len(r.Clauses), len(wantWhenAllPass))
	}
	for _, c := range r.Clauses {
		want, ok := wantWhenAllPass[c.ID]
		if !ok {
			t.Errorf("%s: not in the table", c.ID)
			continue
		}
		if c.Status != want {
			t.Errorf("%s: %s, want %s (%s)", c.ID, c.Status, want, c.Reason)
		}
		if c.Status == tomtest.StatusPartial {
			// A partial clause says what it lacks.
			if !strings.HasPrefix(c.Reason, "partial: ") || !strings.Contains(c.Reason, "not checked: ") {
				t.Errorf("%s: partial reason %q does not name the parts not checked", c.ID, c.Reason)
			}
			open := 0
			for _, p := range c.Parts {
				if p.Status == tomtest.StatusNotCovered {
					open++
					if p.Reason == "" {
						t.Errorf("%s/%s not covered without a reason", c.ID, p.ID)
					}
				}
			}
			if open == 0 {
				t.Errorf("%s partial without an open part", c.ID)
			}
		}
		for _, p := range c.Parts {
			if p.Status == tomtest.StatusPass && len(p.Evidence) == 0 {
				t.Errorf("%s/%s passes without evidence", c.ID, p.ID)
			}
		}
	}
	if got, want := r.Counts(), (tomtest.Counts{Pass: 5, Partial: 17, NotCovered: 26}); got != want {
		t.Errorf("counts %v, want %v", got, want)
	}
	if got, want := r.Verdict(), "no check failed; 5 clauses proven, 17 partly, 26 not covered"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
}

// TestCatalogueMatchesChecks: every part names checks this package builds,
// each of which names the part's clause, and every clause a check names
// has a part the check proves; a technical clause has parts, and a part
// without checks says why.
func TestCatalogueMatchesChecks(t *testing.T) {
	byName := map[string]tomtest.Check{}
	for _, c := range builtins() {
		byName[c.Name] = c
	}
	proves := map[[2]string]bool{}
	for _, c := range tomtest.Clauses() {
		if c.Technical != (len(c.Parts) > 0) {
			t.Errorf("%s: technical %v with %d parts", c.ID, c.Technical, len(c.Parts))
		}
		ids := map[string]bool{}
		for _, p := range c.Parts {
			if p.ID == "" || p.Text == "" || ids[p.ID] {
				t.Errorf("%s: part %+v has no id or text, or a duplicate id", c.ID, p)
			}
			ids[p.ID] = true
			if (len(p.Checks) == 0) == (p.Uncovered == "") {
				t.Errorf("%s/%s: checks %v and uncovered %q: exactly one must be set", c.ID, p.ID, p.Checks, p.Uncovered)
			}
			for _, n := range p.Checks {
				chk, ok := byName[n]
				if !ok {
					t.Errorf("%s/%s: unknown check %q", c.ID, p.ID, n)
					continue
				}
				if !contains(chk.Clauses, c.ID) {
					t.Errorf("%s/%s: check %s does not name %s", c.ID, p.ID, n, c.ID)
				}
				proves[[2]string{n, c.ID}] = true
			}
		}
	}
	for _, chk := range builtins() {
		for _, id := range chk.Clauses {
			if !proves[[2]string{chk.Name, id}] {
				t.Errorf("check %s names %s but proves none of its parts", chk.Name, id)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func clauseByID(r *tomtest.Report, id string) tomtest.ClauseResult {
	for _, c := range r.Clauses {
		if c.ID == id {
			return c
		}
	}
	return tomtest.ClauseResult{}
}

// TestFailingPartFailsClause runs TLS13Only and HSTS against a TLS
// 1.3-only server that sends no HSTS header: 000-3.1 has three parts, two
// of them (TLS 1.3, strict ciphers) pass, and the HSTS part fails, so the
// clause fails; it is neither partial nor pass.
func TestFailingPartFailsClause(t *testing.T) {
	srv := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, hsts(""))
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	res := tomtest.Run(t.Context(), tomtest.TLS13Only(srv.URL, roots), tomtest.HSTS(srv.URL, roots))
	r := tomtest.NewReport(srv.URL, res)
	c := clauseByID(r, "000-3.1")
	if c.Status != tomtest.StatusFail || !strings.Contains(c.Reason, "hsts") {
		t.Fatalf("000-3.1: %s (%s), want fail naming hsts", c.Status, c.Reason)
	}
	parts := map[string]tomtest.Status{}
	for _, p := range c.Parts {
		parts[p.ID] = p.Status
	}
	if parts["tls13"] != tomtest.StatusPass || parts["strict-ciphers"] != tomtest.StatusPass || parts["hsts"] != tomtest.StatusFail {
		t.Fatalf("000-3.1 parts %v", parts)
	}
	// The same TLS check proves all of 004-2.1 and part of 000-0.1.
	if s := clauseByID(r, "004-2.1").Status; s != tomtest.StatusPass {
		t.Errorf("004-2.1: %s, want pass", s)
	}
	if s := clauseByID(r, "000-0.1").Status; s != tomtest.StatusPartial {
		t.Errorf("000-0.1: %s, want partial", s)
	}
	if !r.Failed() || !strings.HasPrefix(r.Verdict(), "FAIL: checks failed: hsts; 1 clause failed") {
		t.Errorf("verdict %q", r.Verdict())
	}

	// A failing check the catalogue maps to no part still fails the
	// clause it names, and a passing one proves nothing.
	res = tomtest.Run(t.Context(),
		tomtest.Check{Name: "custom", Clauses: []string{"000-7.1"}, Run: func(context.Context) error { return tomtest.ErrFailed }},
		tomtest.Check{Name: "custom-ok", Clauses: []string{"000-5.1"}, Run: func(context.Context) error { return nil }},
	)
	r = tomtest.NewReport("", res)
	if c := clauseByID(r, "000-7.1"); c.Status != tomtest.StatusFail {
		t.Errorf("000-7.1 with an unmapped failing check: %s, want fail", c.Status)
	}
	if c := clauseByID(r, "000-5.1"); c.Status != tomtest.StatusNotCovered || !strings.Contains(c.Reason, "custom-ok passed but") {
		t.Errorf("000-5.1 with an unmapped passing check: %s (%s), want not covered", c.Status, c.Reason)
	}
}

// TestPartialInEveryFormat: JSON, Markdown and JUnit all say "partial"
// for a partial clause, and JUnit never shows it as a plain passing test
// case.
func TestPartialInEveryFormat(t *testing.T) {
	r := tomtest.NewReport("all checks pass", allPass())
	var js, md, ju bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary tomtest.Counts `json:"summary"`
		Verdict string         `json:"verdict"`
		Clauses []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Parts  []struct {
				ID       string   `json:"id"`
				Status   string   `json:"status"`
				Checks   []string `json:"checks"`
				Evidence []string `json:"evidence"`
			} `json:"parts"`
		} `json:"clauses"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary != r.Counts() || doc.Verdict != r.Verdict() {
		t.Errorf("json summary %+v %q", doc.Summary, doc.Verdict)
	}
	for _, c := range doc.Clauses {
		if c.Status != string(wantWhenAllPass[c.ID]) {
			t.Errorf("json %s: %s", c.ID, c.Status)
		}
		if c.ID == "000-6.3" {
			got := map[string]string{}
			for _, p := range c.Parts {
				got[p.ID] = p.Status
			}
			want := map[string]string{"auth-failures-detected": "pass", "auth-failure-alert": "pass", "rate-limit-alert": "pass", "alert-counters": "pass", "anomaly-alert": "not covered"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("json 000-6.3/%s: %q, want %q", k, got[k], v)
				}
			}
		}
	}

	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- Clauses: 5 pass, 17 partial, 0 fail, 26 not covered\n",
		"- Verdict: no check failed; 5 clauses proven, 17 partly, 26 not covered\n",
		"| 000-6.3 | Alarmierung",
		"| 🟡 partial |",
		"➖ anomalies raise an alert",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md.String(), "PASS") {
		t.Error("markdown says PASS")
	}

	if err := r.WriteJUnit(&ju); err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	var suites struct {
		Suites []struct {
			Name    string `xml:"name,attr"`
			Tests   int    `xml:"tests,attr"`
			Skipped int    `xml:"skipped,attr"`
			Props   []prop `xml:"properties>property"`
			Cases   []struct {
				Name    string `xml:"name,attr"`
				Props   []prop `xml:"properties>property"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Failure *struct{} `xml:"failure"`
				Out     string    `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	if len(suites.Suites) != 3 {
		t.Fatalf("%d suites", len(suites.Suites))
	}
	cl := suites.Suites[1]
	if cl.Skipped != 17+26 {
		t.Errorf("clauses suite: %d skipped, want the 17 partial and 26 not covered", cl.Skipped)
	}
	partial := 0
	for _, c := range cl.Cases {
		id, _, _ := strings.Cut(c.Name, " ")
		status := ""
		for _, p := range c.Props {
			if p.Name == "tomkit.status" {
				status = p.Value
			}
		}
		if status != string(wantWhenAllPass[id]) {
			t.Errorf("junit %s: tomkit.status %q", id, status)
		}
		if status == "partial" {
			partial++
			if c.Skipped == nil || !strings.HasPrefix(c.Skipped.Message, "partial: ") || !strings.Contains(c.Out, "status: partial") {
				t.Errorf("junit %s: partial clause is not marked partial: %+v", id, c)
			}
		}
		if status == "pass" && (c.Skipped != nil || c.Failure != nil) {
			t.Errorf("junit %s: pass with skipped or failure", id)
		}
	}
	if partial != 17 {
		t.Errorf("junit: %d partial clauses, want 17", partial)
	}
	found := false
	for _, p := range cl.Props {
		if p.Name == "tomkit.partial" && p.Value == "17" {
			found = true
		}
	}
	if !found {
		t.Errorf("clauses suite properties %v lack tomkit.partial=17", cl.Props)
	}
	parts := suites.Suites[2]
	for _, c := range parts.Cases {
		if strings.HasPrefix(c.Name, "000-6.3/anomaly-alert ") && c.Skipped == nil {
			t.Errorf("junit part %s not skipped", c.Name)
		}
	}
}

// recTB records what Require reports.
type recTB struct {
	testing.TB
	errs, logs []string
	attrs      map[string]string
}

func (f *recTB) Helper()                        {}
func (f *recTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }
func (f *recTB) Logf(format string, a ...any)   { f.logs = append(f.logs, fmt.Sprintf(format, a...)) }
func (f *recTB) Attr(k, v string)               { f.attrs[k] = v }

// TestRequireSaysPartial: a green Require over a check that proves only
// part of its clauses says "partial" in the test log and the test
// attributes; RequireClauses fails for the partial clause and passes for a
// proven one.
func TestRequireSaysPartial(t *testing.T) {
	srv := tlsServer(t, tls.VersionTLS13, tls.VersionTLS13, hsts("max-age=63072000"))
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tb := &recTB{TB: t, attrs: map[string]string{}}
	tomtest.Require(tb, tomtest.TLS13Only(srv.URL, roots))
	if len(tb.errs) != 0 {
		t.Fatalf("Require failed: %q", tb.errs)
	}
	if tb.attrs["tomkit.clause.000-0.1"] != "partial" || tb.attrs["tomkit.clause.004-2.1"] != "pass" || tb.attrs["tomkit.clause.000-3.1"] != "partial" {
		t.Errorf("attrs %v", tb.attrs)
	}
	logs := strings.Join(tb.logs, "\n")
	if !strings.Contains(logs, "TOM 000-0.1: partial: not checked: eu-hosting") || !strings.Contains(logs, "TOM 004-2.1: pass") {
		t.Errorf("logs:\n%s", logs)
	}

	tb = &recTB{TB: t, attrs: map[string]string{}}
	tomtest.RequireClauses(tb, []string{"004-2.1", "000-3.1", "000-9.9"}, tomtest.TLS13Only(srv.URL, roots))
	errs := strings.Join(tb.errs, "\n")
	if len(tb.errs) != 2 || !strings.Contains(errs, "TOM 000-3.1 is not proven: partial: not checked: hsts") || !strings.Contains(errs, "000-9.9: no such clause") {
		t.Errorf("RequireClauses reported %q", tb.errs)
	}
	tb = &recTB{TB: t, attrs: map[string]string{}}
	tomtest.RequireClauses(tb, []string{"000-3.1"}, tomtest.TLS13Only(srv.URL, roots), tomtest.HSTS(srv.URL, roots))
	if len(tb.errs) != 0 {
		t.Errorf("RequireClauses with every part checked reported %q", tb.errs)
	}
}

// TestREADMEQuotesSummary: the READMEs quote what `tomkit check` prints
// against the reference service, where every check of this package runs
// and passes; a catalogue change must update the quotes.
func TestREADMEQuotesSummary(t *testing.T) {
	r := tomtest.NewReport("", allPass())
	quote := "clauses: " + r.Counts().String() + "; report in evidence\nverdict: " + r.Verdict() + "\n"
	for _, f := range []string{"../README.md", "../examples/refapp/README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "```\n"+quote+"```\n") {
			t.Errorf("%s does not quote the summary:\n%s", f, quote)
		}
	}
}
