package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

type fixture struct {
	ring  *kms.Keyring
	env   *envelope.Envelope
	rec   *audit.Recorder
	scope audit.Actor
	path  string
	cfg   kms.Config
}

// newFixture returns a keyring file with one tenant scope and an
// Envelope with segment size seg (zero for the default).
func newFixture(t testing.TB, seg int) *fixture {
	t.Helper()
	ctx := context.Background()
	m, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rec: new(audit.Recorder), scope: audit.Actor{Tenant: "t1"}, path: filepath.Join(t.TempDir(), "keyring.json")}
	f.cfg = kms.Config{Master: m, Logger: f.rec}
	if f.ring, err = kms.Create(ctx, f.path, f.cfg); err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Create(ctx, f.scope); err != nil {
		t.Fatal(err)
	}
	if f.env, err = envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, SegmentSize: seg}); err != nil {
		t.Fatal(err)
	}
	return f
}

var ec = envelope.Context{"tenant": "t1", "class": "health", "object": "42"}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 4096} {
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ct, err := f.env.Seal(ctx, []byte("prefix"), pt, ec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(ct, []byte("prefix")) {
				t.Fatal("Seal did not append to dst")
			}
			ct = ct[6:]
			got, err := f.env.Open(ctx, []byte("x"), ct, ec)
			if err != nil || !bytes.Equal(got, append([]byte("x"), pt...)) {
				t.Fatalf("Open = %q, %v", got, err)
			}
			// A stream reads what Seal wrote, and Open reads a stream.
			r, err := f.env.Decrypt(ctx, bytes.NewReader(ct), ec)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Decrypt = %d bytes, %v", len(got), err)
			}
			var buf bytes.Buffer
			w, err := f.env.Encrypt(ctx, &buf, ec)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(pt); i += 5 { // odd-sized writes
				if _, err := w.Write(pt[i:min(i+5, len(pt))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := f.env.Open(ctx, nil, buf.Bytes(), ec); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open(stream) = %d bytes, %v", len(got), err)
			}
			if buf.Len() != len(ct) {
				t.Fatalf("stream is %d bytes, Seal %d", buf.Len(), len(ct))
			}
		})
	}
}

// TestEveryByteFlip flips every bit pattern 0x01 and 0x80 of every byte of
// a small multi-segment ciphertext: each must fail with a typed error and
// no plaintext, through Open and through the stream reader.
func TestEveryByteFlip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	pt := []byte("forty bytes of patient data, 3 segments")
	ct, err := f.env.Seal(ctx, nil, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	typed := []error{envelope.ErrAuthentication, envelope.ErrMalformed, envelope.ErrTruncated,
		envelope.ErrUnsupportedVersion, envelope.ErrTooLarge, kms.ErrUnknownKey, kms.ErrUnwrap}
	isTyped := func(err error) bool {
		for _, e := range typed {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	for i := range ct {
		for _, x := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= x
			got, err := f.env.Open(ctx, nil, bad, ec)
			if err == nil || got != nil || !isTyped(err) {
				t.Fatalf("byte %d ^ %#x: Open = %q, %v", i, x, got, err)
			}
			out, err := decryptAll(ctx, f.env, bad, ec)
			if err == nil || !isTyped(err) || len(out) > 32 {
				t.Fatalf("byte %d ^ %#x: Decrypt = %d bytes, %v", i, x, len(out), err)
			}
			if !bytes.HasPrefix(pt, out) {
				t.Fatalf("byte %d ^ %#x: Decrypt returned bytes that are not plaintext", i, x)
			}
		}
	}
}

// decryptAll reads a stream to its end.
func decryptAll(ctx context.Context, e *envelope.Envelope, ct []byte, ec envelope.Context) ([]byte, error) {
	r, err := e.Decrypt(ctx, bytes.NewReader(ct), ec)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	ct, err := f.env.Seal(ctx, nil, []byte("secret"), ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ec   envelope.Context
	}{
		{"nil", nil},
		{"missing entry", envelope.Context{"tenant": "t1", "class": "health"}},
		{"extra entry", envelope.Context{"tenant": "t1", "class": "health", "object": "42", "x": ""}},
		{"wrong value", envelope.Context{"tenant": "t2", "class": "health", "object": "42"}},
		{"moved boundary", envelope.Context{"tenant": "t1", "class": "health", "object": "4", "2": ""}},
		{"renamed key", envelope.Context{"tenant": "t1", "klass": "health", "object": "42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.env.Open(ctx, nil, ct, tt.ec)
			if !errors.Is(err, envelope.ErrAuthentication) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrAuthentication", got, err)
			}
			if _, err := f.env.Decrypt(ctx, bytes.NewReader(ct), tt.ec); !errors.Is(err, envelope.ErrAuthentication) {
				t.Fatalf("Decrypt: %v; want ErrAuthentication", err)
			}
			if _, err := f.env.Rewrap(ctx, nil, ct, tt.ec); !errors.Is(err, envelope.ErrAuthentication) {
				t.Fatalf("Rewrap: %v; want ErrAuthentication", err)
			}
		})
	}
	if _, err := f.env.Seal(ctx, nil, nil, envelope.Context{"": "x"}); !errors.Is(err, envelope.ErrInvalidContext) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := f.env.Seal(ctx, nil, nil, envelope.Context{"k": "\xff"}); !errors.Is(err, envelope.ErrInvalidContext) {
		t.Fatalf("bad UTF-8: %v", err)
	}
	if _, err := f.env.Seal(ctx, nil, nil, envelope.Context{"k": strings.Repeat("v", 70<<10)}); !errors.Is(err, envelope.ErrInvalidContext) {
		t.Fatalf("huge context: %v", err)
	}
}

// TestHeaderSwap moves the header (all of it, or only the wrapped key)
// of one ciphertext onto another under the same key and context. Two
// fresh-DEK messages differ in their DEK (wrapped key, commitment); two
// messages under one cached DEK differ in their message number (the
// nonce field).
func TestHeaderSwap(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	cached, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, Cache: &envelope.Cache{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*envelope.Envelope{f.env, cached} {
		a, _ := e.Seal(ctx, nil, []byte("message a"), ec)
		b, _ := e.Seal(ctx, nil, []byte("message b"), ec)
		ha, hb := headerLen(t, a), headerLen(t, b)
		swaps := map[string][]byte{
			"header":      append(bytes.Clone(a[:ha]), b[hb:]...),
			"wrapped key": append(append(bytes.Clone(b[:74]), a[74:ha]...), b[hb:]...),
			"nonce":       append(append(append(bytes.Clone(b[:10]), a[10:42]...), b[42:hb]...), b[hb:]...),
			"commitment":  append(append(append(bytes.Clone(b[:42]), a[42:74]...), b[74:hb]...), b[hb:]...),
		}
		for name, ct := range swaps {
			if bytes.Equal(ct, b) {
				continue // the field is the same in both messages
			}
			for _, o := range []*envelope.Envelope{f.env, cached} {
				if got, err := o.Open(ctx, nil, ct, ec); !errors.Is(err, envelope.ErrAuthentication) || got != nil {
					t.Errorf("%s swapped: Open = %q, %v; want ErrAuthentication", name, got, err)
				}
			}
		}
		if e == f.env && (bytes.Equal(a[74:ha], b[74:hb]) || bytes.Equal(a[42:74], b[42:74])) {
			t.Fatal("two fresh-DEK messages share a wrapped key or commitment")
		}
		if e == cached && bytes.Equal(a[10:42], b[10:42]) {
			t.Fatal("two messages under one cached DEK share a message number")
		}
	}
}

func headerLen(t *testing.T, ct []byte) int {
	t.Helper()
	return 88 + (int(ct[86])<<8 | int(ct[87]))
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	ct, err := f.env.Seal(ctx, nil, []byte("thirty-three bytes of plaintext!!"), ec)
	if err != nil {
		t.Fatal(err)
	}
	h := headerLen(t, ct)
	set := func(i int, v ...byte) []byte { b := bytes.Clone(ct); copy(b[i:], v); return b }
	tests := []struct {
		name string
		ct   []byte
		want error
	}{
		{"empty", nil, envelope.ErrTruncated},
		{"magic only", ct[:4], envelope.ErrTruncated},
		{"half header", ct[:50], envelope.ErrTruncated},
		{"header only", ct[:h], envelope.ErrTruncated},
		{"cut in wrapped key", ct[:h-1], envelope.ErrTruncated},
		{"cut at segment boundary", ct[:h+32], envelope.ErrTruncated},
		{"cut at second boundary", ct[:h+64], envelope.ErrTruncated},
		{"cut inside last segment", ct[:len(ct)-1], envelope.ErrAuthentication},
		{"trailing byte", append(bytes.Clone(ct), 0), envelope.ErrAuthentication},
		{"garbage", []byte("this is not a tomkit ciphertext at all, no"), envelope.ErrMalformed},
		{"bad magic", set(0, 'x'), envelope.ErrMalformed},
		{"version 2", set(4, 2), envelope.ErrUnsupportedVersion},
		{"version 0", set(4, 0), envelope.ErrUnsupportedVersion},
		{"unknown suite", set(5, 9), envelope.ErrMalformed},
		{"segment size 8", set(6, 0, 0, 0, 8), envelope.ErrMalformed},
		{"segment size 1 GiB", set(6, 0x40, 0, 0, 0), envelope.ErrTooLarge},
		{"wrapped key 4 KiB", set(86, 0x10, 0), envelope.ErrTooLarge},
		{"wrapped key empty", set(86, 0, 0), envelope.ErrMalformed},
		{"unknown key id", set(82, 0xde, 0xad, 0xbe, 0xef), kms.ErrUnknownKey},
		{"unknown ring", set(74, 1, 2, 3, 4, 5, 6, 7, 8), kms.ErrUnknownKey},
		{"duplicated segment", append(append(bytes.Clone(ct[:h+32]), ct[h:h+32]...), ct[h+32:]...), envelope.ErrAuthentication},
		{"reordered segments", append(append(append(bytes.Clone(ct[:h]), ct[h+32:h+64]...), ct[h:h+32]...), ct[h+64:]...), envelope.ErrAuthentication},
		{"dropped segment", append(bytes.Clone(ct[:h]), ct[h+32:]...), envelope.ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.env.Open(ctx, nil, tt.ct, ec)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open = %q, %v; want %v", got, err, tt.want)
			}
			out, err := decryptAll(ctx, f.env, tt.ct, ec)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decrypt: %v; want %v", err, tt.want)
			}
			if len(out) > 0 && !bytes.HasPrefix([]byte("thirty-three bytes of plaintext!!"), out) {
				t.Errorf("Decrypt returned non-plaintext %q", out)
			}
		})
	}
	// Every failure above was audited as crypto.decrypt.
	n := 0
	for _, e := range f.rec.Events() {
		if e.Action == "crypto.decrypt" && e.Outcome == audit.OutcomeDeny {
			n++
		}
	}
	if n < 2*len(tests) {
		t.Errorf("%d crypto.decrypt events, want >= %d", n, 2*len(tests))
	}
}

// TestStreamTruncationAtEveryBoundary cuts a stream at every segment
// boundary, and at every byte: the reader never reaches io.EOF.
func TestStreamTruncationAtEveryBoundary(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	pt := bytes.Repeat([]byte("0123456789abcdef"), 10) // 10 full segments, empty final
	var buf bytes.Buffer
	w, _ := f.env.Encrypt(ctx, &buf, ec)
	w.Write(pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ct := buf.Bytes()
	h := headerLen(t, ct)
	if got := (len(ct) - h) / 32; got != 10 {
		t.Fatalf("%d full segments", got)
	}
	for cut := 0; cut < len(ct); cut++ {
		out, err := decryptAll(ctx, f.env, ct[:cut], ec)
		if err == nil {
			t.Fatalf("cut at %d: no error, %d bytes", cut, len(out))
		}
		if cut >= h && (cut-h)%32 == 0 && !errors.Is(err, envelope.ErrTruncated) {
			t.Fatalf("cut at boundary %d: %v; want ErrTruncated", cut, err)
		}
		if !bytes.HasPrefix(pt, out) || len(out) > max(0, (cut-h)/32*16) {
			t.Fatalf("cut at %d: returned %d bytes", cut, len(out))
		}
	}
	// Writing to a closed stream fails.
	if _, err := w.Write([]byte("x")); !errors.Is(err, envelope.ErrStreamClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestReaderNeverReleasesUnauthenticated corrupts the last byte of segment
// k and checks that exactly the k segments before it are returned.
func TestReaderNeverReleasesUnauthenticated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	pt := bytes.Repeat([]byte("A"), 16*5+3)
	ct, _ := f.env.Seal(ctx, nil, pt, ec)
	h := headerLen(t, ct)
	for k := 0; k < 6; k++ {
		bad := bytes.Clone(ct)
		end := min(h+32*(k+1), len(bad))
		bad[end-1] ^= 1
		out, err := decryptAll(ctx, f.env, bad, ec)
		if !errors.Is(err, envelope.ErrAuthentication) || len(out) != 16*k {
			t.Fatalf("segment %d corrupted: %d bytes, %v", k, len(out), err)
		}
	}
}

func TestRotateRewrapMinVersion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	v1, _ := f.env.Seal(ctx, nil, []byte("old"), ec)
	ver, err := f.ring.Rotate(ctx, f.scope)
	if err != nil || ver != 2 {
		t.Fatalf("Rotate = %d, %v", ver, err)
	}
	v2, _ := f.env.Seal(ctx, nil, []byte("new"), ec)
	id1, _ := envelope.KeyIDOf(v1)
	id2, _ := envelope.KeyIDOf(v2)
	if id1 == id2 || id1.Ring != id2.Ring {
		t.Fatalf("key ids %v, %v", id1, id2)
	}
	for _, ct := range [][]byte{v1, v2} {
		if _, err := f.env.Open(ctx, nil, ct, ec); err != nil {
			t.Fatalf("after rotate: %v", err)
		}
	}
	re, err := f.env.Rewrap(ctx, nil, v1, ec)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := envelope.KeyIDOf(re); id != id2 {
		t.Fatalf("rewrapped under %v, want %v", id, id2)
	}
	if !bytes.Equal(re[headerLen(t, re):], v1[headerLen(t, v1):]) {
		t.Fatal("rewrap changed the payload")
	}
	// Rewrap of a header prefix, for objects too large for memory.
	pre, err := f.env.Rewrap(ctx, nil, v1[:headerLen(t, v1)], ec)
	if err != nil || len(pre) != headerLen(t, re) {
		t.Fatalf("rewrap prefix: %d bytes, %v", len(pre), err)
	}
	if got, err := f.env.Open(ctx, nil, append(pre, v1[headerLen(t, v1):]...), ec); err != nil || string(got) != "old" {
		t.Fatalf("open prefix-rewrapped: %q, %v", got, err)
	}
	if err := f.ring.SetMinVersion(ctx, f.scope, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Open(ctx, nil, v1, ec); !errors.Is(err, kms.ErrKeyRetired) {
		t.Fatalf("retired: %v; want ErrKeyRetired", err)
	}
	if got, err := f.env.Open(ctx, nil, re, ec); err != nil || string(got) != "old" {
		t.Fatalf("rewrapped: %q, %v", got, err)
	}
	if err := f.ring.SetMinVersion(ctx, f.scope, 3); !errors.Is(err, kms.ErrInvalidVersion) {
		t.Fatalf("min version 3: %v", err)
	}
	// Lowering it again brings v1 back, and the state survives a reload.
	if err := f.ring.SetMinVersion(ctx, f.scope, 1); err != nil {
		t.Fatal(err)
	}
	r2, err := kms.Open(ctx, f.path, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := envelope.New(r2.KEK(f.scope), envelope.Config{Logger: f.rec})
	for _, ct := range [][]byte{v1, v2, re} {
		if _, err := e2.Open(ctx, nil, ct, ec); err != nil {
			t.Fatalf("after reload: %v", err)
		}
	}
	var rewraps int
	for _, e := range f.rec.Events() {
		if e.Action == "crypto.rewrap" && e.Outcome == audit.OutcomeAllow {
			rewraps++
		}
	}
	if rewraps != 2 {
		t.Fatalf("%d crypto.rewrap events, want 2", rewraps)
	}
}

func TestShred(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	subject := audit.Actor{Tenant: "t1", Subject: "patient-7"}
	if err := f.ring.Create(ctx, subject); err != nil {
		t.Fatal(err)
	}
	es, _ := envelope.New(f.ring.KEK(subject), envelope.Config{Logger: f.rec, SegmentSize: 16})
	backup, _ := es.Seal(ctx, nil, []byte("subject record, kept in a backup"), ec)
	other, _ := f.env.Seal(ctx, nil, []byte("tenant record"), ec)
	if err := f.ring.Shred(ctx, subject); err != nil {
		t.Fatal(err)
	}
	if got, err := es.Open(ctx, nil, backup, ec); !errors.Is(err, envelope.ErrKeyDestroyed) || got != nil {
		t.Fatalf("after shred: %q, %v; want ErrKeyDestroyed", got, err)
	}
	if _, err := es.Decrypt(ctx, bytes.NewReader(backup), ec); !errors.Is(err, envelope.ErrKeyDestroyed) {
		t.Fatalf("stream after shred: %v", err)
	}
	if _, err := es.Seal(ctx, nil, []byte("x"), ec); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("seal after shred: %v", err)
	}
	// The tenant's own key is untouched.
	if _, err := f.env.Open(ctx, nil, other, ec); err != nil {
		t.Fatal(err)
	}
	// From the file (a restore after a crash), through the tenant's KEK
	// too, the backup stays unrecoverable; the subject's name is gone.
	r2, err := kms.Open(ctx, f.path, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []audit.Actor{subject, f.scope} {
		e2, _ := envelope.New(r2.KEK(sc), envelope.Config{Logger: f.rec})
		if _, err := e2.Open(ctx, nil, backup, ec); !errors.Is(err, envelope.ErrKeyDestroyed) {
			t.Fatalf("after reload via %v: %v; want ErrKeyDestroyed", sc, err)
		}
	}
	for _, si := range r2.List() {
		if si.Scope.Subject == "patient-7" {
			t.Fatal("shredded scope still listed by name")
		}
	}
	// Re-creating the subject gives a new key; the old data stays lost.
	if err := r2.Create(ctx, subject); err != nil {
		t.Fatal(err)
	}
	e3, _ := envelope.New(r2.KEK(subject), envelope.Config{Logger: f.rec})
	if _, err := e3.Open(ctx, nil, backup, ec); !errors.Is(err, envelope.ErrKeyDestroyed) {
		t.Fatalf("after re-create: %v", err)
	}
	var shreds, unwrapFails int
	for _, e := range f.rec.Events() {
		switch e.Action {
		case "crypto.key_shred":
			shreds++
		case "crypto.unwrap":
			unwrapFails++
		}
	}
	if shreds != 1 || unwrapFails < 4 {
		t.Fatalf("events: %d shred, %d unwrap failures", shreds, unwrapFails)
	}
}

// TestTenantIsolation checks that one tenant's envelope cannot open
// another's ciphertexts, even with the same context.
func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	t2 := audit.Actor{Tenant: "t2"}
	if err := f.ring.Create(ctx, t2); err != nil {
		t.Fatal(err)
	}
	e2, _ := envelope.New(f.ring.KEK(t2), envelope.Config{Logger: f.rec})
	ct, _ := f.env.Seal(ctx, nil, []byte("t1 data"), ec)
	if _, err := e2.Open(ctx, nil, ct, ec); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("t2 opened t1's data: %v", err)
	}
}

func TestNew(t *testing.T) {
	f := newFixture(t, 0)
	if _, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("no logger: %v", err)
	}
	// The DEK cache is allowed with a local KEK.
	if _, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, Cache: &envelope.Cache{}}); err != nil {
		t.Fatalf("cache with local KEK: %v", err)
	}
	for _, seg := range []int{-1, 8, 5 << 20} {
		if _, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, SegmentSize: seg}); err == nil {
			t.Fatalf("segment size %d accepted", seg)
		}
	}
}

// TestConcurrent seals and opens from many goroutines while the key
// rotates (run with -race).
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			var dst []byte
			for i := 0; i < 50; i++ {
				ct, err := f.env.Seal(ctx, nil, []byte("concurrent"), ec)
				if err != nil {
					done <- err
					return
				}
				if dst, err = f.env.Open(ctx, dst[:0], ct, ec); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 3; i++ {
		if _, err := f.ring.Rotate(ctx, f.scope); err != nil {
			t.Fatal(err)
		}
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSealAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	ctx := context.Background()
	f := newFixture(t, 0)
	pt := make([]byte, 1024)
	dst := make([]byte, 0, 4096)
	ct, _ := f.env.Seal(ctx, nil, pt, ec)
	seal := testing.AllocsPerRun(200, func() { dst, _ = f.env.Seal(ctx, dst[:0], pt, ec) })
	open := testing.AllocsPerRun(200, func() { dst, _ = f.env.Open(ctx, dst[:0], ct, ec) })
	// Two allocations are the AES key schedule and GCM state of the
	// message's fresh key; crypto/cipher has no way to re-key in place.
	if seal > 2 || open > 2 {
		t.Fatalf("allocs: Seal %v, Open %v; want <= 2", seal, open)
	}
	// A cache hit allocates nothing.
	cached, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, Cache: &envelope.Cache{}})
	if err != nil {
		t.Fatal(err)
	}
	cct, _ := cached.Seal(ctx, nil, pt, ec)
	cached.Open(ctx, dst[:0], cct, ec)
	seal = testing.AllocsPerRun(200, func() { dst, _ = cached.Seal(ctx, dst[:0], pt, ec) })
	open = testing.AllocsPerRun(200, func() { dst, _ = cached.Open(ctx, dst[:0], cct, ec) })
	if seal != 0 || open != 0 {
		t.Fatalf("allocs with a cached DEK: Seal %v, Open %v; want 0", seal, open)
	}
}

// TestStreamFailureAudited checks that a failure found while reading a
// stream is audited with the caller's identity.
func TestStreamFailureAudited(t *testing.T) {
	f := newFixture(t, 16)
	ctx := audit.WithRequestID(audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "t1"}), "req-1")
	ct, _ := f.env.Seal(ctx, nil, bytes.Repeat([]byte("x"), 40), ec)
	ct[len(ct)-1] ^= 1
	if _, err := decryptAll(ctx, f.env, ct, ec); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatal(err)
	}
	evs := f.rec.Events()
	last := evs[len(evs)-1]
	if last.Action != "crypto.decrypt" || last.Outcome != audit.OutcomeDeny || last.Actor.Subject != "alice" || last.RequestID != "req-1" {
		t.Fatalf("last event %+v", last)
	}
}

// TestOpenNoPlaintextLeftInDst checks that a failed Open leaves no
// plaintext in the spare capacity of the caller's buffer either.
func TestOpenNoPlaintextLeftInDst(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	pt := bytes.Repeat([]byte("S"), 16*4+5)
	ct, _ := f.env.Seal(ctx, nil, pt, ec)
	ct[len(ct)-1] ^= 1
	for _, c := range []int{0, 8, 20, 40, 100} {
		dst := make([]byte, 0, c)
		if _, err := f.env.Open(ctx, dst, ct, ec); err == nil {
			t.Fatal("tampered ciphertext opened")
		}
		if bytes.Contains(dst[:cap(dst)], []byte("S")) {
			t.Fatalf("cap %d: plaintext left in the caller's buffer", c)
		}
	}
}

// TestShortInput checks every length below the header size: a prefix of
// a real header is ErrTruncated, and the same bytes with a wrong magic
// (any byte of it changed), version or suite are not tomkit's format.
func TestShortInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	ct, err := f.env.Seal(ctx, nil, []byte("x"), ec)
	if err != nil {
		t.Fatal(err)
	}
	h := headerLen(t, ct)
	for n := 1; n < h; n++ {
		cases := []struct {
			name string
			b    []byte
			want error
		}{{"right magic", bytes.Clone(ct[:n]), envelope.ErrTruncated}}
		for i := 0; i < 4 && i < n; i++ {
			b := bytes.Clone(ct[:n])
			b[i] ^= 0x20
			cases = append(cases, struct {
				name string
				b    []byte
				want error
			}{fmt.Sprintf("magic byte %d", i), b, envelope.ErrMalformed})
		}
		if n > 4 {
			b := bytes.Clone(ct[:n])
			b[4] = 2
			cases = append(cases, struct {
				name string
				b    []byte
				want error
			}{"version 2", b, envelope.ErrUnsupportedVersion})
		}
		if n > 5 {
			b := bytes.Clone(ct[:n])
			b[5] = 9
			cases = append(cases, struct {
				name string
				b    []byte
				want error
			}{"suite 9", b, envelope.ErrMalformed})
		}
		for _, c := range cases {
			if got, err := f.env.Open(ctx, nil, c.b, ec); !errors.Is(err, c.want) || got != nil {
				t.Errorf("len %d, %s: Open = %q, %v; want %v", n, c.name, got, err, c.want)
			}
			if _, err := decryptAll(ctx, f.env, c.b, ec); !errors.Is(err, c.want) {
				t.Errorf("len %d, %s: Decrypt: %v; want %v", n, c.name, err, c.want)
			}
			if _, err := envelope.KeyIDOf(c.b); !errors.Is(err, c.want) {
				t.Errorf("len %d, %s: KeyIDOf: %v; want %v", n, c.name, err, c.want)
			}
		}
	}
	for _, s := range []string{"abcd", "abcde", "TMKE", "tmkE\x01"} {
		if _, err := f.env.Open(ctx, nil, []byte(s), ec); !errors.Is(err, envelope.ErrMalformed) {
			t.Errorf("Open(%q): %v; want ErrMalformed", s, err)
		}
	}
}

// TestCacheMessageNumbers seals from many goroutines under one cached
// DEK (a local KEK): every message has its own message number, so no
// nonce repeats under the key, and the DEK is replaced at MaxMessages.
func TestCacheMessageNumbers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 16)
	e, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, SegmentSize: 16, Cache: &envelope.Cache{MaxMessages: 100}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 100
	cts := make(chan []byte, workers*each)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				ct, err := e.Seal(ctx, nil, []byte("same plaintext, two segments!"), ec)
				if err != nil {
					t.Error(err)
					return
				}
				cts <- ct
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	close(cts)
	seen := map[string]bool{}
	perKey := map[string]int{}
	for ct := range cts {
		h := headerLen(t, ct)
		key := string(ct[74:h]) // the wrapped DEK
		n := key + string(ct[10:42])
		if seen[n] {
			t.Fatalf("message number %x repeated under one DEK", ct[10:17])
		}
		seen[n] = true
		perKey[key]++
		if ct[5] != 2 || !bytes.Equal(ct[17:42], make([]byte, 25)) {
			t.Fatalf("header %x: want suite 2 and a 7-byte message number", ct[:42])
		}
		if got, err := f.env.Open(ctx, nil, ct, ec); err != nil || string(got) != "same plaintext, two segments!" {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	// Goroutines that miss the cache at once each make a DEK, so there
	// may be a few more than the minimum.
	if len(perKey) < workers*each/100 || len(perKey) > workers*workers*each/100 {
		t.Errorf("%d DEKs for %d messages at 100 per DEK", len(perKey), workers*each)
	}
	for _, n := range perKey {
		if n > 100 {
			t.Errorf("a DEK sealed %d messages; MaxMessages 100", n)
		}
	}
}

// TestCacheRevoked checks that a shred or a retirement stops the DEKs the
// cache holds at once, for sealing and for opening, not after MaxAge.
func TestCacheRevoked(t *testing.T) {
	ctx := context.Background()
	for _, revoke := range []string{"shred", "retire"} {
		t.Run(revoke, func(t *testing.T) {
			f := newFixture(t, 0)
			e, err := envelope.New(f.ring.KEK(f.scope), envelope.Config{Logger: f.rec, Cache: &envelope.Cache{}})
			if err != nil {
				t.Fatal(err)
			}
			ct, err := e.Seal(ctx, nil, []byte("before"), ec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Open(ctx, nil, ct, ec); err != nil { // cached for opening
				t.Fatal(err)
			}
			want := kms.ErrKeyDestroyed
			if revoke == "shred" {
				err = f.ring.Shred(ctx, f.scope)
			} else {
				want = kms.ErrKeyRetired
				if _, err = f.ring.Rotate(ctx, f.scope); err == nil {
					err = f.ring.SetMinVersion(ctx, f.scope, 2)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Open(ctx, nil, ct, ec); !errors.Is(err, want) {
				t.Fatalf("Open of a cached DEK after %s: %v; want %v", revoke, err, want)
			}
			ct2, err := e.Seal(ctx, nil, []byte("after"), ec)
			if revoke == "shred" {
				if !errors.Is(err, kms.ErrUnknownKey) && !errors.Is(err, kms.ErrKeyDestroyed) {
					t.Fatalf("Seal after shred: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Opens only if sealed under the new version, not the cached DEK.
			if _, err := f.env.Open(ctx, nil, ct2, ec); err != nil {
				t.Fatalf("Open of a message sealed after retirement: %v", err)
			}
		})
	}
}
