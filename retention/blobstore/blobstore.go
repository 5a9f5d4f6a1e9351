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
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/tomkit/tomkit/retention"
)

// Metadata keys.
const (
	MetaClass  = "retention-class"
	MetaUntil  = "retention-until"
	MetaRecord = "retention-record"
)

// Store is a bucket-backed [retention.Backend].
type Store struct {
	b     *blob.Bucket
	locks [64]sync.RWMutex
}

var _ retention.Backend = (*Store)(nil)

// New returns a Store over bucket. The caller keeps ownership of bucket
// and closes it.
func New(bucket *blob.Bucket) *Store { return &Store{b: bucket} }

func (s *Store) lock(key string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

func encode(m retention.Meta) (map[string]string, error) {
	rec, err := retention.EncodeMeta(m)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		MetaClass:  string(m.Class),
		MetaUntil:  m.RetainUntil.UTC().Format(time.RFC3339Nano),
		MetaRecord: string(rec),
	}, nil
}

func decode(key string, md map[string]string) (retention.Meta, error) {
	m, err := retention.ParseMeta([]byte(md[MetaRecord]))
	if err != nil {
		return retention.Meta{}, fmt.Errorf("blobstore: %q: %w", key, err)
	}
	if md[MetaClass] != string(m.Class) || md[MetaUntil] != m.RetainUntil.UTC().Format(time.RFC3339Nano) {
		return retention.Meta{}, fmt.Errorf("blobstore: %q: %w: plain metadata disagrees with record", key, retention.ErrCorruptMeta)
	}
	return m, nil
}

func wrap(op, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	return fmt.Errorf("blobstore: %s %q: %w", op, key, err)
}

// Put implements [retention.Backend]. The bucket commits content and
// metadata together when the writer closes; a failed copy aborts it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if err := retention.CheckKey(key); err != nil {
		return err
	}
	md, err := encode(m)
	if err != nil {
		return err
	}
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	return s.write(ctx, key, r, md)
}

func (s *Store) write(ctx context.Context, key string, r io.Reader, md map[string]string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(wctx, key, &blob.WriterOptions{Metadata: md, ContentType: "application/octet-stream"})
	if err != nil {
		return wrap("put", key, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // aborts the write: the old object stays
		w.Close()
		return fmt.Errorf("blobstore: put %q: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return wrap("put", key, err)
	}
	return nil
}

// Get implements [retention.Backend]. If the object changes between
// reading its attributes and opening it, Get retries, so that content and
// record always belong together.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	if err := retention.CheckKey(key); err != nil {
		return nil, retention.Meta{}, err
	}
	l := s.lock(key)
	l.RLock()
	defer l.RUnlock()
	return s.get(ctx, key)
}

func (s *Store) get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	for range 3 {
		a, err := s.b.Attributes(ctx, key)
		if err != nil {
			return nil, retention.Meta{}, wrap("get", key, err)
		}
		m, err := decode(key, a.Metadata)
		if err != nil {
			return nil, retention.Meta{}, err
		}
		r, err := s.b.NewReader(ctx, key, nil)
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

// Stat implements [retention.Backend].
func (s *Store) Stat(ctx context.Context, key string) (retention.Meta, error) {
	if err := retention.CheckKey(key); err != nil {
		return retention.Meta{}, err
	}
	l := s.lock(key)
	l.RLock()
	defer l.RUnlock()
	return s.stat(ctx, key)
}

func (s *Store) stat(ctx context.Context, key string) (retention.Meta, error) {
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return retention.Meta{}, wrap("stat", key, err)
	}
	return decode(key, a.Metadata)
}

// SetMeta implements [retention.Backend] by rewriting the object.
func (s *Store) SetMeta(ctx context.Context, key string, m retention.Meta) error {
	md, err := encode(m)
	if err != nil {
		return err
	}
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	rc, _, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.write(ctx, key, rc, md)
}

// Delete implements [retention.Backend].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := retention.CheckKey(key); err != nil {
		return err
	}
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	if err := s.b.Delete(ctx, key); err != nil {
		return wrap("delete", key, err)
	}
	return nil
}

// List implements [retention.Backend].
func (s *Store) List(ctx context.Context, after string, limit int) ([]retention.Entry, error) {
	return s.list(ctx, after, limit, nil)
}

// ListExpired implements [retention.Backend].
func (s *Store) ListExpired(ctx context.Context, cut retention.Cutoff, after string, limit int) ([]retention.Entry, error) {
	return s.list(ctx, after, limit, cut.Expired)
}

func (s *Store) list(ctx context.Context, after string, limit int, keep func(retention.Meta) bool) ([]retention.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ks []string
	it := s.b.List(nil)
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("blobstore: list: %w", err)
		}
		if !o.IsDir && o.Key > after && retention.CheckKey(o.Key) == nil {
			ks = append(ks, o.Key)
		}
	}
	sort.Strings(ks)
	var out []retention.Entry
	for _, k := range ks {
		m, err := s.Stat(ctx, k)
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

// DeleteExpired implements [retention.Backend]; see the package
// documentation for the limits of its re-check.
func (s *Store) DeleteExpired(ctx context.Context, cut retention.Cutoff, keys []string) ([]string, error) {
	var deleted []string
	for _, k := range keys {
		if retention.CheckKey(k) != nil {
			continue
		}
		ok, err := s.deleteOne(ctx, cut, k)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted = append(deleted, k)
		}
	}
	return deleted, nil
}

func (s *Store) deleteOne(ctx context.Context, cut retention.Cutoff, key string) (bool, error) {
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	m, err := s.stat(ctx, key)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil || !cut.Deletable(m) {
		return false, err
	}
	if err := s.b.Delete(ctx, key); err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil
		}
		return false, wrap("delete", key, err)
	}
	return true, nil
}

func isNotFound(err error) bool { return errors.Is(err, retention.ErrNotFound) }
