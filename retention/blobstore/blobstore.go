// Package blobstore is the [retention.Backend] for gocloud.dev/blob
// buckets: S3 (and S3-compatible stores such as Scaleway), GCS, Azure Blob
// Storage, the local fileblob and the in-memory memblob.
//
// Each object's record is kept in the blob's own metadata, so that it is
// written atomically with the content: "retention-class" and
// "retention-until" in plain form (where bucket lifecycle rules and
// operators can see them) and "retention-record" holding the full
// encoded record. On read the three must agree, or the object is
// [retention.ErrCorruptMeta].
//
// Each tenant's objects are kept under the key prefix "tenants/<tenant>/"
// ([retention.CheckTenant] allows no separator in a tenant name), so that
// two tenants can use the same key and a listing of one tenant's prefix
// returns none of another's. Keys outside "tenants/" are the unpartitioned
// key space of a bucket written before tenant partitioning.
//
// Limits: fileblob writes a blob's metadata to a sidecar file that is not
// replaced atomically, so this package serialises reads with writes of the
// same key within the process; readers in other processes may briefly see
// a torn record, which fails closed as [retention.ErrCorruptMeta]. Blob
// APIs have no portable conditional delete, so DeleteExpired
// re-reads the record immediately before deleting and serialises with
// writes from the same process; a write from another process in between
// can still lose that race. SetMeta rewrites the object (buckets cannot
// change metadata in place). List reads the whole key space per page.
// Configure the bucket's own lifecycle expiry no earlier than the
// retain-until of the longest class, as a backstop.
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/internal/backendkit"
)

// The metadata keys, named in the package documentation.
const (
	metaClass  = "retention-class"
	metaUntil  = "retention-until"
	metaRecord = "retention-record"
)

// Store is a bucket-backed [retention.Backend].
type Store struct {
	b     *blob.Bucket
	locks [64]sync.RWMutex
}

var (
	_ retention.Backend   = (*Store)(nil)
	_ retention.Partition = (*partition)(nil)
)

// ErrNoBucket reports a nil bucket or one that cannot be reached.
var ErrNoBucket = errors.New("blobstore: bucket not accessible")

// Open returns a Store over bucket after checking that the bucket can be
// listed, so that a wrong name or missing credentials fail at start
// rather than at the first write ([ErrNoBucket]). The caller keeps
// ownership of bucket and closes it.
func Open(ctx context.Context, bucket *blob.Bucket) (*Store, error) {
	if bucket == nil {
		return nil, ErrNoBucket
	}
	ok, err := bucket.IsAccessible(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBucket, err)
	}
	if !ok {
		return nil, ErrNoBucket
	}
	return &Store{b: bucket}, nil
}

// tenantsPrefix starts the key of every partitioned object.
const tenantsPrefix = "tenants/"

// partition is one tenant's key prefix or (tenant "") the keys outside
// tenantsPrefix.
type partition struct {
	s      *Store
	tenant string
	prefix string
}

// Partition implements [retention.Backend].
func (s *Store) Partition(tenant string) (retention.Partition, error) {
	if err := retention.CheckTenant(tenant); err != nil {
		return nil, errtext.Errorf("blobstore: %w", err)
	}
	return &partition{s: s, tenant: tenant, prefix: tenantsPrefix + tenant + "/"}, nil
}

// Unpartitioned implements [retention.Backend].
func (s *Store) Unpartitioned() retention.Partition { return &partition{s: s} }

// Tenants implements [retention.Backend].
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	var out []string
	it := s.b.List(&blob.ListOptions{Prefix: tenantsPrefix, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errtext.Errorf("blobstore: tenants: %w", err)
		}
		t := strings.TrimSuffix(strings.TrimPrefix(o.Key, tenantsPrefix), "/")
		if o.IsDir && t > after && retention.CheckTenant(t) == nil {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (p *partition) lock(key string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(p.prefix))
	h.Write([]byte(key))
	return &p.s.locks[h.Sum32()%uint32(len(p.s.locks))]
}

func (p *partition) encode(m retention.Meta) (map[string]string, error) {
	if p.tenant != "" && m.Tenant != p.tenant {
		return nil, errtext.Errorf("blobstore: %w: record names tenant %q in the partition of %q", retention.ErrInvalidTenant, m.Tenant, p.tenant)
	}
	rec, err := backendkit.EncodeMeta(m)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		metaClass:  string(m.Class),
		metaUntil:  m.RetainUntil.UTC().Format(time.RFC3339Nano),
		metaRecord: string(rec),
	}, nil
}

func decode(key string, md map[string]string) (retention.Meta, error) {
	m, err := backendkit.ParseMeta([]byte(md[metaRecord]))
	if err != nil {
		return retention.Meta{}, errtext.Errorf("blobstore: %q: %w", key, err)
	}
	if md[metaClass] != string(m.Class) || md[metaUntil] != m.RetainUntil.UTC().Format(time.RFC3339Nano) {
		return retention.Meta{}, errtext.Errorf("blobstore: %q: %w: plain metadata disagrees with record", key, retention.ErrCorruptMeta)
	}
	return m, nil
}

func wrap(op, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return errtext.Errorf("blobstore: %s %q: %w", op, key, err)
}

// Put implements [retention.Partition]. The bucket commits content and
// metadata together when the writer closes; a failed copy aborts it.
func (p *partition) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if err := backendkit.CheckKey(key); err != nil {
		return err
	}
	md, err := p.encode(m)
	if err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	return p.write(ctx, key, r, md)
}

func (p *partition) write(ctx context.Context, key string, r io.Reader, md map[string]string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := p.s.b.NewWriter(wctx, p.prefix+key, &blob.WriterOptions{Metadata: md, ContentType: "application/octet-stream"})
	if err != nil {
		return wrap("put", key, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // aborts the write: the old object stays
		w.Close()
		return errtext.Errorf("blobstore: put %q: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return wrap("put", key, err)
	}
	return nil
}

// Get implements [retention.Partition]. If the object changes between
// reading its attributes and opening it, Get retries, so that content and
// record always belong together.
func (p *partition) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	if err := backendkit.CheckKey(key); err != nil {
		return nil, retention.Meta{}, err
	}
	l := p.lock(key)
	l.RLock()
	defer l.RUnlock()
	return p.get(ctx, key)
}

func (p *partition) get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	for range 3 {
		a, err := p.s.b.Attributes(ctx, p.prefix+key)
		if err != nil {
			return nil, retention.Meta{}, wrap("get", key, err)
		}
		m, err := decode(key, a.Metadata)
		if err != nil {
			return nil, retention.Meta{}, err
		}
		r, err := p.s.b.NewReader(ctx, p.prefix+key, nil)
		if err != nil {
			return nil, retention.Meta{}, wrap("get", key, err)
		}
		if r.ModTime().Equal(a.ModTime) && r.Size() == a.Size {
			return r, m, nil
		}
		r.Close()
	}
	return nil, retention.Meta{}, fmt.Errorf("blobstore: get %q: object keeps changing", key)
}

// Stat implements [retention.Partition].
func (p *partition) Stat(ctx context.Context, key string) (retention.Meta, error) {
	if err := backendkit.CheckKey(key); err != nil {
		return retention.Meta{}, err
	}
	l := p.lock(key)
	l.RLock()
	defer l.RUnlock()
	return p.stat(ctx, key)
}

func (p *partition) stat(ctx context.Context, key string) (retention.Meta, error) {
	a, err := p.s.b.Attributes(ctx, p.prefix+key)
	if err != nil {
		return retention.Meta{}, wrap("stat", key, err)
	}
	return decode(key, a.Metadata)
}

// SetMeta implements [retention.Partition] by rewriting the object.
func (p *partition) SetMeta(ctx context.Context, key string, m retention.Meta) error {
	md, err := p.encode(m)
	if err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	rc, _, err := p.get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	return p.write(ctx, key, rc, md)
}

// Delete implements [retention.Partition].
func (p *partition) Delete(ctx context.Context, key string) error {
	if err := backendkit.CheckKey(key); err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	if err := p.s.b.Delete(ctx, p.prefix+key); err != nil {
		return wrap("delete", key, err)
	}
	return nil
}

// List implements [retention.Partition].
func (p *partition) List(ctx context.Context, after string, limit int) ([]retention.Entry, error) {
	return p.list(ctx, after, limit, nil)
}

// ListExpired implements [retention.Partition].
func (p *partition) ListExpired(ctx context.Context, cut retention.Cutoff, after string, limit int) ([]retention.Entry, error) {
	return p.list(ctx, after, limit, cut.Expired)
}

func (p *partition) list(ctx context.Context, after string, limit int, keep func(retention.Meta) bool) ([]retention.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	ks, err := p.keys(ctx, after)
	for range 2 {
		// fileblob fails a listing that meets a blob deleted while it
		// walks (as a concurrent purge does); list again.
		if gcerrors.Code(err) != gcerrors.NotFound {
			break
		}
		ks, err = p.keys(ctx, after)
	}
	if err != nil {
		return nil, errtext.Errorf("blobstore: list: %w", err)
	}
	var out []retention.Entry
	for _, k := range ks {
		m, err := p.Stat(ctx, k)
		if isNotFound(err) {
			continue
		}
		if errors.Is(err, retention.ErrCorruptMeta) {
			out = append(out, retention.Entry{Key: k, Err: err})
			if len(out) == limit {
				break
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(m) {
			out = append(out, retention.Entry{Key: k, Meta: m})
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// keys returns the partition's keys greater than after, in order.
func (p *partition) keys(ctx context.Context, after string) ([]string, error) {
	var ks []string
	it := p.s.b.List(&blob.ListOptions{Prefix: p.prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.tenant == "" && strings.HasPrefix(o.Key, tenantsPrefix) {
			continue
		}
		k := strings.TrimPrefix(o.Key, p.prefix)
		if !o.IsDir && k > after && backendkit.CheckKey(k) == nil {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks, nil
}

// DeleteExpired implements [retention.Partition]; see the package
// documentation for the limits of its re-check.
func (p *partition) DeleteExpired(ctx context.Context, cut retention.Cutoff, keys []string) ([]string, error) {
	var deleted []string
	for _, k := range keys {
		if backendkit.CheckKey(k) != nil {
			continue
		}
		ok, err := p.deleteOne(ctx, cut, k)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted = append(deleted, k)
		}
	}
	return deleted, nil
}

func (p *partition) deleteOne(ctx context.Context, cut retention.Cutoff, key string) (bool, error) {
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	m, err := p.stat(ctx, key)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil || !cut.Deletable(m) {
		return false, err
	}
	if err := p.s.b.Delete(ctx, p.prefix+key); err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil
		}
		return false, wrap("delete", key, err)
	}
	return true, nil
}

func isNotFound(err error) bool { return errors.Is(err, retention.ErrNotFound) }
