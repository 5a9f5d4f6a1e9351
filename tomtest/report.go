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
//
// The statuses map onto an OSCAL assessment-results finding per clause:
// pass is a satisfied target; partial, fail and not covered are not
// satisfied, and the parts, one observation each with its status and the
// checks behind it, say which parts were proven and which not.
type ClauseResult struct {
	Clause
	// Status is pass only when every part passed, partial when some
	// parts passed and the others were not checked, fail when any check
	// behind the clause failed, and not covered otherwise.
	Status Status `json:"status"`
	// Checks are the names of the checks that ran and named the clause.
	Checks []string `json:"checks,omitempty"`
	// Reason explains the status: the failing checks' details, why the
	// clause is not covered, or which parts were proven and which not.
	Reason string `json:"reason,omitempty"`
	// Parts are the clause's parts, each with its own outcome. They
	// replace the catalogue's [Clause.Parts] in the report.
	Parts []PartResult `json:"parts,omitempty"`
}

// PartResult is the outcome of one [Part] of a clause: pass when every
// check the part lists passed, fail when any of them failed, not covered
// otherwise.
type PartResult struct {
	Part
	Status Status `json:"status"`
	// Evidence names the checks that ran for the part; their results
	// are in [Report.Checks].
	Evidence []string `json:"evidence,omitempty"`
	// Reason says which checks passed or failed, or why the part is not
	// covered.
	Reason string `json:"reason,omitempty"`
}

// Report is an evidence report: every check's result and every clause of
// [Clauses] mapped to pass, partial, fail or not covered.
type Report struct {
	Generated time.Time         `json:"generated"`
	Target    string            `json:"target,omitempty"`
	Documents map[string]string `json:"documents"`
	Checks    []Result          `json:"checks"`
	Clauses   []ClauseResult    `json:"clauses"`
}

// NewReport maps results onto every clause, part by part. A part passes
// when every check the catalogue lists for it ran, named the clause, and
// passed; it fails when any of them failed. A clause then passes when all
// its parts pass, is partial when some pass and the rest were not checked,
// fails when any part fails or any other check naming it failed, and is
// not covered otherwise: organisational clauses always. A passing check
// that names a clause but proves none of its parts (a check the catalogue
// does not know) is listed but proves nothing.
func NewReport(target string, results []Result) *Report {
	r := &Report{Generated: time.Now().UTC(), Target: target, Documents: Documents, Checks: results}
	for _, c := range clauses {
		r.Clauses = append(r.Clauses, evaluate(c, results))
	}
	return r
}

func evaluate(c Clause, results []Result) ClauseResult {
	cr := ClauseResult{Clause: c, Status: StatusNotCovered}
	var named []Result
	for _, res := range results {
		if contains(res.Clauses, c.ID) {
			named = append(named, res)
			if !contains(cr.Checks, res.Check) {
				cr.Checks = append(cr.Checks, res.Check)
			}
		}
	}
	mapped := map[string]bool{}
	var failed, passed, open []string
	for _, p := range c.Parts {
		pr := evaluatePart(p, c.ID, named)
		cr.Parts = append(cr.Parts, pr)
		for _, n := range p.Checks {
			mapped[n] = true
		}
		switch pr.Status {
		case StatusFail:
			failed = append(failed, p.ID+": "+pr.Reason)
		case StatusPass:
			passed = append(passed, p.ID+" ("+strings.Join(pr.Evidence, ", ")+")")
		default:
			open = append(open, p.ID+" ("+pr.Reason+")")
		}
	}
	var unproven []string
	for _, res := range named {
		if mapped[res.Check] {
			continue
		}
		switch res.Status {
		case StatusFail:
			failed = append(failed, res.Check+": "+res.Detail)
		case StatusPass:
			unproven = append(unproven, res.Check)
		}
	}
	note := ""
	if len(unproven) > 0 {
		note = "; " + strings.Join(unproven, ", ") + " passed but the catalogue maps no part of this clause to it, so it proves none"
	}
	switch {
	case len(failed) > 0:
		cr.Status, cr.Reason = StatusFail, "failed: "+strings.Join(failed, "; ")
	case !c.Technical:
		cr.Reason = c.Uncovered + note
	case len(passed) > 0 && len(open) == 0:
		cr.Status, cr.Reason = StatusPass, "every part checked and passed: "+strings.Join(passed, ", ")+note
	case len(passed) > 0:
		cr.Status = StatusPartial
		cr.Reason = "partial: checked and passed: " + strings.Join(passed, ", ") + "; not checked: " + strings.Join(open, "; ") + note
	default:
		reasons := make([]string, 0, len(cr.Parts))
		for _, p := range cr.Parts {
			reasons = append(reasons, p.Reason)
		}
		cr.Reason = strings.Join(reasons, "; ") + note
		if cr.Reason == "" {
			cr.Reason = "no check covers this clause"
		}
	}
	return cr
}

func evaluatePart(p Part, clause string, named []Result) PartResult {
	pr := PartResult{Part: p, Status: StatusNotCovered}
	if len(p.Checks) == 0 {
		pr.Reason = p.Uncovered
		if pr.Reason == "" {
			pr.Reason = "no check covers this part"
		}
		return pr
	}
	var failed, passed, missing []string
	for _, name := range p.Checks {
		pass, fail := false, false
		var skipped []string
		for _, res := range named {
			if res.Check != name {
				continue
			}
			switch res.Status {
			case StatusPass:
				pass = true
			case StatusFail:
				fail = true
				failed = append(failed, name+": "+res.Detail)
			default:
				skipped = append(skipped, res.Detail)
			}
		}
		switch {
		case fail:
			pr.Evidence = append(pr.Evidence, name)
		case pass:
			pr.Evidence = append(pr.Evidence, name)
			passed = append(passed, name)
		case len(skipped) > 0:
			missing = append(missing, name+" did not run: "+strings.Join(skipped, "; "))
		default:
			missing = append(missing, name+" did not run for "+clause)
		}
	}
	switch {
	case len(failed) > 0:
		pr.Status, pr.Reason = StatusFail, strings.Join(failed, "; ")
	case len(missing) == 0:
		pr.Status, pr.Reason = StatusPass, "passed: "+strings.Join(passed, ", ")
	default:
		pr.Reason = strings.Join(missing, "; ")
		if len(passed) > 0 {
			pr.Reason = "passed: " + strings.Join(passed, ", ") + ", but " + pr.Reason
		}
	}
	return pr
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

// Counts is how many clauses of a report have each status.
type Counts struct {
	Pass       int `json:"pass"`
	Partial    int `json:"partial"`
	Fail       int `json:"fail"`
	NotCovered int `json:"not_covered"`
}

// String returns the counts as the summary line prints them, for example
// "7 pass, 13 partial, 0 fail, 28 not covered".
func (c Counts) String() string {
	return fmt.Sprintf("%d pass, %d partial, %d fail, %d not covered", c.Pass, c.Partial, c.Fail, c.NotCovered)
}

// Counts returns how many clauses passed, are partial, failed and are
// not covered.
func (r *Report) Counts() Counts {
	var n Counts
	for _, c := range r.Clauses {
		switch c.Status {
		case StatusPass:
			n.Pass++
		case StatusPartial:
			n.Partial++
		case StatusFail:
			n.Fail++
		default:
			n.NotCovered++
		}
	}
	return n
}

// Verdict sums the report up in words that do not claim more than was
// proven, for example "no check failed; 7 clauses proven, 13 partly, 28
// not covered", or, when a check failed, "FAIL: checks failed: hsts; 1
// clause failed, 6 proven, 13 partly, 28 not covered". Only the clauses
// counted as proven were checked in every part.
func (r *Report) Verdict() string {
	n := r.Counts()
	if !r.Failed() {
		return fmt.Sprintf("no check failed; %s proven, %d partly, %d not covered", clausesN(n.Pass), n.Partial, n.NotCovered)
	}
	var names []string
	for _, c := range r.Checks {
		if c.Status == StatusFail && !contains(names, c.Check) {
			names = append(names, c.Check)
		}
	}
	return fmt.Sprintf("FAIL: checks failed: %s; %s failed, %d proven, %d partly, %d not covered", strings.Join(names, ", "), clausesN(n.Fail), n.Pass, n.Partial, n.NotCovered)
}

func clausesN(n int) string {
	if n == 1 {
		return "1 clause"
	}
	return fmt.Sprintf("%d clauses", n)
}

// WriteJSON writes the report as indented JSON, with its [Report.Counts]
// as "summary" and its [Report.Verdict] as "verdict".
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Summary Counts `json:"summary"`
		Verdict string `json:"verdict"`
	}{r, r.Counts(), r.Verdict()})
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// WriteMarkdown writes the report for an auditor: a summary, the clauses
// by document (each technical clause with its parts), then the checks
// with their details.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# TOM compliance evidence\n\n")
	fmt.Fprintf(&b, "- Generated: %s\n", r.Generated.Format(time.RFC3339))
	if r.Target != "" {
		fmt.Fprintf(&b, "- Target: %s\n", mdEscape(r.Target))
	}
	fmt.Fprintf(&b, "- Clauses: %s\n", r.Counts())
	verdict := mdEscape(r.Verdict())
	if v, ok := strings.CutPrefix(verdict, "FAIL: "); ok {
		verdict = "**FAIL**: " + v
	}
	fmt.Fprintf(&b, "- Verdict: %s\n", verdict)
	fmt.Fprintf(&b, "- Statuses: pass = every part of the clause was checked and passed; partial = the checked parts passed, the parts marked ➖ were not checked; fail = a check behind the clause failed; not covered = no part was proven\n")
	docs := make([]string, 0, len(r.Documents))
	for d := range r.Documents {
		docs = append(docs, d)
	}
	sort.Strings(docs)
	for _, d := range docs {
		fmt.Fprintf(&b, "\n## Document %s: %s\n\n", d, mdEscape(r.Documents[d]))
		fmt.Fprintf(&b, "| Clause | Text | Kind | Status | Checks | Parts and reason |\n|---|---|---|---|---|---|\n")
		for _, c := range r.Clauses {
			if c.Document != d {
				continue
			}
			kind := "organisational"
			if c.Technical {
				kind = "technical"
			}
			reason := mdEscape(c.Reason)
			if len(c.Parts) > 0 {
				lines := make([]string, 0, len(c.Parts))
				for _, p := range c.Parts {
					lines = append(lines, fmt.Sprintf("%s %s: %s", partMark(p.Status), mdEscape(p.Text), mdEscape(p.Reason)))
				}
				reason = strings.Join(lines, "<br>")
				if c.Status == StatusFail {
					reason = mdEscape(c.Reason) + "<br>" + reason
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.ID, mdEscape(c.Text), kind, statusMark(c.Status), strings.Join(c.Checks, ", "), reason)
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
	case StatusPartial:
		return "🟡 partial"
	case StatusFail:
		return "❌ fail"
	}
	return "➖ not covered"
}

func partMark(s Status) string {
	switch s {
	case StatusPass:
		return "✅"
	case StatusFail:
		return "❌"
	}
	return "➖"
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	ClassName  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMessage   `xml:"failure,omitempty"`
	Skipped    *junitMessage   `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML for a CI, in three suites:
// the checks, the clauses and the clauses' parts. Failed checks, clauses
// and parts are failures. A clause that is only partly proven is never a
// plain passing test case: it is skipped with a message that starts with
// "partial:" and names the parts not checked, and its properties carry
// tomkit.status=partial and each part's status. Not-covered clauses,
// parts and checks are skipped, with the reason.
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
	n := r.Counts()
	cl := junitSuite{Name: "tomkit check: TOM clauses", Time: "0", Properties: []junitProperty{
		{"tomkit.pass", fmt.Sprint(n.Pass)}, {"tomkit.partial", fmt.Sprint(n.Partial)},
		{"tomkit.fail", fmt.Sprint(n.Fail)}, {"tomkit.not_covered", fmt.Sprint(n.NotCovered)},
		{"tomkit.verdict", r.Verdict()},
	}}
	parts := junitSuite{Name: "tomkit check: TOM clause parts", Time: "0"}
	for _, c := range r.Clauses {
		jc := junitCase{Name: c.ID + " " + c.Text, ClassName: "tomtest.clauses." + c.Document, Time: "0",
			Properties: []junitProperty{{"tomkit.status", string(c.Status)}}}
		var out strings.Builder
		fmt.Fprintf(&out, "status: %s\n", c.Status)
		for _, p := range c.Parts {
			jc.Properties = append(jc.Properties, junitProperty{"tomkit.part." + p.ID, string(p.Status)})
			fmt.Fprintf(&out, "part %s (%s): %s: %s\n", p.ID, p.Text, p.Status, p.Reason)
			pc := junitCase{Name: c.ID + "/" + p.ID + " " + p.Text, ClassName: "tomtest.parts." + c.Document, Time: "0", SystemOut: p.Reason}
			addStatus(&pc, &parts, p.Status, p.Reason)
			parts.Cases = append(parts.Cases, pc)
		}
		fmt.Fprintf(&out, "%s\n", c.Reason)
		jc.SystemOut = out.String()
		addStatus(&jc, &cl, c.Status, c.Reason)
		cl.Cases = append(cl.Cases, jc)
	}
	out := junitSuites{Name: "tomkit check", Suites: []junitSuite{checks, cl, parts}}
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
	case StatusPass:
	case StatusFail:
		s.Failures++
		jc.Failure = &junitMessage{Message: detail, Text: detail}
	default:
		// Partial and not covered: never a plain pass. A partial
		// clause's reason starts with "partial:".
		s.Skipped++
		msg := detail
		if st == StatusNotCovered && !strings.Contains(msg, "not covered") {
			msg = "not covered: " + msg
		}
		jc.Skipped = &junitMessage{Message: msg}
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
