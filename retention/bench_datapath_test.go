package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
)

// handRolled is the per-tenant encryption a product wrote before the
// data path: its own map of envelopes under a mutex, sealing before
// Store.Put and opening after Store.Get.
type handRolled struct {
	ring  *kms.Keyring
	store *retention.Store
	mu    sync.Mutex
	envs  map[audit.Actor]*envelope.Envelope
}

func (h *handRolled) envelope(ctx context.Context) (*envelope.Envelope, error) {
	a := audit.ActorFrom(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if env, ok := h.envs[a]; ok {
		return env, nil
	}
	if err := h.ring.Create(ctx, a); err != nil {
		return nil, err
	}
	env, err := envelope.New(h.ring.KEK(a), envelope.Config{Logger: nopLogger{}})
	if err != nil {
		return nil, err
	}
	h.envs[a] = env
	return env, nil
}

func (h *handRolled) put(ctx context.Context, key string, data []byte) error {
	env, err := h.envelope(ctx)
	if err != nil {
		return err
	}
	ct, err := env.Seal(ctx, nil, data, envelope.Context{"key": key, "tenant": audit.ActorFrom(ctx).Tenant})
	if err != nil {
		return err
	}
	_, err = h.store.Put(ctx, key, bytes.NewReader(ct), retention.PutOptions{Class: retention.ClassContent})
	return err
}

func (h *handRolled) get(ctx context.Context, key string) ([]byte, error) {
	rc, _, err := h.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	ct, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	env, err := h.envelope(ctx)
	if err != nil {
		return nil, err
	}
	return env.Open(ctx, nil, ct, envelope.Context{"key": key, "tenant": audit.ActorFrom(ctx).Tenant})
}

// BenchmarkDataPath compares the data path (a Store over an Encrypted
// backend) with the hand-rolled per-tenant encryption it replaces, for
// 1 KiB objects of eight tenants on the in-memory blob backend, in the
// same run. "plain" is the Store without encryption, for scale.
func BenchmarkDataPath(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1<<10)
	ctxs := make([]context.Context, 8)
	for i := range ctxs {
		ctxs[i] = audit.WithActor(context.Background(), audit.Actor{Tenant: fmt.Sprint("tenant", i), Subject: "svc"})
	}
	newBackend := func(b *testing.B) retention.Backend {
		bk := memblob.OpenBucket(nil)
		b.Cleanup(func() { bk.Close() })
		return openBlob(b, bk)
	}
	type path struct {
		put func(ctx context.Context, key string) error
		get func(ctx context.Context, key string) error
	}
	storePath := func(s *retention.Store) path {
		return path{
			put: func(ctx context.Context, key string) error {
				_, err := s.Put(ctx, key, bytes.NewReader(payload), retention.PutOptions{Class: retention.ClassContent})
				return err
			},
			get: func(ctx context.Context, key string) error {
				rc, _, err := s.Get(ctx, key)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				return err
			},
		}
	}
	paths := []struct {
		name string
		make func(b *testing.B) path
	}{
		{"plain", func(b *testing.B) path {
			s, err := retention.New(newBackend(b), retention.Config{Logger: nopLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			return storePath(s)
		}},
		{"handrolled", func(b *testing.B) path {
			s, err := retention.New(newBackend(b), retention.Config{Logger: nopLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			h := &handRolled{ring: testKeyring(b, nopLogger{}), store: s, envs: map[audit.Actor]*envelope.Envelope{}}
			return path{
				put: func(ctx context.Context, key string) error { return h.put(ctx, key, payload) },
				get: func(ctx context.Context, key string) error { _, err := h.get(ctx, key); return err },
			}
		}},
		{"datapath", func(b *testing.B) path {
			enc, err := retention.NewEncrypted(newBackend(b), retention.EncryptConfig{Keyring: testKeyring(b, nopLogger{}), Logger: nopLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			s, err := retention.New(enc, retention.Config{Logger: nopLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			return storePath(s)
		}},
	}
	for _, op := range []string{"put", "get"} {
		for _, p := range paths {
			b.Run(op+"/"+p.name, func(b *testing.B) {
				pa := p.make(b)
				for i, ctx := range ctxs {
					if err := pa.put(ctx, fmt.Sprint("k", i)); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					ctx, key := ctxs[i%len(ctxs)], fmt.Sprint("k", i%len(ctxs))
					var err error
					if op == "put" {
						err = pa.put(ctx, key)
					} else {
						err = pa.get(ctx, key)
					}
					if err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
