package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tomkit/tomkit/retention"
)

// runRetentionMigrate moves a store written before tenant partitioning
// into per-tenant partitions and prints the report as JSON.
func runRetentionMigrate(ctx context.Context, e env, s *retention.Store, o retention.MigrateOptions) int {
	rep, err := s.Migrate(ctx, o)
	out, _ := json.MarshalIndent(struct {
		DryRun    bool     `json:"dry_run"`
		Moved     int      `json:"moved"`
		Adopted   int      `json:"adopted"`
		Orphans   []string `json:"orphans"`
		Conflicts []string `json:"conflicts"`
		Digest    string   `json:"digest_sha256"`
	}{rep.DryRun, rep.Moved, rep.Adopted, append([]string{}, rep.Orphans...), append([]string{}, rep.Conflicts...), rep.Digest}, "", "  ")
	fmt.Fprintln(e.stdout, string(out))
	if err != nil {
		fmt.Fprintf(e.stderr, "tomkit retention: %v\n", err)
		return exitFailure
	}
	return exitOK
}
