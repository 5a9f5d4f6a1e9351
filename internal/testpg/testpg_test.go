package testpg_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tomkit/tomkit/internal/testpg"
)

func TestSchemaIsolated(t *testing.T) {
	dsn := testpg.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE probe (x int)"); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema == "public" {
		t.Fatalf("table landed in public, not in the test schema")
	}
}
