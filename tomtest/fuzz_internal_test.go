package tomtest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
)

func FuzzHSTSMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=63072000; includeSubDomains", `max-age="1"`, "max-age=", "MAX-AGE=5;max-age=6", "max-age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		age, ok := hstsMaxAge(v)
		if ok && age < 0 {
			t.Fatalf("%q: negative max-age %v", v, age)
		}
		if !ok && age != 0 {
			t.Fatalf("%q: invalid but age %v", v, age)
		}
		if ok && age%time.Second != 0 {
			t.Fatalf("%q: age %v not whole seconds", v, age)
		}
	})
}

// FuzzIsPseudonym: every pseudonym an audit.Pseudonymizer makes is
// recognised, and anything recognised has the pseudonym's shape (so the
// raw value of an attribute is never taken for one).
func FuzzIsPseudonym(f *testing.F) {
	ps, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "k-1", Secret: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"127.0.0.1", "hmac-sha256:k-1:" + strings.Repeat("a", 64), "hmac-sha256::" + strings.Repeat("0", 64), "hmac-sha256:k:" + strings.Repeat("A", 64), audit.Redacted} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p, err := ps.Pseudonym("", v)
		if err != nil {
			t.Fatal(err)
		}
		if !isPseudonym(p) {
			t.Fatalf("pseudonym %q of %q not recognised", p, v)
		}
		if isPseudonym(v) {
			rest, ok := strings.CutPrefix(v, "hmac-sha256:")
			id, h, _ := strings.Cut(rest, ":")
			if !ok || id == "" || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
				t.Fatalf("%q recognised as a pseudonym", v)
			}
		}
	})
}
