package envelope_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

var update = flag.Bool("update", false, "regenerate testdata/keyring.json and testdata/vectors.json")

// The known-answer vectors are generated from a fixed master key, a fixed
// clock and a seeded crypto/rand (testing/cryptotest), so that
// `go test -run TestVectors -update` reproduces testdata byte for byte.
const (
	katMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31; test only
	katSeed      = 203
)

var katTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type vector struct {
	Name        string            `json:"name"`
	Tenant      string            `json:"tenant"`
	Subject     string            `json:"subject,omitempty"`
	KeyVersion  uint32            `json:"key_version"`
	SegmentSize int               `json:"segment_size"`
	Context     map[string]string `json:"context"`
	Plaintext   string            `json:"plaintext_hex"`
	Ciphertext  string            `json:"ciphertext_hex"`
	// Error names the error Open must return with Context, or is empty.
	Error string `json:"error,omitempty"`
}

var katErrors = map[string]error{
	"authentication":  envelope.ErrAuthentication,
	"truncated":       envelope.ErrTruncated,
	"malformed":       envelope.ErrMalformed,
	"version":         envelope.ErrUnsupportedVersion,
	"unknown_key":     kms.ErrUnknownKey,
	"key_destroyed":   kms.ErrKeyDestroyed,
	"invalid_context": envelope.ErrInvalidContext,
}

// generateVectors builds the keyring and the vectors in dir.
func generateVectors(t *testing.T, dir string) {
	cryptotest.SetGlobalRandom(t, katSeed)
	ctx := context.Background()
	m, err := kms.ParseMasterKey(katMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kms.Config{Master: m, Logger: nopLogger{}, Clock: audit.ClockFunc(func() time.Time { return katTime })}
	ring, err := kms.Create(ctx, filepath.Join(dir, "keyring.json"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tenant, subject, gone := audit.Actor{Tenant: "kat"}, audit.Actor{Tenant: "kat", Subject: "subject-1"}, audit.Actor{Tenant: "kat", Subject: "erased"}
	for _, sc := range []audit.Actor{tenant, subject, gone} {
		if err := ring.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	var vs []vector
	add := func(name string, sc audit.Actor, ver uint32, seg int, ec envelope.Context, pt []byte, mutate func([]byte) []byte, errName string) {
		e, err := envelope.New(ring.KEK(sc), envelope.Config{Logger: nopLogger{}, SegmentSize: seg})
		if err != nil {
			t.Fatal(err)
		}
		ct, err := e.Seal(ctx, nil, pt, ec)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			ct = mutate(ct)
		}
		vs = append(vs, vector{Name: name, Tenant: sc.Tenant, Subject: sc.Subject, KeyVersion: ver, SegmentSize: seg,
			Context: ec, Plaintext: hex.EncodeToString(pt), Ciphertext: hex.EncodeToString(ct), Error: errName})
	}
	ec := envelope.Context{"tenant": "kat", "class": "health"}
	add("empty", tenant, 1, 0, ec, nil, nil, "")
	add("empty-context", tenant, 1, 0, nil, []byte("no context"), nil, "")
	add("one-segment", tenant, 1, 0, ec, []byte("Art. 32 GDPR: encryption of personal data"), nil, "")
	add("three-segments", tenant, 1, 16, ec, []byte("0123456789abcdef0123456789abcdef0123"), nil, "")
	add("exact-segments", tenant, 1, 16, ec, []byte("0123456789abcdef0123456789abcdef"), nil, "")
	add("subject", subject, 1, 0, envelope.Context{"subject": "subject-1"}, []byte("subject data"), nil, "")
	add("erased-subject", gone, 1, 0, ec, []byte("shredded"), nil, "key_destroyed")
	// Two messages under one cached DEK: message numbers 0 and 1.
	ce, err := envelope.New(ring.KEK(tenant), envelope.Config{Logger: nopLogger{}, SegmentSize: 16, Cache: &envelope.Cache{}, Clock: audit.ClockFunc(func() time.Time { return katTime })})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cached-0", "cached-1"} {
		pt := []byte("cached DEK, " + name + ", two segments")
		ct, err := ce.Seal(ctx, nil, pt, ec)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, vector{Name: name, Tenant: tenant.Tenant, KeyVersion: 1, SegmentSize: 16, Context: ec,
			Plaintext: hex.EncodeToString(pt), Ciphertext: hex.EncodeToString(ct)})
	}
	if _, err := ring.Rotate(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	add("rotated", tenant, 2, 0, ec, []byte("sealed under version 2"), nil, "")
	add("truncated", tenant, 2, 16, ec, []byte("0123456789abcdef0123"), func(b []byte) []byte { return b[:len(b)-(4+16)] }, "truncated")
	add("flipped-tag", tenant, 2, 0, ec, []byte("tampered"), func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "authentication")
	add("version-2", tenant, 2, 0, ec, []byte("future"), func(b []byte) []byte { b[4] = 2; return b }, "version")
	if err := ring.Shred(ctx, gone); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vectors.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte(katMasterKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVectors(t *testing.T) {
	if *update {
		for _, name := range []string{"keyring.json", "vectors.json", "master.key"} {
			os.Remove(filepath.Join("testdata", name))
		}
		generateVectors(t, "testdata")
		if err := os.Chmod("testdata/keyring.json", 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("current", func(t *testing.T) { checkVectors(t, "testdata") })
	// testdata/v1 holds a keyring in the legacy format (keyfile.V1) and
	// vectors sealed under it: they still open, and the first change
	// rewrites the file in the current format, after which they open too.
	t.Run("v1", func(t *testing.T) {
		ctx := context.Background()
		ring, path := checkVectors(t, "testdata/v1")
		// A legacy file's tombstones are not authenticated, but one
		// naming a live scope is refused.
		v1, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f map[string]any
		if err := json.Unmarshal(v1, &f); err != nil {
			t.Fatal(err)
		}
		f["destroyed"] = append(f["destroyed"].([]any), map[string]any{"ring": f["scopes"].([]any)[0].(map[string]any)["ring"], "destroyed": "2026-01-01T00:00:00Z"})
		bad, _ := json.Marshal(f)
		badPath := filepath.Join(t.TempDir(), "keyring.json")
		if err := os.WriteFile(badPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		m, _ := kms.ParseMasterKey(katMasterKey)
		if _, err := kms.Open(ctx, badPath, kms.Config{Master: m, Logger: nopLogger{}}); !errors.Is(err, kms.ErrWrongMasterKey) {
			t.Fatalf("v1 file with a live scope's tombstone: %v; want ErrWrongMasterKey", err)
		}
		if err := ring.Create(ctx, audit.Actor{Tenant: "migrated"}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"tomkit-keyring-v2"`)) || !bytes.Contains(b, []byte(`"auth"`)) {
			t.Fatalf("keyring not migrated:\n%s", b)
		}
		vs := readVectors(t, "testdata/v1")
		ring, err = kms.Open(ctx, path, kms.Config{Master: m, Logger: nopLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		openVectors(t, ring, vs)
		// The first format did not count wraps: a legacy version counts
		// as used up, and the first seal under it rotates the scope.
		kat := audit.Actor{Tenant: "kat"}
		e, err := envelope.New(ring.KEK(kat), envelope.Config{Logger: nopLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Seal(ctx, nil, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		for _, si := range ring.List() {
			if si.Scope == kat && len(si.Keys) != 3 {
				t.Fatalf("legacy scope not rotated at its first wrap: %+v", si)
			}
		}
	})
}

func readVectors(t *testing.T, dir string) []vector {
	b, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

// checkVectors opens a copy of dir's keyring and checks dir's vectors
// against it. It returns the keyring and the copy's path.
func checkVectors(t *testing.T, dir string) (*kms.Keyring, string) {
	ctx := context.Background()
	// Git does not keep mode 0600; Open refuses anything looser.
	tmp := t.TempDir()
	kr, err := os.ReadFile(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tmp, "keyring.json")
	if err := os.WriteFile(path, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := kms.ParseMasterKey(katMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kms.Open(ctx, path, kms.Config{Master: m, Logger: nopLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	openVectors(t, ring, readVectors(t, dir))
	return ring, path
}

func openVectors(t *testing.T, ring *kms.Keyring, vs []vector) {
	ctx := context.Background()
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			e, err := envelope.New(ring.KEK(audit.Actor{Tenant: v.Tenant, Subject: v.Subject}), envelope.Config{Logger: nopLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			ct, _ := hex.DecodeString(v.Ciphertext)
			pt, _ := hex.DecodeString(v.Plaintext)
			got, err := e.Open(ctx, nil, ct, v.Context)
			if v.Error != "" {
				if want := katErrors[v.Error]; want == nil || !errors.Is(err, want) || got != nil {
					t.Fatalf("Open = %q, %v; want %s", got, err, v.Error)
				}
				return
			}
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open = %q, %v; want %q", got, err, pt)
			}
			if v.Context != nil {
				if _, err := e.Open(ctx, nil, ct, nil); !errors.Is(err, envelope.ErrAuthentication) {
					t.Fatalf("Open without context: %v", err)
				}
			}
		})
	}
}

// TestVectorsReproducible regenerates the vectors from the seed and checks
// that testdata holds exactly them.
func TestVectorsReproducible(t *testing.T) {
	dir := t.TempDir()
	generateVectors(t, dir)
	for _, name := range []string{"keyring.json", "vectors.json", "master.key"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s differs from a regeneration; run go test -run TestVectors -update", name)
		}
	}
}
