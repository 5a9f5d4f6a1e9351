package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/fsstore"
	"github.com/tomkit/tomkit/retention/pgstore"
)

const fileKeyring = "keyring.json" // in dirKeysets: the per-tenant KEKs, encrypted under the master key

// createMasterKey writes the master key (kms.GenerateMasterKey: 32 random
// bytes, base64) to a 0600 file. It encrypts the keyring file. In
// production it lives in a KMS or Vault (kms.RemoteMasterKey), never on
// the disk next to the keyring.
func (d dataDir) createMasterKey() error {
	return writeSecret(d.path(fileMasterKey), []byte(kms.GenerateMasterKey()+"\n"))
}

// sealedStore keeps documents through the retention wrapper (class
// content: 30 days at most) with envelope encryption: a fresh AES-256-GCM
// DEK per document, wrapped by the tenant's own KEK in the keyring, bound
// to the tenant and document id.
type sealedStore struct {
	keys  *kms.Keyring
	store *retention.Store
	log   audit.Logger
	pool  *pgxpool.Pool

	mu   sync.Mutex
	envs map[string]*envelope.Envelope // by tenant

	stop chan struct{}
	done chan struct{}
}

// openStore opens the keyring (creating it on first start), the document
// backend (files in the data directory, or PostgreSQL with -postgres) and
// the retention store, and starts the purge loop.
func openStore(ctx context.Context, a *app) (docStore, error) {
	master, err := kms.MasterKeyFromFile(a.data.path(fileMasterKey))
	if err != nil {
		return nil, err
	}
	kcfg := kms.Config{Master: master, Logger: a.audit, Clock: audit.ClockFunc(a.now)}
	path := a.data.path(dirKeysets, fileKeyring)
	var keys *kms.Keyring
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		keys, err = kms.Create(ctx, path, kcfg)
		if err != nil {
			return nil, err
		}
	} else if keys, err = kms.Open(ctx, path, kcfg); err != nil {
		return nil, err
	}
	s := &sealedStore{keys: keys, log: a.audit, envs: map[string]*envelope.Envelope{}, stop: make(chan struct{}), done: make(chan struct{})}
	var be retention.Backend
	if a.opts.postgres != "" {
		if s.pool, err = pgxpool.New(ctx, a.opts.postgres); err != nil {
			return nil, err
		}
		if be, err = pgstore.Open(ctx, s.pool); err != nil {
			s.pool.Close()
			return nil, err
		}
	} else if be, err = fsstore.Open(ctx, a.data.path(dirDocuments)); err != nil {
		return nil, err
	}
	policy := retention.DefaultPolicy()
	if a.opts.retention != 0 {
		policy.MaxAge = map[retention.Class]time.Duration{}
		for _, c := range retention.DefaultPolicy().Classes() {
			policy.MaxAge[c], _ = retention.DefaultPolicy().MaxAgeOf(c)
		}
		policy.MaxAge[retention.ClassContent] = a.opts.retention
	}
	if s.store, err = retention.New(be, retention.Config{Policy: policy, Logger: a.audit, Clock: audit.ClockFunc(a.now)}); err != nil {
		s.closePool()
		return nil, err
	}
	go s.purgeLoop()
	return s, nil
}

// purgeInterval is how often expired documents are deleted. Expired ones
// are unreadable at once; the purge removes their bytes.
const purgeInterval = 10 * time.Minute

func (s *sealedStore) purgeLoop() {
	defer close(s.done)
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// The purge crosses tenants: it runs on the operator path.
			ctx := retention.WithOperator(audit.WithActor(context.Background(), audit.Actor{Subject: "refapp-purge"}), "scheduled purge")
			_, _ = s.store.Purge(ctx, retention.PurgeOptions{})
		}
	}
}

func (s *sealedStore) envelope(ctx context.Context, tenant string) (*envelope.Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.envs[tenant]; ok {
		return e, nil
	}
	scope := audit.Actor{Tenant: tenant}
	if err := s.keys.Create(ctx, scope); err != nil {
		return nil, err
	}
	e, err := envelope.New(s.keys.KEK(scope), envelope.Config{Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.envs[tenant] = e
	return e, nil
}

func docContext(tenant, id string) envelope.Context {
	return envelope.Context{"tenant": tenant, "document": id, "class": string(retention.ClassContent)}
}

func (s *sealedStore) Put(ctx context.Context, tenant, id string, body []byte) error {
	e, err := s.envelope(ctx, tenant)
	if err != nil {
		return err
	}
	ct, err := e.Seal(ctx, nil, body, docContext(tenant, id))
	if err != nil {
		return err
	}
	_, err = s.store.Put(ctx, tenant+"/"+id, bytes.NewReader(ct), retention.PutOptions{Class: retention.ClassContent})
	return err
}

func (s *sealedStore) Get(ctx context.Context, tenant, id string) ([]byte, error) {
	rc, _, err := s.store.Get(ctx, tenant+"/"+id)
	if errors.Is(err, retention.ErrNotFound) || errors.Is(err, retention.ErrExpired) {
		return nil, errNotFound
	} else if err != nil {
		return nil, err
	}
	ct, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	e, err := s.envelope(ctx, tenant)
	if err != nil {
		return nil, err
	}
	pt, err := e.Open(ctx, nil, ct, docContext(tenant, id))
	if errors.Is(err, kms.ErrKeyDestroyed) {
		// Crypto-shredded: the tenant was erased. The bytes are
		// unrecoverable wherever they are.
		return nil, errNotFound
	}
	return pt, err
}

func (s *sealedStore) Delete(ctx context.Context, tenant, id string) error {
	err := s.store.Delete(ctx, tenant+"/"+id)
	if errors.Is(err, retention.ErrNotFound) {
		return errNotFound
	}
	return err
}

// EraseTenant shreds the tenant's KEK first, so that every copy of its
// documents (backups included) is unrecoverable at once, then deletes the
// documents.
func (s *sealedStore) EraseTenant(ctx context.Context, tenant string) error {
	s.mu.Lock()
	delete(s.envs, tenant)
	err := s.keys.Shred(ctx, audit.Actor{Tenant: tenant})
	s.mu.Unlock()
	if err != nil && !errors.Is(err, kms.ErrUnknownKey) {
		return fmt.Errorf("shred tenant key: %w", err)
	}
	be, err := s.store.Backend().Partition(tenant)
	if err != nil {
		return err
	}
	prefix := tenant + "/"
	after := prefix[:len(prefix)-1] // keys greater than "tenant"
	for {
		entries, err := be.List(ctx, after, 500)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Key, prefix) {
				if e.Key > prefix {
					return nil
				}
				continue
			}
			if err := s.store.Delete(ctx, e.Key); err != nil && !errors.Is(err, retention.ErrNotFound) {
				return err
			}
		}
		after = entries[len(entries)-1].Key
	}
}

func (s *sealedStore) closePool() {
	if s.pool != nil {
		s.pool.Close()
	}
}

func (s *sealedStore) Close() error {
	close(s.stop)
	<-s.done
	s.closePool()
	return nil
}

const integrationStore = "crypto/envelope + crypto/kms (one KEK per tenant, crypto-shredding) + retention (30-day content window, purge)"
