package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/pglog"
)

// Files of the audit log in the data directory.
const filePseudonymKey = "audit-pseudonym.key" // HMAC key for personal attributes (0600)

// createAuditKey makes the checkpoint signing key (audit.GenerateKey, the
// signed-note format) and the pseudonymization key for personal
// attributes.
func (d dataDir) createAuditKey() error {
	skey, vkey, err := audit.GenerateKey("refapp.tomkit.example/audit")
	if err != nil {
		return err
	}
	if err := writeSecret(d.path(fileAuditKey), []byte(skey+"\n")); err != nil {
		return err
	}
	if err := os.WriteFile(d.path(fileAuditPub), []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	return writeSecret(d.path(filePseudonymKey), []byte(hex.EncodeToString(secret)+"\n"))
}

// openAudit opens the tamper-evident audit log (audit.FileLog, or
// pglog.Log with -postgres). Checkpoints are signed with the data
// directory's key; personal attributes (the client address) are written as
// keyed pseudonyms.
func openAudit(ctx context.Context, a *app) (auditSink, error) {
	skey, err := os.ReadFile(a.data.path(fileAuditKey))
	if err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, err
	}
	pk, err := os.ReadFile(a.data.path(filePseudonymKey))
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(pk)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filePseudonymKey, err)
	}
	ps, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "refapp-1", Secret: secret})
	if err != nil {
		return nil, err
	}
	if a.opts.postgres != "" {
		pool, err := pgxpool.New(ctx, a.opts.postgres)
		if err != nil {
			return nil, fmt.Errorf("audit log: postgres: %w", err)
		}
		l, err := pglog.Open(ctx, pool, pglog.Config{Signer: signer, Pseudonymizer: ps, CheckpointInterval: checkpointInterval})
		if err != nil {
			pool.Close()
			return nil, err
		}
		return pgAudit{l, pool}, nil
	}
	l, err := audit.Open(ctx, a.data.path(dirAudit), audit.FileConfig{Signer: signer, Pseudonymizer: ps, CheckpointInterval: checkpointInterval})
	if err != nil {
		// Not a nil *FileLog in a non-nil auditSink, whose Close the
		// caller would call.
		return nil, err
	}
	return l, nil
}

// pgAudit is the PostgreSQL audit log with the pool it alone uses.
type pgAudit struct {
	log  *pglog.Log
	pool *pgxpool.Pool
}

func (p pgAudit) Log(ctx context.Context, e audit.Event) error { return p.log.Log(ctx, e) }

// Close closes the log, then its pool.
func (p pgAudit) Close() error {
	defer p.pool.Close()
	return p.log.Close()
}

// auditVerifyArgs is the `tomkit audit verify` command line for this log.
func (a *app) auditVerifyArgs() string {
	target := a.data.path(dirAudit)
	if a.opts.postgres != "" {
		target = "'" + a.opts.postgres + "'"
	}
	return "--key " + a.data.path(fileAuditPub) + " " + target
}

const integrationAudit = "audit (tamper-evident file log, signed checkpoints, pseudonymized personal attributes)"

// checkpointInterval is how often the audit log signs a checkpoint. Records
// become tamper-evident when a checkpoint covers them, so the interval is
// short: signing one Ed25519 note every two seconds costs nothing.
const checkpointInterval = 2 * time.Second

// auditVerifier returns the verifier of the audit log's checkpoints.
func (d dataDir) auditVerifier() (note.Verifier, error) {
	b, err := os.ReadFile(d.path(fileAuditPub))
	if err != nil {
		return nil, err
	}
	return audit.NewVerifier(strings.TrimSpace(string(b)))
}
