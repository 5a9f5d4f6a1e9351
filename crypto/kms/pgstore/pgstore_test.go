package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/crypto/kms/internal/keyfile"
	"github.com/tomkit/tomkit/crypto/kms/pgstore"
	"github.com/tomkit/tomkit/internal/testpg"
)

type nopLogger struct{}

func (nopLogger) Log(context.Context, audit.Event) error { return nil }

// cluster is one schema shared by several instances, each with its own
// pool, as separate processes would have.
type cluster struct {
	t      testing.TB
	dsn    string
	master tink.AEAD
	opts   []pgstore.Option
	cfg    kms.Config
}

func newCluster(t testing.TB, opts ...pgstore.Option) *cluster {
	t.Helper()
	m, err := kms.ParseMasterKey(kms.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, dsn: testpg.Schema(t), master: m, opts: opts, cfg: kms.Config{Master: m, Logger: nopLogger{}}}
}

func (c *cluster) pool() *pgxpool.Pool {
	c.t.Helper()
	p, err := pgxpool.New(context.Background(), c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(p.Close)
	return p
}

// open starts one instance.
func (c *cluster) open() *kms.Keyring {
	c.t.Helper()
	r, err := pgstore.Open(context.Background(), c.pool(), c.cfg, c.opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { r.Close() })
	return r
}

var (
	scope = audit.Actor{Tenant: "t1"}
	ec    = envelope.Context{"tenant": "t1"}
)

func cachedEnvelope(t testing.TB, r *kms.Keyring, s audit.Actor) *envelope.Envelope {
	t.Helper()
	e, err := envelope.New(r.KEK(s), envelope.Config{Logger: nopLogger{}, Cache: &envelope.Cache{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRevokeReachesEveryInstance checks the rule: once Shred or
// SetMinVersion has returned on one instance, the others refuse to seal
// under or open with the keys it took out of use, cached DEKs included.
func TestRevokeReachesEveryInstance(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, b, d := c.open(), c.open(), c.open()
	if err := a.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	envs := map[string]*envelope.Envelope{"b": cachedEnvelope(t, b, scope), "d": cachedEnvelope(t, d, scope)}
	cts := map[string][]byte{}
	for name, e := range envs {
		if err := b.Create(ctx, scope); err != nil { // no-op: exists
			t.Fatal(err)
		}
		ct, err := e.Seal(ctx, nil, []byte("hello"), ec)
		if err != nil {
			t.Fatalf("%s: seal: %v", name, err)
		}
		if _, err := e.Open(ctx, nil, ct, ec); err != nil {
			t.Fatalf("%s: open: %v", name, err)
		}
		cts[name] = ct
	}

	// Retire version 1 on a: b and d refuse it at once.
	if _, err := a.Rotate(ctx, scope); err != nil {
		t.Fatal(err)
	}
	if err := a.SetMinVersion(ctx, scope, 2); err != nil {
		t.Fatal(err)
	}
	for name, e := range envs {
		if _, err := e.Open(ctx, nil, cts[name], ec); !errors.Is(err, kms.ErrKeyRetired) {
			t.Fatalf("%s: open after SetMinVersion returned: %v; want ErrKeyRetired", name, err)
		}
		ct, err := e.Seal(ctx, nil, []byte("v2"), ec)
		if err != nil {
			t.Fatalf("%s: seal after SetMinVersion: %v", name, err)
		}
		if _, err := e.Open(ctx, nil, ct, ec); err != nil {
			t.Fatal(err)
		}
		cts[name] = ct
	}

	// Shred on a: b and d refuse to seal and to open at once.
	if err := a.Shred(ctx, scope); err != nil {
		t.Fatal(err)
	}
	for name, e := range envs {
		if _, err := e.Seal(ctx, nil, []byte("after"), ec); err == nil {
			t.Fatalf("%s: sealed after Shred returned", name)
		}
		if _, err := e.Open(ctx, nil, cts[name], ec); !errors.Is(err, kms.ErrKeyDestroyed) {
			t.Fatalf("%s: open after Shred returned: %v; want ErrKeyDestroyed", name, err)
		}
	}
}

// TestLostListenerRefuses cuts one instance's notification connection:
// it refuses key use at once, a shred elsewhere does not wait for it, and
// it uses keys again only once it has caught up.
func TestLostListenerRefuses(t *testing.T) {
	ctx := context.Background()
	// A lease far longer than the test: refusal and a prompt Shred come
	// from the lost connection, not from the lease running out.
	c := newCluster(t, pgstore.WithLease(time.Hour))
	a, b := c.open(), c.open()
	other := audit.Actor{Tenant: "t2"}
	for _, s := range []audit.Actor{scope, other} {
		if err := a.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := b.Create(ctx, s); err != nil { // loads it
			t.Fatal(err)
		}
	}
	eb, eo := cachedEnvelope(t, b, scope), cachedEnvelope(t, b, other)
	ct, err := eb.Seal(ctx, nil, []byte("x"), ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.Open(ctx, nil, ct, ec); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	var once sync.Once
	pgstore.SetReconnectHook(func() { <-hold })
	t.Cleanup(func() { pgstore.SetReconnectHook(nil); once.Do(func() { close(hold) }) })

	admin := c.pool()
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pgstore.ListenerPID(b))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := eb.Seal(ctx, nil, []byte("y"), ec); return errors.Is(err, kms.ErrStale) })
	if _, err := eb.Open(ctx, nil, ct, ec); !errors.Is(err, kms.ErrStale) {
		t.Fatalf("open without a listener: %v; want ErrStale", err)
	}
	if _, err := eo.Seal(ctx, nil, []byte("y"), envelope.Context{"tenant": "t2"}); !errors.Is(err, kms.ErrStale) {
		t.Fatalf("seal for another scope without a listener: %v; want ErrStale", err)
	}
	// b gave up its lease: Shred does not wait for it.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Shred(sctx, scope); err != nil {
		t.Fatal(err)
	}
	once.Do(func() { close(hold) }) // let b reconnect and catch up
	waitFor(t, func() bool {
		_, err := eo.Seal(ctx, nil, []byte("y"), envelope.Context{"tenant": "t2"})
		return err == nil
	})
	if _, err := eb.Open(ctx, nil, ct, ec); !errors.Is(err, kms.ErrKeyDestroyed) {
		t.Fatalf("open after catching up: %v; want ErrKeyDestroyed", err)
	}
}

// TestTamperedRowWhileRunning changes the row without the master key
// while instances run: they refuse key use rather than keep old keys.
func TestTamperedRowWhileRunning(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.open()
	if err := a.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	admin := c.pool()
	// Flip one byte of the keyset of t1 and announce a new version.
	if _, err := admin.Exec(ctx, `UPDATE tomkit_kms_keyrings SET doc = convert_to(replace(convert_from(doc, 'UTF8'), '"min_version": 1', '"min_version": 0'), 'UTF8'),
		version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_notify('tomkit_kms', 'v 99 default')"); err != nil {
		t.Fatal(err)
	}
	e := cachedEnvelope(t, a, scope)
	waitFor(t, func() bool { _, err := e.Seal(ctx, nil, []byte("y"), ec); return errors.Is(err, kms.ErrStale) })
	if _, err := pgstore.Open(ctx, admin, c.cfg); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Fatalf("Open of a tampered keyring: %v; want ErrWrongMasterKey", err)
	}
}

// TestConcurrentRotations rotates one scope on two instances at once:
// the rotations serialize, none is lost, and both see every version.
func TestConcurrentRotations(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, b := c.open(), c.open()
	if err := a.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var mu sync.Mutex
	seen := map[uint32]bool{}
	var wg sync.WaitGroup
	for _, r := range []*kms.Keyring{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				v, err := r.Rotate(ctx, scope)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[v] {
					t.Errorf("version %d returned twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, r := range []*kms.Keyring{a, b} {
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if keys := r.List()[0].Keys; len(keys) != 2*n+1 || keys[len(keys)-1].Version != 2*n+1 || !keys[len(keys)-1].Primary {
			t.Fatalf("%d versions after %d rotations on two instances", len(keys), 2*n)
		}
	}
}

// TestWrapCountsShared wraps on two instances: the count per key version
// is the sum of both, and the scope rotates when it reaches the limit.
func TestWrapCountsShared(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	c.cfg.RotateAfter = 64 // blocks of one wrap
	a, b := c.open(), c.open()
	for _, r := range []*kms.Keyring{a, b} {
		if err := r.Create(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	dek := make([]byte, 32)
	for i := range 40 {
		for _, r := range []*kms.Keyring{a, b} {
			if _, _, err := r.KEK(scope).Wrap(ctx, nil, dek, []byte("ad")); err != nil {
				t.Fatalf("wrap %d: %v", i, err)
			}
		}
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	keys := a.List()[0].Keys
	if len(keys) != 2 || keys[0].Wraps != 64 || keys[1].Wraps != 16 {
		t.Fatalf("keys %+v; want version 1 with 64 wraps, version 2 with 16", keys)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	c.open()
	pool := c.pool()
	other, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	if _, err := pgstore.Open(ctx, pool, kms.Config{Master: other, Logger: nopLogger{}}); !errors.Is(err, kms.ErrWrongMasterKey) {
		t.Fatalf("wrong master key: %v", err)
	}
	if _, err := pgstore.Open(ctx, pool, kms.Config{Logger: nopLogger{}}); !errors.Is(err, kms.ErrNoMasterKey) {
		t.Fatalf("no master key: %v", err)
	}
	if _, err := pgstore.Open(ctx, pool, kms.Config{Master: c.master}); !errors.Is(err, audit.ErrNoLogger) {
		t.Fatalf("no logger: %v", err)
	}
	// Another name is another keyring.
	r, err := pgstore.Open(ctx, pool, kms.Config{Master: other, Logger: nopLogger{}}, pgstore.WithName("second"))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, _, err := r.KEK(scope).Wrap(ctx, nil, make([]byte, 32), nil); !errors.Is(err, kms.ErrStale) {
		t.Fatalf("wrap after Close: %v; want ErrStale", err)
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTamperedRowRefused changes the stored document one byte at a time,
// as someone with access to the database but not to the master key
// could: every change that alters the document is refused at Open.
func TestTamperedRowRefused(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.open()
	for _, s := range []audit.Actor{scope, {Tenant: "t2", Subject: "s"}, {Tenant: "t3"}} {
		if err := a.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Shred(ctx, audit.Actor{Tenant: "t3"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.KEK(scope).Wrap(ctx, nil, make([]byte, 32), nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	admin := c.pool()
	var doc []byte
	if err := admin.QueryRow(ctx, "SELECT doc FROM tomkit_kms_keyrings").Scan(&doc); err != nil {
		t.Fatal(err)
	}
	var orig keyfile.File
	if err := json.Unmarshal(doc, &orig); err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 13
	}
	tried := 0
	for i := 0; i < len(doc); i += step {
		bad := bytes.Clone(doc)
		bad[i] ^= 0x01
		var f keyfile.File
		if json.Unmarshal(bad, &f) == nil && reflect.DeepEqual(f, orig) {
			continue // the same document (JSON whitespace, base64 padding bits)
		}
		if _, err := admin.Exec(ctx, "UPDATE tomkit_kms_keyrings SET doc = $1", bad); err != nil {
			t.Fatal(err)
		}
		r, err := pgstore.Open(ctx, admin, c.cfg)
		if !errors.Is(err, kms.ErrWrongMasterKey) {
			if r != nil {
				r.Close()
			}
			t.Fatalf("byte %d (%q) changed: Open = %v; want ErrWrongMasterKey", i, doc[i], err)
		}
		tried++
	}
	t.Logf("%d changed documents refused", tried)
}

// TestLeaseRenewed uses keys for several leases' time, with other
// instances changing the keyring all along: the lease is renewed and no
// use is refused.
func TestLeaseRenewed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for three leases")
	}
	ctx := context.Background()
	// Long enough that a loaded CI machine (-race, two cores) does not
	// starve the listener for most of a lease.
	const lease = 1500 * time.Millisecond
	c := newCluster(t, pgstore.WithLease(lease))
	// The default blocks of 65536 wraps: at full speed a change every few
	// tens of milliseconds from each instance.
	a, b := c.open(), c.open()
	for _, r := range []*kms.Keyring{a, b} {
		if err := r.Create(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	end := time.Now().Add(3 * lease)
	for _, r := range []*kms.Keyring{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kek := r.KEK(scope)
			dek := make([]byte, 32)
			for n := 0; time.Now().Before(end); n++ {
				if _, _, err := kek.Wrap(ctx, nil, dek, nil); err != nil {
					t.Errorf("wrap %d: %v", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestLeaseRunsOut advances one instance's clock past its lease, as if it
// could not renew it: it refuses key use, and only its own lease matters.
func TestLeaseRunsOut(t *testing.T) {
	ctx := context.Background()
	const lease = time.Minute // no renewal during the test
	c := newCluster(t, pgstore.WithLease(lease))
	a := c.open()
	var mu sync.Mutex
	now := time.Now()
	c.cfg.Clock = audit.ClockFunc(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	b := c.open()
	for _, r := range []*kms.Keyring{a, b} {
		if err := r.Create(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	dek := make([]byte, 32)
	id, w, err := b.KEK(scope).Wrap(ctx, nil, dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(lease)
	mu.Unlock()
	if _, _, err := b.KEK(scope).Wrap(ctx, nil, dek, nil); !errors.Is(err, kms.ErrStale) {
		t.Fatalf("wrap after the lease ran out: %v; want ErrStale", err)
	}
	if _, err := b.KEK(scope).Unwrap(ctx, nil, id, w, nil); !errors.Is(err, kms.ErrStale) {
		t.Fatalf("unwrap after the lease ran out: %v; want ErrStale", err)
	}
	if _, err := a.KEK(scope).Unwrap(ctx, nil, id, w, nil); err != nil {
		t.Fatalf("another instance: %v", err)
	}
}

// TestReplayRefused stores an older document (before a shred) again, as
// someone with access to the database but not to the master key could,
// to bring a shredded key back: under a later version number it is
// refused everywhere, under its own (older) number by every running
// instance.
func TestReplayRefused(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.open()
	if err := a.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	admin := c.pool()
	var old []byte
	var oldVersion int64
	if err := admin.QueryRow(ctx, "SELECT doc, version FROM tomkit_kms_keyrings").Scan(&old, &oldVersion); err != nil {
		t.Fatal(err)
	}
	if err := a.Shred(ctx, scope); err != nil {
		t.Fatal(err)
	}
	e := cachedEnvelope(t, a, audit.Actor{Tenant: "t2"})
	if err := a.Create(ctx, audit.Actor{Tenant: "t2"}); err != nil {
		t.Fatal(err)
	}
	ec2 := envelope.Context{"tenant": "t2"}
	if _, err := e.Seal(ctx, nil, []byte("x"), ec2); err != nil {
		t.Fatal(err)
	}
	var cur []byte
	var curVersion int64
	if err := admin.QueryRow(ctx, "SELECT doc, version FROM tomkit_kms_keyrings").Scan(&cur, &curVersion); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"version + 1", fmt.Sprint(oldVersion)} {
		// Back to the genuine document: a catches up and works again.
		if _, err := admin.Exec(ctx, "UPDATE tomkit_kms_keyrings SET doc = $1, version = $2", cur, curVersion); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, err := e.Seal(ctx, nil, []byte("y"), ec2); return err == nil })
		if _, err := admin.Exec(ctx, "UPDATE tomkit_kms_keyrings SET doc = $1, version = "+version, old); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "SELECT pg_notify('tomkit_kms', 'v 1000 default')"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, err := e.Seal(ctx, nil, []byte("y"), ec2); return errors.Is(err, kms.ErrStale) })
		if version != "version + 1" {
			break // an older copy under its own version: a backup, which a new instance cannot tell
		}
		if _, err := pgstore.Open(ctx, admin, c.cfg); !errors.Is(err, kms.ErrWrongMasterKey) {
			t.Fatalf("Open of a replayed document: %v; want ErrWrongMasterKey", err)
		}
	}
}
