package keyfile_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"

	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
)

func sample(t testing.TB) (*keyfile.File, []byte, *subtle.AESGCM) {
	m, err := subtle.NewAESGCM(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &keyfile.File{
		Scopes:    []keyfile.Scope{{Meta: keyfile.Meta{Tenant: "a", Ring: "0102030405060708", Created: when, MinVersion: 1, Keys: []keyfile.Key{{ID: 7, Version: 1, Created: when}}}, Keyset: []byte{1, 2, 3}}},
		Destroyed: []keyfile.Tombstone{{Ring: "1112131415161718", Destroyed: when}},
	}
	b, err := f.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return f, b, m
}

func TestRoundTrip(t *testing.T) {
	f, b, m := sample(t)
	g, err := keyfile.Parse(b, m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("Parse(Encode(f)) = %+v; want %+v", g, f)
	}
	wrong, _ := subtle.NewAESGCM([]byte("0123456789abcdef0123456789abcdef"))
	if _, err := keyfile.Parse(b, wrong); !errors.Is(err, keyfile.ErrAuth) {
		t.Fatalf("wrong master: %v", err)
	}
}

func TestParseRing(t *testing.T) {
	for _, s := range []string{"", "01020304050607", "010203040506070809", "0102030405060A08", "zz02030405060708"} {
		if _, err := keyfile.ParseRing(s); !errors.Is(err, keyfile.ErrFormat) {
			t.Errorf("ParseRing(%q): %v", s, err)
		}
	}
}

// FuzzParse checks that Parse never panics, fails only with the format's
// errors, and that an accepted file encodes and parses back to itself.
func FuzzParse(f *testing.F) {
	_, b, m := sample(f)
	f.Add(b)
	f.Add([]byte(`{"format":"tomkit-keyring-v1","scopes":[]}`))
	f.Add([]byte(`{"format":"tomkit-keyring-v2","scopes":[],"auth":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := keyfile.Parse(b, m)
		if err != nil {
			if !errors.Is(err, keyfile.ErrFormat) && !errors.Is(err, keyfile.ErrAuth) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		b2, err := g.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		h, err := keyfile.Parse(b2, m)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		h.Auth, g.Auth = nil, nil
		if !reflect.DeepEqual(g, h) {
			t.Fatalf("round trip: %+v != %+v", g, h)
		}
	})
}
