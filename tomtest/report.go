package tomtest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ClauseResult is one clause's line in a [Report].
type ClauseResult struct {
	Clause
	Status Status `json:"status"`
	// Checks are the names of the checks that ran for the clause.
	Checks []string `json:"checks,omitempty"`
	// Reason explains the status: the failing checks' details, or why
	// the clause is not covered, or what part of it a pass does not
	// cover.
	Reason string `json:"reason,omitempty"`
}

// Report is an evidence report: every check's result and every clause of
// [Clauses] mapped to pass, fail or not covered.
type Report struct {
	Generated time.Time         `json:"generated"`
	Target    string            `json:"target,omitempty"`
	Documents map[string]string `json:"documents"`
	Checks    []Result          `json:"checks"`
	Clauses   []ClauseResult    `json:"clauses"`
}

// NewReport maps results onto every clause. A clause passes when at least
// one check covering it ran and none failed, fails when any failed, and
// is not covered otherwise: organisational clauses always, technical ones
// when no check for them ran (the reason says which checks would have).
func NewReport(target string, results []Result) *Report {
	r := &Report{Generated: time.Now().UTC(), Target: target, Documents: Documents, Checks: results}
	for _, c := range clauses {
		cr := ClauseResult{Clause: c, Status: StatusNotCovered}
		var failed, passed, skipped []string
		for _, res := range results {
			if !contains(res.Clauses, c.ID) {
				continue
			}
			cr.Checks = append(cr.Checks, res.Check)
			switch res.Status {
			case StatusFail:
				failed = append(failed, res.Check+": "+res.Detail)
			case StatusPass:
				passed = append(passed, res.Check)
			default:
				skipped = append(skipped, res.Check+": "+res.Detail)
			}
		}
		switch {
		case !c.Technical:
			cr.Checks = nil
			cr.Reason = c.Uncovered
		case len(failed) > 0:
			cr.Status, cr.Reason = StatusFail, strings.Join(failed, "; ")
		case len(passed) > 0:
			cr.Status = StatusPass
			cr.Reason = "passed: " + strings.Join(passed, ", ")
			if c.Uncovered != "" {
				cr.Reason += ". Not covered: " + c.Uncovered
			}
		case len(skipped) > 0:
			cr.Reason = strings.Join(skipped, "; ")
		default:
			cr.Reason = c.Uncovered
			if w := checksFor(c.ID); w != "" {
				if cr.Reason != "" {
					cr.Reason += "; "
				}
				cr.Reason += "no check ran (covered by: " + w + ")"
			}
			if cr.Reason == "" {
				cr.Reason = "no check covers this clause"
			}
		}
		r.Clauses = append(r.Clauses, cr)
	}
	return r
}

// checksFor names the checks of this package that cover clause id, for
// the reason of a clause no check ran for.
func checksFor(id string) string {
	var names []string
	for _, c := range []Check{
		TLS13Only("", nil), HSTS("", nil), EncryptedAtRest(nil, nil), DenyByDefault(nil), MFARequired(nil, nil),
		AuditIntegrity("", nil), RetentionWindow(MaxRetention000, nil), Section203(Guard203{}),
		Service{}.HTTPAuthRequired(), Service{}.HTTPTenantSeparation("", "", ""),
	} {
		if contains(c.Clauses, id) {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Failed reports whether any check failed. A CI exits non-zero then.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

// Counts returns how many clauses passed, failed and are not covered.
func (r *Report) Counts() (pass, fail, notCovered int) {
	for _, c := range r.Clauses {
		switch c.Status {
		case StatusPass:
			pass++
		case StatusFail:
			fail++
		default:
			notCovered++
		}
	}
	return
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// WriteMarkdown writes the report for an auditor: a summary, the clauses
// by document, then the checks with their details.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	pass, fail, nc := r.Counts()
	fmt.Fprintf(&b, "# TOM compliance evidence\n\n")
	fmt.Fprintf(&b, "- Generated: %s\n", r.Generated.Format(time.RFC3339))
	if r.Target != "" {
		fmt.Fprintf(&b, "- Target: %s\n", mdEscape(r.Target))
	}
	fmt.Fprintf(&b, "- Clauses: %d pass, %d fail, %d not covered\n", pass, fail, nc)
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "- Verdict: **%s** (every check that ran passed: %v)\n", verdict, !r.Failed())
	docs := make([]string, 0, len(r.Documents))
	for d := range r.Documents {
		docs = append(docs, d)
	}
	sort.Strings(docs)
	for _, d := range docs {
		fmt.Fprintf(&b, "\n## Document %s: %s\n\n", d, mdEscape(r.Documents[d]))
		fmt.Fprintf(&b, "| Clause | Text | Kind | Status | Checks | Reason |\n|---|---|---|---|---|---|\n")
		for _, c := range r.Clauses {
			if c.Document != d {
				continue
			}
			kind := "organisational"
			if c.Technical {
				kind = "technical"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.ID, mdEscape(c.Text), kind, statusMark(c.Status), strings.Join(c.Checks, ", "), mdEscape(c.Reason))
		}
	}
	fmt.Fprintf(&b, "\n## Checks\n\n| Check | Clauses | Status | Duration | Detail |\n|---|---|---|---|---|\n")
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Check, strings.Join(c.Clauses, ", "), statusMark(c.Status), c.Duration.Round(time.Millisecond), mdEscape(c.Detail))
	}
	for _, c := range r.Checks {
		if c.Description != "" {
			fmt.Fprintf(&b, "\n- **%s**: %s", c.Check, mdEscape(c.Description))
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func statusMark(s Status) string {
	switch s {
	case StatusPass:
		return "✅ pass"
	case StatusFail:
		return "❌ fail"
	}
	return "➖ not covered"
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML for a CI: one suite of checks
// and one of clauses. Failed checks and clauses are failures; not-covered
// ones are skipped, with the reason.
func (r *Report) WriteJUnit(w io.Writer) error {
	checks := junitSuite{Name: "tomkit check: checks"}
	var total time.Duration
	for _, c := range r.Checks {
		jc := junitCase{Name: c.Check, ClassName: "tomtest.checks", Time: secs(c.Duration), SystemOut: "clauses: " + strings.Join(c.Clauses, ", ") + "\n" + c.Description}
		total += c.Duration
		addStatus(&jc, &checks, c.Status, c.Detail)
		checks.Cases = append(checks.Cases, jc)
	}
	checks.Time = secs(total)
	cl := junitSuite{Name: "tomkit check: TOM clauses", Time: "0"}
	for _, c := range r.Clauses {
		jc := junitCase{Name: c.ID + " " + c.Text, ClassName: "tomtest.clauses." + c.Document, Time: "0", SystemOut: c.Reason}
		addStatus(&jc, &cl, c.Status, c.Reason)
		cl.Cases = append(cl.Cases, jc)
	}
	out := junitSuites{Name: "tomkit check", Suites: []junitSuite{checks, cl}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func addStatus(jc *junitCase, s *junitSuite, st Status, detail string) {
	s.Tests++
	switch st {
	case StatusFail:
		s.Failures++
		jc.Failure = &junitMessage{Message: detail, Text: detail}
	case StatusNotCovered:
		s.Skipped++
		jc.Skipped = &junitMessage{Message: detail}
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
