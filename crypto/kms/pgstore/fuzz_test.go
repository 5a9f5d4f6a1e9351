package pgstore_test

import (
	"strconv"
	"testing"

	"github.com/tomkit/tomkit/crypto/kms/pgstore"
)

// FuzzParsePayload checks that a notification payload parses only in
// one of its two forms, and that a parsed one prints back to itself.
func FuzzParsePayload(f *testing.F) {
	for _, p := range []string{"v 1 default", "a default", "v 18446744073709551615 a b", "v 0 x", "v 1", "a", "", "x y"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		kind, name, seq, ok := pgstore.ParsePayload(p)
		if !ok {
			return
		}
		var back string
		switch kind {
		case 'v':
			back = "v " + strconv.FormatUint(seq, 10) + " " + name
		case 'a':
			back = "a " + name
		default:
			t.Fatalf("kind %q", kind)
		}
		if back != p || name == "" {
			t.Fatalf("%q parsed as %c %q %d", p, kind, name, seq)
		}
	})
}
