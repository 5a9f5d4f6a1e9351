package pglog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/link"
	"github.com/tomkit/tomkit/audit/internal/logfmt"
	"golang.org/x/mod/sumdb/note"

	"github.com/tomkit/tomkit/internal/errtext"
)

// verifierKey is the signer's verifier key in the note text encoding.
var verifierKey = link.VerifierKey.(func(*audit.Signer) string)

// epoch is one key of a log: it signs the checkpoints of sizes from
// from up to the next key's from.
type epoch struct {
	v    note.Verifier
	from int64
}

// readKeys returns the log's keys from audit_keys, in order, as far as
// each rotation note verifies under the key before it, and the first
// fault: a first row that is not a plain key, or a rotation row whose
// note does not verify or does not say what the row says. recorded
// reports whether audit_keys has any row.
func readKeys(ctx context.Context, tx pgx.Tx) (keys []epoch, fault *logfmt.Fault, recorded bool, err error) {
	// A log last opened before keys were recorded has no audit_keys; a
	// failed query would abort a read-only transaction.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('audit_keys') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return nil, nil, false, err
	}
	rows, err := tx.Query(ctx, `SELECT seq, size, verifier, note FROM audit_keys ORDER BY seq`)
	if err != nil {
		return nil, nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		recorded = true
		var seq, size int64
		var vkey string
		var msg []byte
		if err := rows.Scan(&seq, &size, &vkey, &msg); err != nil {
			return nil, nil, false, err
		}
		if fault != nil {
			continue
		}
		var at int64
		if n := len(keys); n > 0 {
			at = keys[n-1].from
		}
		v, err := note.NewVerifier(vkey)
		switch {
		case err != nil:
			err = fmt.Errorf("key %d: %w", seq, err)
		case len(keys) == 0 && (msg != nil || size != 0):
			err = fmt.Errorf("key %d: the first key has a rotation note", seq)
		case len(keys) > 0:
			var rot logfmt.Rotation
			rot, err = logfmt.OpenRotation(msg, keys[len(keys)-1].v)
			if err == nil && (rot.Size != size || rot.Next != vkey || size < at) {
				err = fmt.Errorf("key %d: the row says %d %q, its rotation note %d %q", seq, size, vkey, rot.Size, rot.Next)
			}
			if err != nil {
				err = fmt.Errorf("key %d: rotation: %w", seq, err)
			}
		}
		if err != nil {
			fault = &logfmt.Fault{Index: at, Kind: logfmt.KindBadSignature, Err: err}
			continue
		}
		keys = append(keys, epoch{v: v, from: size})
	}
	return keys, fault, recorded, rows.Err()
}

// openCheckpoint verifies msg with the key of keys that signed it, and
// checks that its size lies in that key's epoch. It returns the key's
// position, or logfmt.ErrWrongKey when none of keys signed it.
func openCheckpoint(msg []byte, keys []epoch) (logfmt.Checkpoint, int, error) {
	for i, k := range keys {
		c, err := logfmt.OpenCheckpoint(msg, k.v)
		if err == logfmt.ErrWrongKey {
			continue
		}
		if err != nil {
			return c, i, err
		}
		if c.Size < k.from || (i+1 < len(keys) && c.Size > keys[i+1].from) {
			return logfmt.Checkpoint{}, i, fmt.Errorf("checkpoint of size %d signed by key %d outside its records %d to %d", c.Size, i, k.from, keys[i+1].from)
		}
		return c, i, nil
	}
	return logfmt.Checkpoint{}, -1, logfmt.ErrWrongKey
}

// openPrune verifies a prune note with any of vs; a nil vs only parses it.
func openPrune(msg []byte, vs []note.Verifier) (logfmt.Prune, error) {
	if vs == nil {
		return logfmt.OpenPrune(msg, nil)
	}
	err := logfmt.ErrWrongKey
	for _, v := range vs {
		var p logfmt.Prune
		if p, err = logfmt.OpenPrune(msg, v); err == nil {
			return p, nil
		}
	}
	return logfmt.Prune{}, err
}

// verifiers returns the keys' verifiers, or v alone when there are none.
func verifiers(keys []epoch, v note.Verifier) []note.Verifier {
	if len(keys) == 0 {
		return []note.Verifier{v}
	}
	vs := make([]note.Verifier, len(keys))
	for i, k := range keys {
		vs[i] = k.v
	}
	return vs
}

func sameKey(a, b note.Verifier) bool { return a.Name() == b.Name() && a.KeyHash() == b.KeyHash() }

// earlier returns the fault at the lower index (a when equal), either may
// be nil.
func earlier(a, b *logfmt.Fault) *logfmt.Fault {
	if a == nil || (b != nil && b.Index < a.Index) {
		return b
	}
	return a
}

// wrongSigner is the error for a signer whose key is not the log's key
// (vkey, or nil when the log names none).
func wrongSigner(vkey *string) error {
	if vkey == nil {
		return fmt.Errorf("%w: the log names no key", audit.ErrWrongSigner)
	}
	// name+hash; the rest is the public key.
	parts := strings.SplitN(*vkey, "+", 3)
	return fmt.Errorf("%w: the log's key is %s", audit.ErrWrongSigner, strings.Join(parts[:min(2, len(parts))], "+"))
}

// claim makes the log's key the signer's when the log has none yet (a new
// log, or one written before keys were recorded, whose latest checkpoint
// the signer must have signed), and refuses a signer whose key is not the
// log's with audit.ErrWrongSigner. It runs in Open's transaction, so a
// refused Open writes nothing.
func (l *Log) claim(ctx context.Context, tx pgx.Tx) error {
	var cur string
	err := tx.QueryRow(ctx, `SELECT verifier FROM audit_keys ORDER BY seq DESC LIMIT 1`).Scan(&cur)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var last []byte
		err := tx.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Scan(&last)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil {
			if _, err := logfmt.OpenCheckpoint(last, l.signer.Verifier()); err != nil {
				return fmt.Errorf("%w: the log's latest checkpoint is not signed by it", audit.ErrWrongSigner)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_keys (size, verifier) VALUES (0, $1)`, l.vkey); err != nil {
			return err
		}
	case err != nil:
		return err
	case cur != l.vkey:
		return wrongSigner(&cur)
	}
	_, err = tx.Exec(ctx, `UPDATE audit_head SET verifier = $1 WHERE one AND verifier IS DISTINCT FROM $1`, l.vkey)
	return err
}

// firstCheckpoint signs a checkpoint when the log has none: a new log
// starts with one, so that deleting every checkpoint is detected.
func (l *Log) firstCheckpoint(ctx context.Context, tx pgx.Tx) error {
	var any bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_checkpoints)`).Scan(&any); err != nil || any {
		return err
	}
	t, err := lockHead(ctx, tx, l.vkey)
	if err != nil {
		return err
	}
	_, err = signCheckpoint(ctx, tx, l.signer, t, l.now())
	return err
}

// Rotate changes the log's key to next's. In one transaction holding the
// head lock it records an "audit.rotate" event, signs a checkpoint with
// the current key, stores a rotation note signed by the current key that
// names next's verifier key and the tree size, and signs a checkpoint of
// the same tree with next. [Verify] follows the rotation from the first
// key: checkpoints up to that size verify under the old key, later ones
// under next.
//
// Afterwards this Log signs with next. Every other Log on the same tables
// still holding the old signer is refused with [audit.ErrWrongSigner] on
// its next append, checkpoint or prune, and must be reopened with next.
// Rotating to the current key does nothing.
func (l *Log) Rotate(ctx context.Context, next *audit.Signer) error {
	if next == nil {
		return audit.ErrNoSigner
	}
	if err := l.enter(); err != nil {
		return err
	}
	defer l.mu.RUnlock()
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	nkey := verifierKey(next)
	if nkey == l.vkey {
		return nil
	}
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		t, err := lockHead(ctx, tx, l.vkey)
		if err != nil {
			return err
		}
		b, err := encodeRecord(ctx, rotateEvent(next), l.now, l.cfg.Pseudonymizer)
		if err != nil {
			return err
		}
		if err := appendRecords(ctx, tx, t, [][]byte{b}); err != nil {
			return err
		}
		now := l.now()
		if _, err := signCheckpoint(ctx, tx, l.signer, t, now); err != nil {
			return err
		}
		msg, err := logfmt.SignRotation(noteSigner(l.signer), t.Size(), nkey)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_keys (size, verifier, note) VALUES ($1, $2, $3)`, t.Size(), nkey, msg); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET verifier = $1 WHERE one`, nkey); err != nil {
			return err
		}
		_, err = signCheckpoint(ctx, tx, next, t, now)
		return err
	})
	if err != nil {
		return errtext.Errorf("pglog: rotate: %w", err)
	}
	l.signer, l.vkey = next, nkey
	return nil
}

// rotateEvent is the event Rotate records, naming the next key.
func rotateEvent(next *audit.Signer) audit.Event {
	v := next.Verifier()
	return audit.Event{
		Action: "audit.rotate", Outcome: audit.OutcomeAllow, Severity: audit.SeverityNotice,
		Reason:     "the log's checkpoint signing key changes",
		Attributes: []audit.Attr{audit.String("next", fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()))},
	}
}
