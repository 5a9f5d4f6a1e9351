package tomtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/tomtest"
)

func TestClausesCatalogue(t *testing.T) {
	seen := map[string]bool{}
	docs := map[string]int{}
	for _, c := range tomtest.Clauses() {
		if seen[c.ID] {
			t.Errorf("duplicate clause %s", c.ID)
		}
		seen[c.ID] = true
		docs[c.Document]++
		if !strings.HasPrefix(c.ID, c.Document+"-") || c.Text == "" || c.Section == "" {
			t.Errorf("clause %+v incomplete", c)
		}
		if !c.Technical && c.Uncovered == "" {
			t.Errorf("organisational clause %s has no reason", c.ID)
		}
	}
	// 000 has 5 summary points and 26 section bullets; 004 has 17.
	if docs["000"] != 31 || docs["004"] != 17 {
		t.Fatalf("clauses per document %v, want 000:31 004:17", docs)
	}
}

func TestReport(t *testing.T) {
	ok := func(context.Context) error { return nil }
	bad := func(context.Context) error { return tomtest.ErrFailed }
	res := tomtest.Run(context.Background(),
		tomtest.Check{Name: "tls13-only", Clauses: []string{"000-3.1", "004-2.1"}, Run: ok},
		tomtest.Check{Name: "hsts", Clauses: []string{"000-3.1"}, Run: bad},
		tomtest.Check{Name: "section203-guards", Clauses: []string{"004-6.2"}, Run: func(context.Context) error { return tomtest.ErrNotCovered }},
	)
	r := tomtest.NewReport("https://example.test", res)
	if !r.Failed() {
		t.Fatal("report with a failed check is not Failed")
	}
	byID := map[string]tomtest.ClauseResult{}
	for _, c := range r.Clauses {
		byID[c.ID] = c
	}
	if len(byID) != len(tomtest.Clauses()) {
		t.Fatalf("report has %d clauses, catalogue %d", len(byID), len(tomtest.Clauses()))
	}
	tests := []struct {
		id         string
		want       tomtest.Status
		reasonPart string
	}{
		{"000-3.1", tomtest.StatusFail, "hsts"},
		{"004-2.1", tomtest.StatusPass, "tls13-only"},
		{"004-6.2", tomtest.StatusNotCovered, "not covered"},
		{"004-2.2", tomtest.StatusNotCovered, "encryption-at-rest"},
		{"000-8.2", tomtest.StatusNotCovered, "organisational"},
		{"004-1.1", tomtest.StatusNotCovered, "physical"},
	}
	for _, tt := range tests {
		c := byID[tt.id]
		if c.Status != tt.want || !strings.Contains(c.Reason, tt.reasonPart) {
			t.Errorf("%s: %s %q, want %s containing %q", tt.id, c.Status, c.Reason, tt.want, tt.reasonPart)
		}
	}
	for _, c := range r.Clauses {
		if c.Status == tomtest.StatusNotCovered && c.Reason == "" {
			t.Errorf("%s not covered without a reason", c.ID)
		}
	}

	var js, md, ju bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back tomtest.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Clauses) != len(r.Clauses) {
		t.Fatalf("json round trip: %v, %d clauses", err, len(back.Clauses))
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, c := range tomtest.Clauses() {
		if !strings.Contains(md.String(), "| "+c.ID+" |") {
			t.Errorf("markdown lacks clause %s", c.ID)
		}
	}
	if !strings.Contains(md.String(), "**FAIL**") {
		t.Error("markdown verdict is not FAIL")
	}
	if err := r.WriteJUnit(&ju); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if len(suites.Suites) != 3 || suites.Suites[0].Tests != 3 || suites.Suites[0].Failures != 1 || suites.Suites[0].Skipped != 1 {
		t.Fatalf("junit checks suite: %+v", suites.Suites)
	}
	if suites.Suites[1].Tests != len(tomtest.Clauses()) || suites.Suites[1].Failures != 1 {
		t.Fatalf("junit clauses suite: tests %d failures %d", suites.Suites[1].Tests, suites.Suites[1].Failures)
	}
}

// A passing check proves only the parts of a clause it checks: TLS 1.3
// alone leaves 000-3.1's HSTS part unchecked, so the clause is partial.
func ExampleNewReport() {
	res := tomtest.Run(context.Background(), tomtest.Check{
		Name:    "tls13-only",
		Clauses: []string{"000-3.1"},
		Run:     func(context.Context) error { return nil },
	})
	r := tomtest.NewReport("https://refapp.example", res)
	fmt.Println(r.Counts())
	fmt.Println(r.Verdict())
	for _, c := range r.Clauses {
		if c.ID == "000-3.1" {
			for _, p := range c.Parts {
				fmt.Println(c.ID+"/"+p.ID, p.Status)
			}
		}
	}
	// Output:
	// 0 pass, 1 partial, 0 fail, 47 not covered
	// no check failed; 0 clauses proven, 1 partly, 47 not covered
	// 000-3.1/tls13 pass
	// 000-3.1/hsts not covered
	// 000-3.1/strict-ciphers pass
}
