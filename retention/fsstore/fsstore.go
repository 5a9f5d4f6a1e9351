// Package fsstore is the local-filesystem [retention.Backend], tomkit's
// embedded default.
//
// Each object is one file holding a small header (a magic number and the
// encoded metadata record) followed by the content. A write goes to a
// temporary file that is synced and then renamed over the object, and the
// directory is synced, so that the content and its record are committed
// together and a crash leaves the old object or the new one, never a mix.
// Keeping the record in the same file as the content, rather than in a
// sidecar, is what makes that single rename possible.
//
// Each tenant has a directory of its own, tenants/<tenant>, named after
// the tenant ([retention.CheckTenant] allows no separator, dot or upper
// case, so no name reaches outside it or shares it on a case-insensitive
// file system). Within it, file names are the hex encoding of the key, in
// directories named after the key's first byte, so that a directory walk
// yields keys in order. The objects directory of a store written before
// tenant partitioning is its unpartitioned key space.
//
// Threat model: the directory is trusted storage of this process; anyone
// who can write it can change records. A corrupt record makes the object
// unreadable ([retention.ErrCorruptMeta]), never live.
package fsstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/tomkit/tomkit/internal/errtext"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/internal/backendkit"
)

const magic = "TKR1"

// Store is a filesystem [retention.Backend] rooted at a directory.
type Store struct {
	dir      string
	readOnly bool
	locks    [64]sync.Mutex
}

// ErrReadOnly reports a write to a Store opened with [OpenReadOnly].
var ErrReadOnly = errors.New("fsstore: store opened read-only")

var (
	_ retention.Backend   = (*Store)(nil)
	_ retention.Partition = (*partition)(nil)
)

// partition is one tenant's directory, or (tenant "") the objects
// directory of a store from before tenant partitioning.
type partition struct {
	s      *Store
	tenant string
	root   string
}

// Open returns a Store rooted at dir, creating it (mode 0700) if needed,
// and finishes the writes and deletions a crash interrupted.
func Open(ctx context.Context, dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "objects"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errtext.Errorf("fsstore: %w", err)
		}
	}
	s := &Store{dir: dir}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenReadOnly returns a Store on the existing store at dir (one that
// [Open] created) for reading only, as a dry run needs: it creates
// nothing, runs no crash recovery, and refuses every write with
// [ErrReadOnly]. It returns an error wrapping fs.ErrNotExist when dir is
// not a store. An object whose deletion a crash interrupted stays
// invisible until Open recovers it.
func OpenReadOnly(ctx context.Context, dir string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "objects"), filepath.Join(dir, "tmp")} {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, errtext.Errorf("fsstore: not a store: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("fsstore: not a store: %s is not a directory", d)
		}
	}
	return &Store{dir: dir, readOnly: true}, nil
}

func (s *Store) writable() error {
	if s.readOnly {
		return ErrReadOnly
	}
	return nil
}

// Partition implements [retention.Backend].
func (s *Store) Partition(tenant string) (retention.Partition, error) {
	if err := retention.CheckTenant(tenant); err != nil {
		return nil, errtext.Errorf("fsstore: %w", err)
	}
	return &partition{s: s, tenant: tenant, root: filepath.Join(s.dir, "tenants", tenant)}, nil
}

// Unpartitioned implements [retention.Backend].
func (s *Store) Unpartitioned() retention.Partition {
	return &partition{s: s, root: filepath.Join(s.dir, "objects")}
}

// Tenants implements [retention.Backend].
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	ds, err := os.ReadDir(filepath.Join(s.dir, "tenants"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errtext.Errorf("fsstore: %w", err)
	}
	var out []string
	for _, d := range ds { // ReadDir sorts by name
		if n := d.Name(); d.IsDir() && n > after && retention.CheckTenant(n) == nil && len(out) < limit {
			out = append(out, n)
		}
	}
	return out, nil
}

func (p *partition) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(p.tenant))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return &p.s.locks[h.Sum32()%uint32(len(p.s.locks))]
}

func (p *partition) path(key string) string {
	return filepath.Join(p.root, hex.EncodeToString([]byte(key[:1])), hex.EncodeToString([]byte(key))+".obj")
}

// tombPrefix names the temporary file of an object renamed aside for
// deletion, so that recover can put it back.
func (p *partition) tombPrefix(key string) string {
	if p.tenant == "" {
		return "del-" + hex.EncodeToString([]byte(key)) + "-"
	}
	return "delt-" + hex.EncodeToString([]byte(p.tenant)) + "-" + hex.EncodeToString([]byte(key)) + "-"
}

func (s *Store) tmpName(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(s.dir, "tmp", prefix+hex.EncodeToString(b[:]))
}

// Put implements [retention.Backend].
func (p *partition) Put(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if err := p.s.writable(); err != nil {
		return err
	}
	if err := backendkit.CheckKey(key); err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	return p.write(ctx, key, r, m)
}

func (p *partition) write(ctx context.Context, key string, r io.Reader, m retention.Meta) error {
	if p.tenant != "" && m.Tenant != p.tenant {
		return errtext.Errorf("fsstore: %w: record names tenant %q in the partition of %q", retention.ErrInvalidTenant, m.Tenant, p.tenant)
	}
	rec, err := backendkit.EncodeMeta(m)
	if err != nil {
		return err
	}
	tmp := p.s.tmpName("put-")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var hdr [8]byte
	copy(hdr[:4], magic)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(rec)))
	if _, err := f.Write(append(hdr[:], rec...)); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		return errtext.Errorf("fsstore: write %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	if err := f.Close(); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	fp := p.path(key)
	if err := os.MkdirAll(filepath.Dir(fp), 0o700); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	if err := os.Rename(tmp, fp); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	ok = true
	return syncDir(filepath.Dir(fp))
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	return nil
}

// readHeader reads the header of f and leaves f positioned at the content.
func readHeader(f io.Reader) (retention.Meta, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != magic {
		return retention.Meta{}, fmt.Errorf("%w: bad object header", retention.ErrCorruptMeta)
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > 4<<10 {
		return retention.Meta{}, fmt.Errorf("%w: record of %d bytes", retention.ErrCorruptMeta, n)
	}
	rec := make([]byte, n)
	if _, err := io.ReadFull(f, rec); err != nil {
		return retention.Meta{}, fmt.Errorf("%w: short record", retention.ErrCorruptMeta)
	}
	return backendkit.ParseMeta(rec)
}

func (p *partition) open(key string) (*os.File, retention.Meta, error) {
	if err := backendkit.CheckKey(key); err != nil {
		return nil, retention.Meta{}, err
	}
	f, err := os.Open(p.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, retention.Meta{}, fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	}
	if err != nil {
		return nil, retention.Meta{}, errtext.Errorf("fsstore: %w", err)
	}
	m, err := readHeader(f)
	if err != nil {
		f.Close()
		return nil, retention.Meta{}, errtext.Errorf("fsstore: %q: %w", key, err)
	}
	return f, m, nil
}

// Get implements [retention.Backend]. The returned reader streams from the
// open file; a concurrent Put does not change what it reads.
func (p *partition) Get(ctx context.Context, key string) (io.ReadCloser, retention.Meta, error) {
	return p.open(key)
}

// Stat implements [retention.Backend].
func (p *partition) Stat(ctx context.Context, key string) (retention.Meta, error) {
	f, m, err := p.open(key)
	if err != nil {
		return retention.Meta{}, err
	}
	f.Close()
	return m, nil
}

// SetMeta implements [retention.Backend]. It rewrites the object.
func (p *partition) SetMeta(ctx context.Context, key string, m retention.Meta) error {
	if err := p.s.writable(); err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	f, _, err := p.open(key)
	if err != nil {
		return err
	}
	defer f.Close()
	return p.write(ctx, key, f, m)
}

// Delete implements [retention.Backend].
func (p *partition) Delete(ctx context.Context, key string) error {
	if err := p.s.writable(); err != nil {
		return err
	}
	if err := backendkit.CheckKey(key); err != nil {
		return err
	}
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	fp := p.path(key)
	if err := os.Remove(fp); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", retention.ErrNotFound, key)
	} else if err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	return syncDir(filepath.Dir(fp))
}

// List implements [retention.Backend].
func (p *partition) List(ctx context.Context, after string, limit int) ([]retention.Entry, error) {
	return p.list(ctx, after, limit, nil)
}

// ListExpired implements [retention.Backend].
func (p *partition) ListExpired(ctx context.Context, cut retention.Cutoff, after string, limit int) ([]retention.Entry, error) {
	return p.list(ctx, after, limit, cut.Expired)
}

func (p *partition) list(ctx context.Context, after string, limit int, keep func(retention.Meta) bool) ([]retention.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	root := p.root
	shards, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errtext.Errorf("fsstore: %w", err)
	}
	hexAfter := hex.EncodeToString([]byte(after))
	var out []retention.Entry
	for _, sh := range shards {
		if after != "" && sh.Name() < hexAfter[:2] {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, sh.Name()))
		if err != nil {
			return nil, errtext.Errorf("fsstore: %w", err)
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			n, ok := strings.CutSuffix(f.Name(), ".obj")
			if ok && n > hexAfter {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			kb, err := hex.DecodeString(n)
			if err != nil {
				continue
			}
			key := string(kb)
			m, err := p.Stat(ctx, key)
			if errors.Is(err, retention.ErrNotFound) {
				continue
			}
			if errors.Is(err, retention.ErrCorruptMeta) {
				out = append(out, retention.Entry{Key: key, Err: err})
				if len(out) == limit {
					return out, nil
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			if keep == nil || keep(m) {
				out = append(out, retention.Entry{Key: key, Meta: m})
				if len(out) == limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// DeleteExpired implements [retention.Backend]. Each object is first
// renamed aside atomically, then its record is checked; an object that is
// no longer deletable is linked back (unless a newer object has taken its
// place meanwhile, which then wins).
func (p *partition) DeleteExpired(ctx context.Context, cut retention.Cutoff, keys []string) ([]string, error) {
	if err := p.s.writable(); err != nil {
		return nil, err
	}
	var deleted []string
	dirs := map[string]bool{}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		if backendkit.CheckKey(key) != nil {
			continue
		}
		ok, err := p.deleteOne(key, cut)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted = append(deleted, key)
			dirs[filepath.Dir(p.path(key))] = true
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func (p *partition) deleteOne(key string, cut retention.Cutoff) (bool, error) {
	l := p.lock(key)
	l.Lock()
	defer l.Unlock()
	fp := p.path(key)
	tomb := p.s.tmpName(p.tombPrefix(key))
	if err := os.Rename(fp, tomb); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, errtext.Errorf("fsstore: %w", err)
	}
	f, err := os.Open(tomb)
	if err != nil {
		return false, errtext.Errorf("fsstore: %w", err)
	}
	m, err := readHeader(f)
	f.Close()
	if err == nil && cut.Deletable(m) {
		if err := os.Remove(tomb); err != nil {
			return false, errtext.Errorf("fsstore: %w", err)
		}
		return true, nil
	}
	// Not deletable (or unreadable): put it back without clobbering a
	// newer object written meanwhile.
	if lerr := os.Link(tomb, fp); lerr != nil && !errors.Is(lerr, fs.ErrExist) {
		return false, errtext.Errorf("fsstore: restore %q: %w", key, lerr)
	}
	os.Remove(tomb)
	return false, nil
}

// recover finishes what a crash interrupted: temporary writes are
// discarded, and objects renamed aside for deletion are put back (the
// purge re-checks them on its next run).
func (s *Store) recover(ctx context.Context) error {
	tmp := filepath.Join(s.dir, "tmp")
	files, err := os.ReadDir(tmp)
	if err != nil {
		return errtext.Errorf("fsstore: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(tmp, f.Name())
		part, rest := s.Unpartitioned().(*partition), ""
		if r, ok := strings.CutPrefix(f.Name(), "delt-"); ok {
			ht, r, _ := strings.Cut(r, "-")
			tb, err := hex.DecodeString(ht)
			if tp, perr := s.Partition(string(tb)); err == nil && perr == nil {
				part, rest = tp.(*partition), r
			}
		} else if r, ok := strings.CutPrefix(f.Name(), "del-"); ok {
			rest = r
		}
		if rest != "" {
			hk, _, _ := strings.Cut(rest, "-")
			if kb, err := hex.DecodeString(hk); err == nil && backendkit.CheckKey(string(kb)) == nil {
				dst := part.path(string(kb))
				if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
					return errtext.Errorf("fsstore: %w", err)
				}
				if err := os.Link(p, dst); err != nil && !errors.Is(err, fs.ErrExist) {
					return errtext.Errorf("fsstore: recover %q: %w", kb, err)
				}
			}
		}
		os.Remove(p)
	}
	return nil
}
