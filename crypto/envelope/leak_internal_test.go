package envelope

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
)

type discard struct{}

func (discard) Log(context.Context, audit.Event) error { return nil }

// TestFailureLeavesNoPlaintext cuts multi-segment ciphertexts at every
// byte and flips every byte of them, opens each with destination buffers
// of several capacities and decrypts each as a stream, and checks after
// every failure that no buffer written by the package holds a plaintext
// byte: the caller's array up to its capacity, every array Open
// allocated, and the stream reader's segment buffer. Plaintext bytes are
// never zero, and the caller's and allocated buffers start zeroed, so the
// check there is that they are zero again.
func TestFailureLeavesNoPlaintext(t *testing.T) {
	ctx := context.Background()
	m, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	r, err := kms.Create(ctx, "", kms.Config{Master: m, Logger: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(r.KEK(sc), Config{Logger: discard{}, SegmentSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := New(r.KEK(sc), Config{Logger: discard{}, SegmentSize: 16, Cache: &Cache{}})
	if err != nil {
		t.Fatal(err)
	}
	e := fresh
	var allocated [][]byte
	allocHook = func(n, c int) []byte {
		b := make([]byte, n, c)
		allocated = append(allocated, b)
		return b
	}
	defer func() { allocHook = nil }()
	ec := Context{"k": "v"}
	zero := func(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }
	check := func(t *testing.T, what string, ct []byte) {
		t.Helper()
		for _, c := range []int{0, 1, 15, 16, 17, 31, 32, 47, 48, 49, 64, 100, 512} {
			allocated = allocated[:0]
			dst := make([]byte, 0, c)
			if out, err := e.Open(ctx, dst, ct, ec); err == nil {
				t.Fatalf("%s: opened: %q", what, out)
			}
			if !zero(dst[:cap(dst)]) {
				t.Fatalf("%s, cap %d: plaintext left in the caller's array: %x", what, c, dst[:cap(dst)])
			}
			for _, a := range allocated {
				if !zero(a[:cap(a)]) {
					t.Fatalf("%s, cap %d: plaintext left in an array Open allocated: %x", what, c, a[:cap(a)])
				}
			}
		}
		rd, err := e.Decrypt(ctx, bytes.NewReader(ct), ec)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, rd); err == nil {
			t.Fatalf("%s: stream decrypted", what)
		}
		// The reader's buffer also held ciphertext, so look for plaintext:
		// four plaintext bytes in a row.
		if buf := rd.(*reader).buf; bytes.Contains(buf, []byte{0xa5, 0xa5, 0xa5, 0xa5}) {
			t.Fatalf("%s: plaintext left in the reader's buffer: %x", what, buf)
		}
	}
	for _, n := range []int{17, 32, 48, 53, -53} {
		e = fresh
		if n < 0 {
			n, e = -n, cached // a cached DEK, message number > 0
			if _, err := e.Seal(ctx, nil, []byte("first"), ec); err != nil {
				t.Fatal(err)
			}
		}
		pt := bytes.Repeat([]byte{0xa5}, n)
		ct, err := e.Seal(ctx, nil, pt, ec)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(n, e == cached), func(t *testing.T) {
			for i := 0; i < len(ct); i++ {
				check(t, fmt.Sprintf("cut at %d", i), ct[:i])
				b := bytes.Clone(ct)
				b[i] ^= 0x01
				check(t, fmt.Sprintf("flip byte %d", i), b)
			}
			check(t, "trailing byte", append(bytes.Clone(ct), 0))
			check(t, "trailing segment", append(bytes.Clone(ct), ct[len(ct)-32:]...))
		})
	}
}
