package pglog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotAppendOnly reports an existing log whose append-only triggers are
// missing or disabled. [Open] does not re-create or re-enable them, so
// that a log someone was able to change is inspected before it is used
// again: run [Verify], then re-enable the triggers by hand (ALTER TABLE
// audit_records ENABLE TRIGGER USER, and so on for each table).
var ErrNotAppendOnly = errors.New("pglog: append-only triggers missing or disabled")

// appendOnly names, for each table, the triggers that make it append-only.
// audit_records_delete_pruned came with audit_prunes, so it is required
// only when audit_prunes exists.
var appendOnly = []struct{ table, trigger string }{
	{"audit_records", "audit_records_append_only"},
	{"audit_records", "audit_records_no_truncate"},
	{"audit_prunes", "audit_records_delete_pruned"}, // on audit_records
	{"audit_checkpoints", "audit_checkpoints_append_only"},
	{"audit_checkpoints", "audit_checkpoints_no_truncate"},
	{"audit_prunes", "audit_prunes_append_only"},
	{"audit_prunes", "audit_prunes_no_truncate"},
	{"audit_keys", "audit_keys_append_only"},
	{"audit_keys", "audit_keys_no_truncate"},
}

// checkTriggers refuses, with ErrNotAppendOnly, a log with a table that
// exists but lacks one of its triggers, or has it disabled. Open then
// creates the tables and triggers that do not exist yet: all of them for a
// new log, those of tables a later version added for an old one.
func checkTriggers(ctx context.Context, tx pgx.Tx) error {
	var tables []string
	for _, a := range appendOnly {
		if !slices.Contains(tables, a.table) {
			tables = append(tables, a.table)
		}
	}
	rows, err := tx.Query(ctx, `SELECT n FROM unnest($1::text[]) n WHERE to_regclass(n) IS NOT NULL`, tables)
	if err != nil {
		return err
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT t.tgname, t.tgenabled::text FROM pg_trigger t
		WHERE t.tgrelid IN (SELECT to_regclass(n) FROM unnest($1::text[]) n) AND NOT t.tgisinternal`, existing)
	if err != nil {
		return err
	}
	enabled := map[string]bool{}
	var name, state string
	if _, err := pgx.ForEachRow(rows, []any{&name, &state}, func() error {
		// 'O' fires in normal sessions, 'A' always; 'D' is disabled
		// and 'R' fires only for replication.
		enabled[name] = state == "O" || state == "A"
		return nil
	}); err != nil {
		return err
	}
	var bad []string
	for _, a := range appendOnly {
		if !slices.Contains(existing, a.table) || (a.table == "audit_prunes" && !slices.Contains(existing, "audit_records")) {
			continue
		}
		on, ok := enabled[a.trigger]
		switch {
		case !ok:
			bad = append(bad, a.trigger+" missing")
		case !on:
			bad = append(bad, a.trigger+" disabled")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrNotAppendOnly, strings.Join(bad, ", "))
	}
	return nil
}
