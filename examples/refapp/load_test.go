package main_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad runs 50 concurrent clients, each with its own TLS connection,
// for 20 seconds against one instance: a mix of creates, reads, deletes,
// cross-tenant reads and unauthenticated requests. There must be no 5xx
// and no transport error, every request must have exactly one request
// audit entry, and `tomkit audit verify` must pass.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: 20 s")
	}
	const clients = 50
	const duration = 20 * time.Second
	r := startRefapp(t, "", "-traces", "off", "-rate", "100000", "-burst", "100000")

	var (
		mu       sync.Mutex
		ids      = map[string]bool{} // X-Request-Id of every answered request
		statuses = map[int]int{}
		errs     atomic.Int64
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(duration)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.client()
			who, tenant, other := "alice", "acme", "kanzlei-mueller"
			if i%2 == 1 {
				who, tenant, other = "lena", "kanzlei-mueller", "acme"
			}
			rng := rand.New(rand.NewPCG(uint64(i), 8))
			var mine []string
			for n := 0; time.Now().Before(deadline); n++ {
				var p reply
				var err error
				switch x := rng.IntN(100); {
				case x < 30 || len(mine) == 0:
					p, err = r.do(c, "POST", "/v1/tenants/"+tenant+"/documents", who, fmt.Sprintf("client %d document %d", i, n))
					if err == nil && p.Status == 201 {
						mine = append(mine, p.field("id"))
					}
				case x < 80:
					p, err = r.do(c, "GET", "/v1/tenants/"+tenant+"/documents/"+mine[rng.IntN(len(mine))], who, nil)
				case x < 90:
					k := rng.IntN(len(mine))
					p, err = r.do(c, "DELETE", "/v1/tenants/"+tenant+"/documents/"+mine[k], who, nil)
					mine = append(mine[:k], mine[k+1:]...)
				case x < 95:
					p, err = r.do(c, "GET", "/v1/tenants/"+other+"/documents/"+strings.Repeat("ab", 16), who, nil)
				default:
					p, err = r.do(c, "GET", "/v1/tenants/"+tenant+"/documents/"+strings.Repeat("cd", 16), "", nil)
				}
				if err != nil {
					errs.Add(1)
					t.Errorf("client %d: %v", i, err)
					continue
				}
				mu.Lock()
				statuses[p.Status]++
				if p.RequestID == "" || ids[p.RequestID] {
					t.Errorf("client %d: missing or duplicate request id %q", i, p.RequestID)
				}
				ids[p.RequestID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.stop()

	total := len(ids)
	t.Logf("%d requests in %s by %d clients (%.0f/s); statuses %v", total, duration, clients, float64(total)/duration.Seconds(), statuses)
	for s, n := range statuses {
		if s >= 500 {
			t.Errorf("%d responses with status %d", n, s)
		}
	}
	if errs.Load() != 0 {
		t.Errorf("%d transport errors", errs.Load())
	}
	if total < clients {
		t.Fatalf("only %d requests answered", total)
	}

	// Exactly one request audit entry per answered request.
	seen := map[string]int{}
	for _, e := range readEvents(t, filepath.Join(r.Data, "audit")) {
		if strings.HasPrefix(e.Action, "refapp.") && e.Action != "refapp.alert" {
			seen[e.RequestID]++
		}
	}
	if len(seen) != total {
		t.Errorf("%d request audit entries, %d requests", len(seen), total)
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("request %s has %d audit entries, want 1", id, seen[id])
			break
		}
	}
	if code, out := tomkit(t, "audit", "verify", "--key", filepath.Join(r.Data, "audit.pub"), filepath.Join(r.Data, "audit")); code != 0 {
		t.Fatalf("tomkit audit verify after load: %d %s", code, out)
	}
}
