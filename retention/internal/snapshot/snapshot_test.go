package snapshot_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/retention/internal/snapshot"
)

func build(t testing.TB, entries map[string]string) []byte {
	var buf bytes.Buffer
	w, err := snapshot.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if v, ok := entries[k]; ok {
			if _, _, err := w.Add(k, []byte(`{"rec":"`+k+`"}`), strings.NewReader(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) (map[string]string, error) {
	r, err := snapshot.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		c, err := io.ReadAll(e.Content)
		if err != nil {
			return nil, err
		}
		out[e.Key] = string(c)
	}
}

func TestRoundTripAndTamper(t *testing.T) {
	in := map[string]string{"a": "", "b": strings.Repeat("x", 3<<20), "c": "hello"}
	b := build(t, in)
	got, err := readAll(b)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if got[k] != v {
			t.Fatalf("%s: %d bytes, want %d", k, len(got[k]), len(v))
		}
	}
	// Every single-byte change and every truncation is detected.
	step := 1
	if testing.Short() {
		step = 97
	}
	small := build(t, map[string]string{"a": "one", "c": "three"})
	for i := 0; i < len(small); i += step {
		bad := bytes.Clone(small)
		bad[i] ^= 0x01
		if _, err := readAll(bad); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("flip at %d: %v", i, err)
		}
		if _, err := readAll(small[:i]); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("truncation at %d: %v", i, err)
		}
	}
	if _, err := readAll(append(bytes.Clone(small), 0)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("trailing data: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(build(f, map[string]string{"a": "one", "b": "two"}))
	f.Add(build(f, map[string]string{}))
	f.Add([]byte("TKSNAP1\nE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := readAll(b); err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
