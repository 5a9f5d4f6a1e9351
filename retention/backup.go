package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention/internal/snapshot"
)

// ErrBackupCorrupt reports a snapshot that fails verification: a changed,
// truncated or reordered stream, or a restored object whose digest differs
// from the one recorded at snapshot time.
var ErrBackupCorrupt = snapshot.ErrCorrupt

// SnapshotPrefix starts the key of every snapshot in a backup target.
const SnapshotPrefix = "snapshot/"

// BackupConfig configures a [Backups].
type BackupConfig struct {
	// Target is the Store that keeps the snapshots, under the backup
	// class, in its partition "_backups", which no actor can reach.
	// Required. Its logger and clock are used for every step. Give
	// backups a Target of their own.
	Target *Store
	// Keep is how long a snapshot is kept. Zero means
	// [DefaultBackupAge] (30 days); it may not exceed the Target's
	// maximum age for [ClassBackup], itself at most [MaxBackupAge].
	Keep time.Duration
	// ExcludeContent leaves [ClassContent] objects out of snapshots. It
	// is implied when the source Store runs with zero data retention.
	ExcludeContent bool
	// Envelope encrypts every snapshot stream (AES-256-GCM, bound to the
	// snapshot id). Required unless InsecurePlaintextBackups is set.
	Envelope *envelope.Envelope
	// InsecurePlaintextBackups writes snapshots unencrypted. The TOMs
	// promise encrypted backups; set it only when the target storage
	// encrypts by itself and that is documented.
	InsecurePlaintextBackups bool
}

// ErrNoEncryption reports a backup set configured without an envelope.
var ErrNoEncryption = errors.New("retention: backups need an envelope (encryption is not optional)")

// Backups is a backup set: snapshots of a Store, kept for a bounded time,
// each one restorable and verifiable.
type Backups struct {
	t    *Store
	keep time.Duration
	excl bool
	env  *envelope.Envelope
}

// NewBackups returns a backup set.
func NewBackups(cfg BackupConfig) (*Backups, error) {
	if cfg.Target == nil {
		return nil, errors.New("retention: backups need a target store")
	}
	if cfg.Envelope == nil && !cfg.InsecurePlaintextBackups {
		return nil, ErrNoEncryption
	}
	keep := cfg.Keep
	if keep == 0 {
		keep = DefaultBackupAge
	}
	if keep < 0 {
		return nil, fmt.Errorf("%w: backup keep %v", ErrInvalidDuration, keep)
	}
	max, err := cfg.Target.policy.MaxAgeOf(ClassBackup)
	if err != nil {
		return nil, err
	}
	if keep > max || keep > MaxBackupAge {
		return nil, fmt.Errorf("%w: backup keep %v, class allows %v", ErrRetentionTooLong, keep, max)
	}
	return &Backups{t: cfg.Target, keep: keep, excl: cfg.ExcludeContent, env: cfg.Envelope}, nil
}

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	ID          string
	Created     time.Time
	RetainUntil time.Time
	// Objects and Bytes count what was written; Skipped counts objects
	// left out (expired, content under zero data retention, or with a
	// corrupt record, which the purge reports).
	Objects, Skipped int
	Bytes            int64
	// Digest is the hex manifest digest, which restore-verify checks.
	Digest string
}

// Snapshot writes a snapshot of every tenant's partition of src to the
// target and returns its description. It is an operator path (see
// [WithOperator]; else [ErrNotOperator]) and refuses a source that still
// holds unpartitioned objects ([ErrUnpartitioned]). Each object is kept
// with its tenant, and restores into that tenant's partition. Objects already past their maximum age are left out (a
// backup must not extend retention), and so is content when src runs with
// zero data retention or [BackupConfig.ExcludeContent] is set. Objects are
// copied as the backend of src stores them. The step is audited as
// "retention.backup.snapshot".
func (b *Backups) Snapshot(ctx context.Context, src *Store) (SnapshotInfo, error) {
	op, reason, err := operator(ctx)
	if err == nil {
		err = src.checkPartitioned(ctx)
	}
	if err != nil {
		return SnapshotInfo{}, b.t.deny(ctx, "retention.backup.snapshot", "", err)
	}
	now := b.t.now().UTC().Truncate(time.Microsecond)
	id := SnapshotPrefix + now.Format("20060102T150405.000000Z")
	info := SnapshotInfo{ID: id, Created: now}
	excl := b.excl || src.zdr != ZDROff
	cut := src.policy.Cutoff(src.now())

	be := src.b
	if r, ok := be.(interface{ Raw() Backend }); ok {
		be = r.Raw() // copy ciphertext: erasure must reach backups
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var w io.Writer = pw
		var enc io.WriteCloser
		var err error
		if b.env != nil {
			enc, err = b.env.Encrypt(ctx, pw, snapContext(id))
			w = enc
		}
		if err == nil {
			err = b.write(ctx, w, src, be, cut, excl, &info)
		}
		if enc != nil {
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
		done <- err
	}()
	m, err := b.put(ctx, op, id, pr)
	pr.CloseWithError(errors.New("retention: snapshot aborted"))
	if werr := <-done; werr != nil && err == nil {
		err = werr
	}
	info.RetainUntil = m.RetainUntil
	ev := audit.Event{Action: "retention.backup.snapshot", Resource: id, Outcome: audit.OutcomeAllow, Time: now,
		Attributes: append(operatorAttrs(op, reason),
			audit.String("objects", strconv.Itoa(info.Objects)), audit.String("skipped", strconv.Itoa(info.Skipped)),
			audit.String("bytes", strconv.FormatInt(info.Bytes, 10)), audit.String("digest", info.Digest),
			audit.String("content_excluded", strconv.FormatBool(excl)),
		)}
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityWarning
	}
	if lerr := b.t.log.Log(context.WithoutCancel(ctx), ev); lerr != nil {
		return info, errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	if err != nil {
		return info, errtext.Errorf("retention: snapshot: %w", err)
	}
	return info, nil
}

func snapContext(id string) envelope.Context {
	return envelope.Context{"tomkit.retention.snapshot": id}
}

// put writes a snapshot into the target's backup partition.
func (b *Backups) put(ctx context.Context, op audit.Actor, id string, r io.Reader) (Meta, error) {
	p, err := b.t.b.Partition(backupTenant)
	if err != nil {
		return Meta{}, err
	}
	return b.t.put(ctx, p, id, r, PutOptions{Class: ClassBackup, RetainFor: b.keep}, audit.Actor{Tenant: backupTenant, Subject: op.Subject})
}

func (b *Backups) write(ctx context.Context, w io.Writer, s *Store, be Backend, cut Cutoff, excl bool, info *SnapshotInfo) error {
	sw, err := snapshot.NewWriter(w)
	if err != nil {
		return err
	}
	if err := s.eachTenant(ctx, func(tenant string, _ Partition) error {
		if tenant[0] == '_' {
			return nil // tomkit's own partitions: no snapshots of snapshots
		}
		p, err := be.Partition(tenant)
		if err != nil {
			return err
		}
		return b.writePartition(ctx, sw, tenant, p, cut, excl, info)
	}); err != nil {
		return err
	}
	sum, err := sw.Close()
	info.Digest = hex.EncodeToString(sum[:])
	return err
}

func (b *Backups) writePartition(ctx context.Context, sw *snapshot.Writer, tenant string, src Partition, cut Cutoff, excl bool, info *SnapshotInfo) error {
	after := ""
	for {
		es, err := src.List(ctx, after, 500)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		after = es[len(es)-1].Key
		for _, e := range es {
			if e.Err != nil || e.Meta.Tenant != tenant || cut.Expired(e.Meta) || (excl && e.Meta.Class == ClassContent) {
				info.Skipped++
				continue
			}
			rc, m, err := src.Get(ctx, e.Key)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since listed
			}
			if err != nil {
				return err
			}
			rec, err := encodeMeta(m)
			if err != nil {
				rc.Close()
				return err
			}
			_, n, err := sw.Add(qualified(tenant, e.Key), rec, rc)
			rc.Close()
			if err != nil {
				return err
			}
			info.Objects++
			info.Bytes += n
		}
	}
	return nil
}

// List returns the snapshots that are still within their retention,
// oldest first. It is an operator path (see [WithOperator]).
func (b *Backups) List(ctx context.Context) ([]SnapshotInfo, error) {
	if _, _, err := operator(ctx); err != nil {
		return nil, b.t.deny(ctx, "retention.backup.list", "", err)
	}
	p, err := b.t.b.Partition(backupTenant)
	if err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	cut := b.t.policy.Cutoff(b.t.now())
	after := SnapshotPrefix
	for {
		es, err := p.List(ctx, after, 500)
		if err != nil {
			return nil, errtext.Errorf("retention: list snapshots: %w", err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Key, SnapshotPrefix) {
				return out, nil
			}
			if !cut.Expired(e.Meta) {
				out = append(out, SnapshotInfo{ID: e.Key, Created: e.Meta.Created, RetainUntil: e.Meta.RetainUntil})
			}
		}
		if len(es) == 0 {
			return out, nil
		}
		after = es[len(es)-1].Key
	}
}

// Rotate deletes the snapshots past their retention: the deletion and
// overwrite cycle of the TOMs. It is a [Store.Purge] of the target (with
// its evidence), followed by a "retention.backup.rotate" event. It is an
// operator path (see [WithOperator]).
func (b *Backups) Rotate(ctx context.Context) (PurgeReport, error) {
	op, reason, err := operator(ctx)
	if err != nil {
		return PurgeReport{}, b.t.deny(ctx, "retention.backup.rotate", "", err)
	}
	attrs := operatorAttrs(op, reason)
	bt := backupTenant
	rep, err := b.t.purge(ctx, PurgeOptions{}, attrs, &bt)
	ev := audit.Event{Action: "retention.backup.rotate", Outcome: audit.OutcomeAllow, Time: rep.Time,
		Attributes: append(attrs, audit.String("deleted", strconv.Itoa(rep.Deleted)), audit.String("digest", rep.Digest),
			audit.String("keep", b.keep.String()))}
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeError, err.Error()
	}
	if lerr := b.t.log.Log(context.WithoutCancel(ctx), ev); lerr != nil {
		return rep, errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	return rep, err
}

// VerifyReport is the result of a restore test.
type VerifyReport struct {
	ID      string
	Objects int
	Bytes   int64
	Digest  string
}

// RestoreVerify restores snapshot id into scratch (an empty backend kept
// for the test) and checks it: every object's content digest while it is
// restored, the manifest digest and count at the end, and every restored
// object read back from scratch against the digest recorded at snapshot
// time. Any difference is [ErrBackupCorrupt]. The test is audited as
// "retention.backup.verify", with outcome error when it fails. Each object
// is restored into its tenant's partition of scratch. It is an operator
// path (see [WithOperator]).
func (b *Backups) RestoreVerify(ctx context.Context, id string, scratch Backend) (VerifyReport, error) {
	op, reason, err := operator(ctx)
	if err != nil {
		return VerifyReport{ID: id}, b.t.deny(ctx, "retention.backup.verify", id, err)
	}
	rep, err := b.restoreVerify(ctx, id, scratch)
	ev := audit.Event{Action: "retention.backup.verify", Resource: id, Outcome: audit.OutcomeAllow,
		Attributes: append(operatorAttrs(op, reason), audit.String("objects", strconv.Itoa(rep.Objects)),
			audit.String("bytes", strconv.FormatInt(rep.Bytes, 10)), audit.String("digest", rep.Digest))}
	if err != nil {
		ev.Outcome, ev.Reason, ev.Severity = audit.OutcomeError, err.Error(), audit.SeverityCritical
	}
	if lerr := b.t.log.Log(context.WithoutCancel(ctx), ev); lerr != nil {
		return rep, errors.Join(err, errtext.Errorf("retention: audit: %w", lerr))
	}
	return rep, err
}

func (b *Backups) restoreVerify(ctx context.Context, id string, scratch Backend) (VerifyReport, error) {
	rep := VerifyReport{ID: id}
	p, err := b.t.b.Partition(backupTenant)
	if err != nil {
		return rep, err
	}
	rc, _, err := b.t.get(ctx, p, backupTenant, id)
	if err != nil {
		return rep, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if b.env != nil {
		if r, err = b.env.Decrypt(ctx, rc, snapContext(id)); err != nil {
			return rep, errtext.Errorf("retention: verify %q: %w", id, corruptIfCrypto(err))
		}
	}
	sr, err := snapshot.NewReader(r)
	if err != nil {
		return rep, errtext.Errorf("retention: verify %q: %w", id, corruptIfCrypto(err))
	}
	type restored struct {
		p   Partition
		key string
		sum [32]byte
	}
	var done []restored
	for {
		e, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, errtext.Errorf("retention: verify %q: %w", id, corruptIfCrypto(err))
		}
		m, err := parseMeta(e.Record)
		if err != nil {
			return rep, errtext.Errorf("retention: verify %q: %w: %v", id, ErrBackupCorrupt, err)
		}
		tenant, key, ok := strings.Cut(e.Key, "/")
		if !ok || tenant != m.Tenant {
			return rep, errtext.Errorf("retention: verify %q: %w: entry %q does not match its record's tenant", id, ErrBackupCorrupt, e.Key)
		}
		sp, err := scratch.Partition(tenant)
		if err != nil {
			return rep, errtext.Errorf("retention: verify %q: %w: %w", id, ErrBackupCorrupt, err)
		}
		if err := sp.Put(ctx, key, e.Content, m); err != nil {
			return rep, errtext.Errorf("retention: verify %q: restore %q: %w", id, e.Key, corruptIfCrypto(err))
		}
		done = append(done, restored{sp, key, e.Sum})
	}
	for _, r := range done {
		got, m, err := r.p.Get(ctx, r.key)
		if err != nil {
			return rep, errtext.Errorf("retention: verify %q: read back %q: %w", id, r.key, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, got)
		got.Close()
		if err != nil {
			return rep, errtext.Errorf("retention: verify %q: read back %q: %w", id, r.key, err)
		}
		if m.Validate() != nil || string(h.Sum(nil)) != string(r.sum[:]) {
			return rep, errtext.Errorf("retention: verify %q: %w: restored %q differs", id, ErrBackupCorrupt, r.key)
		}
		rep.Objects++
		rep.Bytes += n
	}
	rep.Digest = hex.EncodeToString(sr.Manifest[:])
	return rep, nil
}

// corruptIfCrypto marks a snapshot stream that fails authentication, or
// whose header names a key that does not exist (a changed key id), as
// [ErrBackupCorrupt], keeping the envelope error in the chain. A destroyed
// key is not corruption and stays [ErrErased].
func corruptIfCrypto(err error) error {
	for _, e := range []error{envelope.ErrAuthentication, envelope.ErrTruncated, envelope.ErrMalformed,
		envelope.ErrUnsupportedVersion, envelope.ErrUnknownKey, kms.ErrUnwrap} {
		if errors.Is(err, e) && !errors.Is(err, ErrBackupCorrupt) {
			return fmt.Errorf("%w: %w", ErrBackupCorrupt, err)
		}
	}
	return err
}
