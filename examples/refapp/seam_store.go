package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// createMasterKey writes the master key: an AES-256-GCM tink keyset in
// clear, mode 0600. It wraps the per-tenant keysets. In production it
// lives in a KMS or Vault, never on disk.
func (d dataDir) createMasterKey() error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return err
	}
	return writeSecret(d.path(fileMasterKey), buf.Bytes())
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// openStore returns the document store.
//
// Fallback until crypto/envelope, crypto/kms and retention land: each
// tenant has its own AES-256-GCM keyset (its KEK), wrapped by the master
// key and bound to the tenant name; documents are sealed with the tenant's
// key and the tenant/id as associated data; a document older than the
// retention window reads as not found and is deleted. Erasing a tenant
// deletes its keyset first (crypto-shredding), then its documents.
func openStore(ctx context.Context, a *app) (docStore, error) {
	mb, err := os.ReadFile(a.data.path(fileMasterKey))
	if err != nil {
		return nil, err
	}
	mh, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(mb)))
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	master, err := aead.New(mh)
	if err != nil {
		return nil, err
	}
	var blobs blobStore
	if a.opts.postgres != "" {
		blobs, err = openPGBlobs(ctx, a.opts.postgres)
		if err != nil {
			return nil, err
		}
	} else {
		blobs = fileBlobs{dir: a.data.path(dirDocuments)}
	}
	return &sealedStore{
		master:    master,
		keyDir:    a.data.path(dirKeysets),
		blobs:     blobs,
		retention: a.opts.retention,
		now:       a.now,
		keys:      map[string]tink.AEAD{},
	}, nil
}

type sealedStore struct {
	master    tink.AEAD
	keyDir    string
	blobs     blobStore
	retention time.Duration
	now       func() time.Time

	mu   sync.Mutex
	keys map[string]tink.AEAD
}

// tenantKey returns the tenant's KEK, creating it on first use when
// create is set.
func (s *sealedStore) tenantKey(tenant string, create bool) (tink.AEAD, error) {
	if !validName.MatchString(tenant) {
		return nil, errUnknownTenant
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[tenant]; ok {
		return k, nil
	}
	path := filepath.Join(s.keyDir, tenant+".json")
	ad := []byte("refapp tenant keyset " + tenant)
	var h *keyset.Handle
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		h, err = keyset.ReadWithAssociatedData(keyset.NewJSONReader(bytes.NewReader(b)), s.master, ad)
		if err != nil {
			return nil, fmt.Errorf("tenant keyset %s: %w", tenant, err)
		}
	case errors.Is(err, os.ErrNotExist) && create:
		if h, err = keyset.NewHandle(aead.AES256GCMKeyTemplate()); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewJSONWriter(&buf), s.master, ad); err != nil {
			return nil, err
		}
		if err := writeSecret(path, buf.Bytes()); err != nil {
			return nil, err
		}
	case errors.Is(err, os.ErrNotExist):
		return nil, errNotFound
	default:
		return nil, err
	}
	k, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	s.keys[tenant] = k
	return k, nil
}

func docAD(tenant, id string) []byte { return []byte("refapp document " + tenant + "/" + id) }

func (s *sealedStore) Put(ctx context.Context, tenant, id string, body []byte) error {
	k, err := s.tenantKey(tenant, true)
	if err != nil {
		return err
	}
	ct, err := k.Encrypt(body, docAD(tenant, id))
	if err != nil {
		return err
	}
	return s.blobs.Put(ctx, tenant+"/"+id, ct)
}

func (s *sealedStore) Get(ctx context.Context, tenant, id string) ([]byte, error) {
	if !validName.MatchString(id) {
		return nil, errNotFound
	}
	k, err := s.tenantKey(tenant, false)
	if err != nil {
		return nil, err
	}
	ct, created, err := s.blobs.Get(ctx, tenant+"/"+id)
	if err != nil {
		return nil, err
	}
	if s.now().Sub(created) > s.retention {
		_ = s.blobs.Delete(ctx, tenant+"/"+id)
		return nil, errNotFound
	}
	return k.Decrypt(ct, docAD(tenant, id))
}

func (s *sealedStore) Delete(ctx context.Context, tenant, id string) error {
	if !validName.MatchString(id) || !validName.MatchString(tenant) {
		return errNotFound
	}
	return s.blobs.Delete(ctx, tenant+"/"+id)
}

func (s *sealedStore) EraseTenant(ctx context.Context, tenant string) error {
	if !validName.MatchString(tenant) {
		return errUnknownTenant
	}
	s.mu.Lock()
	delete(s.keys, tenant)
	err := os.Remove(filepath.Join(s.keyDir, tenant+".json"))
	s.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return s.blobs.DeletePrefix(ctx, tenant+"/")
}

func (s *sealedStore) Close() error { return s.blobs.Close() }

const integrationStore = "store: tink AES-256-GCM per-tenant keyset fallback (crypto/envelope, crypto/kms, retention not yet wired)"
