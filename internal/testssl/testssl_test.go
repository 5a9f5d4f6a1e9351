package testssl_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/internal/testssl"
)

// testdata/hellotls.json is a real scan of examples/hellotls with a
// 30-day development certificate, which testssl flags as expiring soon.
func load(t testing.TB) []testssl.Finding {
	t.Helper()
	data, err := os.ReadFile("testdata/hellotls.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := testssl.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// edit returns a copy of fs with every entry of id changed by fn; fn
// returning false drops the entry.
func edit(fs []testssl.Finding, id string, fn func(*testssl.Finding) bool) []testssl.Finding {
	var out []testssl.Finding
	for _, f := range fs {
		if f.ID == id && !fn(&f) {
			continue
		}
		out = append(out, f)
	}
	return out
}

func drop(f *testssl.Finding) bool { return false }

func TestCheck(t *testing.T) {
	base := load(t)
	// The scan with a certificate valid long enough: only the self-signed
	// findings remain.
	clean := edit(edit(base, "cert_expirationStatus", drop), "cert_notAfter", drop)
	set := func(fs []testssl.Finding, id, sev, finding string) []testssl.Finding {
		return edit(fs, id, func(f *testssl.Finding) bool { f.Severity, f.Finding = sev, finding; return true })
	}
	tests := []struct {
		name       string
		findings   []testssl.Finding
		exceptions []testssl.Exception
		want       []string // substrings of the error; nil means pass
	}{
		{"clean", clean, testssl.SelfSigned, nil},
		{"expiring certificate", base, testssl.SelfSigned, []string{"HIGH cert_expirationStatus", "HIGH cert_notAfter"}},
		{"no exceptions", clean, nil, []string{"CRITICAL cert_chain_of_trust", "HIGH cert_revocation"}},
		{"other chain failure not excused", set(clean, "cert_chain_of_trust", "CRITICAL", "failed (chain incomplete)."), testssl.SelfSigned, []string{"cert_chain_of_trust"}},
		{"tls 1.2 offered", set(clean, "TLS1_2", "OK", "offered"), testssl.SelfSigned, []string{"TLS1_2"}},
		{"tls 1.0 offered", set(clean, "TLS1", "LOW", "offered (deprecated)"), testssl.SelfSigned, []string{"TLS1:"}},
		{"sslv3 missing", edit(clean, "SSLv3", drop), testssl.SelfSigned, []string{"SSLv3: want exactly one entry"}},
		{"tls 1.3 not offered", set(clean, "TLS1_3", "MEDIUM", "not offered"), testssl.SelfSigned, []string{"TLS1_3"}},
		{"hsts too short", set(clean, "HSTS_time", "MEDIUM", "max-age too short. 7 days (=604800 seconds) < 15552000 seconds"), testssl.SelfSigned, []string{"HSTS_time: max-age 604800"}},
		{"hsts 180 days", set(clean, "HSTS_time", "OK", "180 days (=15552000 seconds) > 15552000 seconds"), testssl.SelfSigned, []string{"HSTS_time: max-age 15552000"}},
		{"hsts missing", edit(clean, "HSTS_time", drop), testssl.SelfSigned, []string{"HSTS_time: want exactly one entry"}},
		{"medium finding", set(clean, "BREACH", "MEDIUM", "potentially VULNERABLE, gzip HTTP compression detected"), testssl.SelfSigned, []string{"MEDIUM BREACH"}},
		{"scan warning", set(clean, "heartbleed", "WARN", "couldn't be tested, socket problem"), testssl.SelfSigned, []string{"WARN heartbleed"}},
		{"low finding passes", set(clean, "DNS_CAArecord", "LOW", "--"), testssl.SelfSigned, nil},
		{"empty scan", nil, testssl.SelfSigned, []string{"SSLv2", "TLS1_3", "HSTS_time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testssl.Check(tt.findings, tt.exceptions)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want failure naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestArgs(t *testing.T) {
	args := testssl.Args("/tmp/x.json", "127.0.0.1:8443")
	for _, want := range []string{"--quiet", "--jsonfile", "-p", "-s", "-f", "-S", "-h", "-U"} {
		if !slices.Contains(args, want) {
			t.Errorf("Args lacks %s: %q", want, args)
		}
	}
	if args[len(args)-1] != "127.0.0.1:8443" {
		t.Errorf("target not last: %q", args)
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{", `{"id":"x"}`, "[1]"} {
		if _, err := testssl.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func FuzzCheck(f *testing.F) {
	data, err := os.ReadFile("testdata/hellotls.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`[{"id":"HSTS_time","severity":"OK","finding":"(=99999999999999999999 seconds)"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := testssl.Parse(data)
		if err != nil {
			return
		}
		// Check must not panic, and must never pass a scan without the
		// protocol entries.
		if testssl.Check(fs, testssl.SelfSigned) == nil {
			for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "HSTS_time"} {
				if !slices.ContainsFunc(fs, func(f testssl.Finding) bool { return f.ID == id }) {
					t.Fatalf("passed without %s", id)
				}
			}
		}
	})
}
