package envelope_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

// countingClient is Tink's in-process fake KMS client, counting the calls
// that a remote KMS would serve.
type countingClient struct {
	registry.KMSClient
	calls *int
}

func (c countingClient) GetAEAD(uri string) (tink.AEAD, error) {
	a, err := c.KMSClient.GetAEAD(uri)
	return countingAEAD{a, c.calls}, err
}

type countingAEAD struct {
	tink.AEAD
	calls *int
}

func (a countingAEAD) Encrypt(p, ad []byte) ([]byte, error) { *a.calls++; return a.AEAD.Encrypt(p, ad) }
func (a countingAEAD) Decrypt(c, ad []byte) ([]byte, error) { *a.calls++; return a.AEAD.Decrypt(c, ad) }

func remoteKEK(t *testing.T, rec audit.Logger) (*kms.Remote, *int) {
	t.Helper()
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	c, err := fakekms.NewClient("fake-kms://")
	if err != nil {
		t.Fatal(err)
	}
	calls := new(int)
	k, err := kms.NewRemote(context.Background(), countingClient{c, calls}, uri, rec)
	if err != nil {
		t.Fatal(err)
	}
	return k, calls
}

func TestRemoteKEK(t *testing.T) {
	ctx := context.Background()
	var rec audit.Recorder
	k, _ := remoteKEK(t, &rec)
	e, err := envelope.New(k, envelope.Config{Logger: &rec})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := e.Seal(ctx, nil, []byte("byok"), ec)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Open(ctx, nil, ct, ec); err != nil || string(got) != "byok" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if id, _ := envelope.KeyIDOf(ct); id != k.ID() {
		t.Fatalf("key id %v, want %v", id, k.ID())
	}
	if _, err := e.Open(ctx, nil, ct, envelope.Context{"tenant": "t1"}); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("wrong context: %v", err)
	}
	k2, _ := remoteKEK(t, &rec)
	e2, _ := envelope.New(k2, envelope.Config{Logger: &rec})
	if _, err := e2.Open(ctx, nil, ct, ec); !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := kms.NewRemote(ctx, nil, "x", &rec); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := kms.NewRemote(ctx, countingClient{}, "x", nil); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("nil logger: %v", err)
	}
}

// TestDEKCache checks every limit of the cache with an injected clock.
func TestDEKCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name  string
		cache envelope.Cache
		step  func()
		size  int
		// wantWraps is the number of KMS wraps for 10 messages.
		wantWraps int
	}{
		{"max messages", envelope.Cache{MaxMessages: 3, MaxAge: time.Hour, MaxBytes: 1 << 20}, nil, 10, 4},
		{"max age", envelope.Cache{MaxMessages: 100, MaxAge: 25 * time.Second, MaxBytes: 1 << 20}, func() { now = now.Add(10 * time.Second) }, 10, 4},
		{"max bytes", envelope.Cache{MaxMessages: 100, MaxAge: time.Hour, MaxBytes: 35}, nil, 10, 4},
		{"message larger than limit", envelope.Cache{MaxBytes: 5}, nil, 10, 10},
		{"defaults", envelope.Cache{}, nil, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, calls := remoteKEK(t, nopLogger{})
			c := tt.cache
			e, err := envelope.New(k, envelope.Config{Logger: nopLogger{}, Cache: &c, Clock: audit.ClockFunc(clock)})
			if err != nil {
				t.Fatal(err)
			}
			var cts [][]byte
			for i := 0; i < 10; i++ {
				ct, err := e.Seal(ctx, nil, make([]byte, tt.size), ec)
				if err != nil {
					t.Fatal(err)
				}
				cts = append(cts, ct)
				if tt.step != nil {
					tt.step()
				}
			}
			if *calls != tt.wantWraps {
				t.Fatalf("%d KMS wraps, want %d", *calls, tt.wantWraps)
			}
			// Messages sharing a DEK still have distinct payload keys:
			// equal plaintexts give different ciphertexts.
			if string(cts[0][88:]) == string(cts[1][88:]) {
				t.Fatal("two messages share a payload key")
			}
			for _, ct := range cts {
				if _, err := e.Open(ctx, nil, ct, ec); err != nil {
					t.Fatal(err)
				}
			}
			// A cached DEK serves only its own context.
			before := *calls
			if _, err := e.Seal(ctx, nil, nil, envelope.Context{"other": "context"}); err != nil {
				t.Fatal(err)
			}
			if *calls != before+1 {
				t.Fatal("a DEK cached for one context served another")
			}
			if _, err := e.Open(ctx, nil, cts[0], envelope.Context{"tenant": "t1"}); !errors.Is(err, envelope.ErrAuthentication) {
				t.Fatalf("cached unwrap, wrong context: %v", err)
			}
		})
	}
}
