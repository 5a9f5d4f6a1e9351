package retention_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippets checks that the Go snippets of the README that say
// "// From ExampleX in FILE." quote FILE: every line of the snippet but
// that one appears in FILE, whitespace and trailing comments aside, and
// FILE has the function ExampleX. So the README's code compiles and runs
// as the examples do.
func TestREADMESnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`^// From (Example\w*) in ([\w/.]+)\.$`)
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	checked := 0
	for _, b := range blocks {
		lines := strings.Split(strings.TrimSpace(b[1]), "\n")
		m := from.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", m[2]))
		if err != nil {
			t.Fatalf("README quotes %s: %v", m[2], err)
		}
		text := string(src)
		if !strings.Contains(text, "func "+m[1]+"()") {
			t.Errorf("README quotes %s, which %s does not have", m[1], m[2])
		}
		for _, l := range lines[1:] {
			l = strings.TrimSpace(l)
			if i := strings.Index(l, " // "); i >= 0 && !strings.HasPrefix(l, "//") {
				l = strings.TrimSpace(l[:i])
			}
			if l == "" || strings.HasPrefix(l, "// ") && strings.Contains(text, strings.TrimPrefix(l, "// ")) {
				continue
			}
			if !strings.Contains(text, l) {
				t.Errorf("README snippet from %s: %q is not in %s", m[1], l, m[2])
			}
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("%d README snippets quote an example, want at least 4", checked)
	}
}
