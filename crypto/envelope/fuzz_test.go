package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

func fuzzEnvelope(f *testing.F) *envelope.Envelope {
	ctx := context.Background()
	m, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	r, err := kms.Create(ctx, "", kms.Config{Master: m, Logger: nopLogger{}})
	if err != nil {
		f.Fatal(err)
	}
	sc := audit.Actor{Tenant: "fuzz"}
	if err := r.Create(ctx, sc); err != nil {
		f.Fatal(err)
	}
	e, err := envelope.New(r.KEK(sc), envelope.Config{Logger: nopLogger{}, SegmentSize: 16})
	if err != nil {
		f.Fatal(err)
	}
	for _, pt := range []string{"", "x", "exactly sixteen!", "more than one segment of plaintext"} {
		ct, err := e.Seal(ctx, nil, []byte(pt), ec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
		f.Add(ct[:len(ct)/2])
	}
	f.Add([]byte("tmke"))
	f.Add([]byte("tmkx"))
	f.Add([]byte("abcde"))
	f.Add([]byte{})
	return e
}

var typedErrors = []error{envelope.ErrAuthentication, envelope.ErrMalformed, envelope.ErrTruncated,
	envelope.ErrUnsupportedVersion, envelope.ErrTooLarge, kms.ErrUnknownKey, kms.ErrKeyDestroyed}

func isTyped(err error) bool {
	for _, e := range typedErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzOpen checks that Open never panics, fails only with typed errors
// and no plaintext, and agrees with the stream reader.
func FuzzOpen(f *testing.F) {
	e := fuzzEnvelope(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, ct []byte) {
		got, err := e.Open(ctx, nil, ct, ec)
		if err != nil {
			if got != nil || !isTyped(err) {
				t.Fatalf("Open = %q, %v", got, err)
			}
		}
		r, derr := e.Decrypt(ctx, bytes.NewReader(ct), ec)
		var sgot []byte
		if derr == nil {
			sgot, derr = io.ReadAll(r)
		}
		if (err == nil) != (derr == nil) {
			t.Fatalf("Open: %v, Decrypt: %v", err, derr)
		}
		if derr != nil && !isTyped(derr) {
			t.Fatalf("Decrypt: untyped error %v", derr)
		}
		if err == nil && !bytes.Equal(got, sgot) {
			t.Fatalf("Open and Decrypt disagree")
		}
	})
}

// FuzzDecrypt feeds the stream reader arbitrary bytes in arbitrary read
// sizes: it must not panic, and whatever it returns before an error must
// be a prefix of what Open accepts.
func FuzzDecrypt(f *testing.F) {
	e := fuzzEnvelope(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, ct []byte) {
		r, err := e.Decrypt(ctx, &oneByteReader{ct}, ec)
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("Decrypt: %v", err)
			}
			return
		}
		got, err := io.ReadAll(r)
		if err != nil && !isTyped(err) {
			t.Fatalf("Read: %v", err)
		}
		if err != nil && len(got)%16 != 0 {
			t.Fatalf("released %d bytes, not whole segments", len(got))
		}
	})
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}
