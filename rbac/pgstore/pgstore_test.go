package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/internal/testpg"
	"github.com/tomkit/tomkit/rbac"
	"github.com/tomkit/tomkit/rbac/pgstore"
)

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), testpg.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func count(t *testing.T, p *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := p.QueryRow(context.Background(), "SELECT count(*) FROM "+pgstore.Table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLegacyTable opens a table as Casbin's gorm adapter created it for
// earlier tomkit versions, with a NULL column, and reads it unchanged.
func TestLegacyTable(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if _, err := p.Exec(ctx, `CREATE TABLE tomkit_rbac_rule (id bigserial NOT NULL, ptype varchar(16),
		v0 text, v1 text, v2 text, v3 text, v4 text, v5 text, PRIMARY KEY (id));
		CREATE INDEX idx_tomkit_rbac_rule_ptype ON tomkit_rbac_rule (ptype);
		INSERT INTO tomkit_rbac_rule (ptype, v0, v1, v2, v3, v4, v5) VALUES
			('p', 'editor', 'acme', '/data/*', 'write', 'allow', 'none'),
			('g', 'alice', 'editor', 'acme', '', '', ''),
			('g', 'bob', 'editor', 'acme', NULL, NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []rbac.Row{
		{Ptype: "p", Fields: []string{"editor", "acme", "/data/*", "write", "allow", "none"}},
		{Ptype: "g", Fields: []string{"alice", "editor", "acme", "", "", ""}},
		{Ptype: "g", Fields: []string{"bob", "editor", "acme", "", "", ""}},
	}
	if !slices.EqualFunc(rows, want, func(a, b rbac.Row) bool { return a.Ptype == b.Ptype && slices.Equal(a.Fields, b.Fields) }) {
		t.Fatalf("Load = %v, want %v", rows, want)
	}
	// The NULL row is deleted by an exact match on its empty fields.
	n, _, err := st.Change(ctx, []rbac.Row{{Ptype: "g", Fields: []string{"bob", "editor", "acme"}}}, nil)
	if err != nil || n != 1 {
		t.Fatalf("Change = %d, %v; want 1", n, err)
	}
}

// TestChangeExact checks that a delete never acts as a wildcard: an empty
// field matches only an empty column, and a delete of a missing row rolls
// back the whole change.
func TestChangeExact(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	st, err := pgstore.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	rule := func(sub string) rbac.Row {
		return rbac.Row{Ptype: "p", Fields: []string{sub, "acme", "/data/*", "write", "deny", "none"}}
	}
	if _, _, err := st.Change(ctx, nil, []rbac.Row{rule("a"), rule("b"), {Ptype: "g", Fields: []string{"u", "r", "acme"}}}); err != nil {
		t.Fatal(err)
	}
	for _, del := range [][]rbac.Row{
		{rule("")},
		{{Ptype: "g", Fields: []string{"", "r", "acme"}}},
		{{Ptype: "g", Fields: []string{"u", "r"}}},
		{{Ptype: "", Fields: []string{"u", "r", "acme"}}},
		{rule("a"), rule("zz")}, // the first exists: rolled back
	} {
		n, seq, err := st.Change(ctx, del, []rbac.Row{rule("added")})
		if n != 0 || seq != 0 || (err == nil) == (del[0].Ptype == "") {
			t.Errorf("Change(%v) = %d, %v", del, n, err)
		}
		if got := count(t, p); got != 3 {
			t.Fatalf("after Change(%v): %d rows, want 3", del, got)
		}
	}
	if n, seq, err := st.Change(ctx, []rbac.Row{rule("a")}, nil); n != 1 || seq != 2 || err != nil {
		t.Fatalf("Change = %d, %d, %v; want 1, 2", n, seq, err)
	}
	if got := count(t, p); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}
}

// TestChangeLog checks that changes are numbered without gaps, logged in
// order with their rows, and that concurrent changes get distinct
// numbers in commit order.
func TestChangeLog(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	st, err := pgstore.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(ctx, p); err != nil { // idempotent
		t.Fatal(err)
	}
	g := func(u string) rbac.Row { return rbac.Row{Ptype: "g", Fields: []string{u, "r", "acme"}} }
	if _, seq, err := st.Change(ctx, nil, []rbac.Row{g("a"), g("b")}); err != nil || seq != 1 {
		t.Fatalf("Change = %d, %v", seq, err)
	}
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := st.Change(ctx, nil, []rbac.Row{g(fmt.Sprintf("u%d", i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, seq, err := st.Change(ctx, []rbac.Row{g("a")}, nil); err != nil || seq != n+2 {
		t.Fatalf("Change = %d, %v; want %d", seq, err, n+2)
	}
	cs, err := st.Changes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n+1 {
		t.Fatalf("%d changes after 1, want %d", len(cs), n+1)
	}
	for i, c := range cs {
		if c.Seq != int64(i+2) {
			t.Fatalf("change %d has seq %d", i, c.Seq)
		}
	}
	last := cs[len(cs)-1]
	if len(last.Add) != 0 || len(last.Del) != 1 || !slices.Equal(last.Del[0].Fields, g("a").Fields) || last.Del[0].Ptype != "g" {
		t.Fatalf("last change = %+v", last)
	}
	rows, seq, err := st.Load(ctx)
	if err != nil || seq != n+2 || len(rows) != n+1 {
		t.Fatalf("Load = %d rows, seq %d, %v", len(rows), seq, err)
	}
}
