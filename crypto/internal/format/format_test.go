package format_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tomkit/tomkit/crypto/internal/format"
)

func sample() format.Header {
	h := format.Header{Version: 1, Suite: 1, SegmentSize: 65536, Key: 0xdeadbeef, Wrapped: bytes.Repeat([]byte{7}, 60)}
	h.Nonce[0], h.Commitment[31], h.Ring[3] = 1, 2, 3
	return h
}

func TestRoundTrip(t *testing.T) {
	h := sample()
	b := h.Append([]byte("x"))[1:]
	if len(b) != h.Len() || len(b) != 148 {
		t.Fatalf("len %d", len(b))
	}
	got, n, err := format.Parse(append(bytes.Clone(b), "payload"...))
	if err != nil || n != len(b) || !bytes.Equal(got.Append(nil), b) {
		t.Fatalf("Parse = %+v, %d, %v", got, n, err)
	}
	for i := 0; i < len(b); i++ {
		if _, _, err := format.Parse(b[:i]); !errors.Is(err, format.ErrShort) && !errors.Is(err, format.ErrMagic) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
}

func TestContextEncoding(t *testing.T) {
	tests := []struct {
		ctx  map[string]string
		want string
	}{
		{nil, "\x00\x00\x00\x00"},
		{map[string]string{"b": "2", "a": "1"}, "\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x011\x00\x00\x00\x01b\x00\x00\x00\x012"},
		{map[string]string{"k": ""}, "\x00\x00\x00\x01\x00\x00\x00\x01k\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		got, err := format.AppendContext(nil, tt.ctx)
		if err != nil || string(got) != tt.want {
			t.Errorf("AppendContext(%v) = %q, %v; want %q", tt.ctx, got, err, tt.want)
		}
	}
	// Length prefixes keep entries apart: these two must differ.
	a, _ := format.AppendContext(nil, map[string]string{"ab": "c"})
	b, _ := format.AppendContext(nil, map[string]string{"a": "bc"})
	if bytes.Equal(a, b) {
		t.Fatal("ambiguous encoding")
	}
}

func TestSegmentNonce(t *testing.T) {
	var n [12]byte
	format.SegmentNonce(&n, 0x01020304, true)
	if want := [12]byte{0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 1}; n != want {
		t.Fatalf("nonce %x", n)
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// encodes back to the same bytes.
func FuzzParse(f *testing.F) {
	h := sample()
	f.Add(h.Append(nil))
	f.Add([]byte("tmke\x01\x01"))
	f.Add([]byte("abcd"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := format.Parse(b)
		if m := min(len(b), 4); string(b[:m]) != format.Magic[:m] && !errors.Is(err, format.ErrMagic) {
			t.Fatalf("Parse(%x): %v; want ErrMagic", b, err)
		}
		if err != nil {
			return
		}
		if n > len(b) || n != h.Len() || !bytes.Equal(h.Append(nil), b[:n]) {
			t.Fatalf("Parse(%x) = %+v, %d: does not re-encode", b, h, n)
		}
	})
}

// TestParseShort checks every length below the header size, with the
// right magic and with a wrong one.
func TestParseShort(t *testing.T) {
	h := sample()
	b := h.Append(nil)
	for n := 0; n < len(b); n++ {
		if _, _, err := format.Parse(b[:n]); !errors.Is(err, format.ErrShort) {
			t.Errorf("len %d, right magic: %v; want ErrShort", n, err)
		}
		if n == 0 {
			continue
		}
		w := bytes.Clone(b[:n])
		w[min(n, 4)-1] ^= 0x20
		if _, _, err := format.Parse(w); !errors.Is(err, format.ErrMagic) {
			t.Errorf("len %d, wrong magic: %v; want ErrMagic", n, err)
		}
	}
}
