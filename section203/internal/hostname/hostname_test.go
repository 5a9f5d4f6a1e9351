package hostname_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tomkit/tomkit/section203/internal/hostname"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" means an error is expected
		err  error
	}{
		{"eu.example.com", "eu.example.com:443", nil},
		{"EU.Example.COM", "eu.example.com:443", nil},
		{"eu.example.com.", "eu.example.com:443", nil},
		{"EU.EXAMPLE.COM.:8443", "eu.example.com:8443", nil},
		{"eu.example.com..", "", hostname.ErrInvalid},
		{".eu.example.com", "", hostname.ErrInvalid},
		{"eu..example.com", "", hostname.ErrInvalid},
		{"eu.example.com:", "", hostname.ErrInvalid},
		{"eu.example.com:0", "", hostname.ErrInvalid},
		{"eu.example.com:0443", "", hostname.ErrInvalid},
		{"eu.example.com:65536", "", hostname.ErrInvalid},
		{"eu.example.com:443:443", "", hostname.ErrInvalid},
		{"eu.example.com@evil.example.com", "", hostname.ErrInvalid},
		{"eu.example.com%2eevil", "", hostname.ErrInvalid},
		{"eu.example.com/evil", "", hostname.ErrInvalid},
		{"eu.example.com\\evil", "", hostname.ErrInvalid},
		{"eu example.com", "", hostname.ErrInvalid},
		{"eu_x.example.com", "", hostname.ErrInvalid},
		{"-eu.example.com", "", hostname.ErrInvalid},
		{"127.0.0.1", "127.0.0.1:443", nil},
		{"127.0.0.1:80", "127.0.0.1:80", nil},
		{"[::1]", "[::1]:443", nil},
		{"[::1]:8080", "[::1]:8080", nil},
		{"[::ffff:127.0.0.1]", "127.0.0.1:443", nil},
		{"[0:0:0:0:0:0:0:1]", "[::1]:443", nil},
		{"[fe80::1%25eth0]", "", hostname.ErrInvalid},
		{"::1", "", hostname.ErrInvalid},
		{"[::1]x", "", hostname.ErrInvalid},
		{"[127.0.0.1]", "", hostname.ErrInvalid},
		{"2130706433", "", hostname.ErrNumeric},
		{"0x7f000001", "", hostname.ErrNumeric},
		{"0x7f.1", "", hostname.ErrNumeric},
		{"0177.0.0.1", "", hostname.ErrNumeric},
		{"127.1", "", hostname.ErrNumeric},
		{"127.000.0.1", "", hostname.ErrNumeric},
		{"1.2.3.4.5", "", hostname.ErrNumeric},
		{"bücher.example.com", "xn--bcher-kva.example.com:443", nil},
		{"BÜCHER.example.com", "xn--bcher-kva.example.com:443", nil},
		{"xn--bcher-kva.example.com", "xn--bcher-kva.example.com:443", nil},
		{"faß.example.com", "xn--fa-hia.example.com:443", nil},
		{"\u0435u.example.com", "xn--u-itb.example.com:443", nil}, // Cyrillic е: a look-alike, never eu.example.com
		{"ｅｕ.example.com", "eu.example.com:443", nil},             // full width: what the resolver would look up
		{"xn--.example.com", "", hostname.ErrInvalid},
		{"xn--abc-.example.com", "", hostname.ErrInvalid},
		{"xn--ab-.example.com", "", hostname.ErrInvalid},
		{"", "", hostname.ErrInvalid},
		{strings.Repeat("a", 64) + ".example.com", "", hostname.ErrInvalid},
	}
	for _, c := range cases {
		got, err := hostname.Parse(c.in, 443)
		if c.want == "" {
			if !errors.Is(err, c.err) {
				t.Errorf("Parse(%q) = %v, %v; want error %v", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", c.in, got.String(), err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"eu.example.com", "EU.EXAMPLE.COM.:8443", "[::1]:80", "127.0.0.1", "2130706433",
		"bücher.example.com", "xn--bcher-kva.example", "a@b", "[::ffff:1.2.3.4]", "0x7f.1", "ｅｕ.example"} {
		f.Add(s)
	}
	f.Add("ab--cd.example")
	f.Add("A-1.B")
	f.Fuzz(func(t *testing.T, in string) {
		// The fast path for plain names agrees with full IDNA processing.
		fast, ferr := hostname.Name(in)
		slow, serr := hostname.NameIDNA(in)
		if fast != slow || (ferr == nil) != (serr == nil) {
			t.Fatalf("Name(%q) = %q, %v; IDNA path = %q, %v", in, fast, ferr, slow, serr)
		}
		a, err := hostname.Parse(in, 443)
		if err != nil {
			return
		}
		s := a.String()
		// The normal form is plain ASCII without anything a URL parser or
		// dialer could read differently.
		if !utf8.ValidString(s) || strings.ContainsAny(s, "@/\\?#% \t") {
			t.Fatalf("Parse(%q) = %q: unsafe characters", in, s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 || 'A' <= s[i] && s[i] <= 'Z' {
				t.Fatalf("Parse(%q) = %q: not lower-case ASCII", in, s)
			}
		}
		if a.Port == 0 || (a.Name == "") == !a.IP.IsValid() {
			t.Fatalf("Parse(%q) = %#v: inconsistent", in, a)
		}
		// Idempotent: the normal form normalises to itself.
		b, err := hostname.Parse(s, 1)
		if err != nil || b != a {
			t.Fatalf("Parse(%q) = %q, but Parse(%q) = %#v, %v", in, s, s, b, err)
		}
	})
}
