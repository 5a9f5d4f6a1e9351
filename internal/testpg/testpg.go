// Package testpg gives tests a real PostgreSQL database.
//
// Tests that need PostgreSQL call [DSN]. When TOMKIT_TEST_POSTGRES_DSN is
// unset the test is skipped with a message naming the variable; when
// TOMKIT_REQUIRE_POSTGRES=1 is set as well, it fails instead, so that CI
// cannot pass by skipping.
package testpg

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable that holds the test database's DSN.
const EnvDSN = "TOMKIT_TEST_POSTGRES_DSN"

// EnvRequire names the variable that turns a missing database into a
// test failure.
const EnvRequire = "TOMKIT_REQUIRE_POSTGRES"

// DSN returns the test database's DSN, or skips (or fails) t when none is
// configured or the database does not answer.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		missing(t, fmt.Sprintf("PostgreSQL test: %s is not set", EnvDSN))
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		missing(t, fmt.Sprintf("PostgreSQL test: cannot connect to %s: %v", EnvDSN, err))
		return ""
	}
	_ = conn.Close(ctx)
	return dsn
}

// Schema creates a fresh schema for t, drops it when t ends, and returns a
// DSN whose search_path points at it, so that tests running in parallel
// (and several packages' tests running at once) never see each other's
// tables.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("testpg: create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (and %s=1)", msg, EnvRequire)
	}
	t.Skip(msg)
}
