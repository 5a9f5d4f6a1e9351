package retention_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/retention"
)

// FuzzEncryptedGet stores arbitrary bytes in place of an encrypted
// object's ciphertext: Get (in memory or streaming) either fails or
// returns exactly the plaintext that was sealed, never anything else.
func FuzzEncryptedGet(f *testing.F) {
	var rec audit.Recorder
	d := &dataPath{ring: testKeyring(f, nopLogger{}), raw: fuzzBackend(f)}
	var err error
	if d.enc, err = retention.NewEncrypted(d.raw, retention.EncryptConfig{Keyring: d.ring, Logger: &rec}); err != nil {
		f.Fatal(err)
	}
	if d.store, err = retention.New(d.enc, retention.Config{Logger: nopLogger{}}); err != nil {
		f.Fatal(err)
	}
	ctx := actorCtx("acme", "alice")
	plain := map[string]string{"small": "a short note", "empty": "", "large": strings.Repeat("L", 70<<10)}
	p, err := d.raw.Partition("acme")
	if err != nil {
		f.Fatal(err)
	}
	var meta retention.Meta
	for k, v := range plain {
		if _, err := d.store.Put(ctx, k, strings.NewReader(v), retention.PutOptions{Class: retention.ClassContent}); err != nil {
			f.Fatal(err)
		}
		rc, m, err := p.Get(context.Background(), k)
		if err != nil {
			f.Fatal(err)
		}
		ct, _ := io.ReadAll(rc)
		rc.Close()
		meta = m
		if k != "large" {
			f.Add(k, ct)
		}
	}
	f.Fuzz(func(t *testing.T, key string, ct []byte) {
		want, ok := plain[key]
		if !ok {
			return
		}
		if err := p.Put(context.Background(), "fuzzed", bytes.NewReader(ct), meta); err != nil {
			t.Fatal(err)
		}
		// The encryption context names the key: only "fuzzed" can open,
		// so any success is a forgery unless the plaintext is the one
		// sealed under that name, which the seeds never are.
		rc, _, err := d.store.Get(ctx, "fuzzed")
		if err != nil {
			return
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Fatalf("forged ciphertext opened to %d bytes (seed %q, %d bytes)", len(got), key, len(want))
		}
	})
}

func fuzzBackend(tb testing.TB) retention.Backend {
	b := memblob.OpenBucket(nil)
	tb.Cleanup(func() { b.Close() })
	return openBlob(tb, b)
}
