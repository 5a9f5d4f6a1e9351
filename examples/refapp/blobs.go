package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// blobStore keeps ciphertext by key "tenant/id". It never sees plaintext.
type blobStore interface {
	Put(ctx context.Context, key string, b []byte) error
	Get(ctx context.Context, key string) (b []byte, created time.Time, err error)
	Delete(ctx context.Context, key string) error
	DeletePrefix(ctx context.Context, prefix string) error
	Close() error
}

// fileBlobs keeps each blob in a file; the modification time is the
// creation time.
type fileBlobs struct{ dir string }

func (f fileBlobs) Put(_ context.Context, key string, b []byte) error {
	p := filepath.Join(f.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (f fileBlobs) Get(_ context.Context, key string) ([]byte, time.Time, error) {
	p := filepath.Join(f.dir, filepath.FromSlash(key))
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, errNotFound
	} else if err != nil {
		return nil, time.Time{}, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, errNotFound
	}
	return b, fi.ModTime(), err
}

func (f fileBlobs) Delete(_ context.Context, key string) error {
	err := os.Remove(filepath.Join(f.dir, filepath.FromSlash(key)))
	if errors.Is(err, os.ErrNotExist) {
		return errNotFound
	}
	return err
}

func (f fileBlobs) DeletePrefix(_ context.Context, prefix string) error {
	return os.RemoveAll(filepath.Join(f.dir, filepath.FromSlash(strings.TrimSuffix(prefix, "/"))))
}

func (f fileBlobs) Close() error { return nil }

// pgBlobs keeps blobs in PostgreSQL (table refapp_documents).
type pgBlobs struct{ pool *pgxpool.Pool }

func openPGBlobs(ctx context.Context, dsn string) (*pgBlobs, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS refapp_documents (
		key text PRIMARY KEY,
		body bytea NOT NULL,
		created timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &pgBlobs{pool: pool}, nil
}

func (p *pgBlobs) Put(ctx context.Context, key string, b []byte) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO refapp_documents (key, body) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body, created = now()`, key, b)
	return err
}

func (p *pgBlobs) Get(ctx context.Context, key string) ([]byte, time.Time, error) {
	var b []byte
	var created time.Time
	err := p.pool.QueryRow(ctx, `SELECT body, created FROM refapp_documents WHERE key = $1`, key).Scan(&b, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, errNotFound
	}
	return b, created, err
}

func (p *pgBlobs) Delete(ctx context.Context, key string) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM refapp_documents WHERE key = $1`, key)
	if err == nil && tag.RowsAffected() == 0 {
		return errNotFound
	}
	return err
}

func (p *pgBlobs) DeletePrefix(ctx context.Context, prefix string) error {
	_, err := p.pool.Exec(ctx, `DELETE FROM refapp_documents WHERE starts_with(key, $1)`, prefix)
	return err
}

func (p *pgBlobs) Close() error { p.pool.Close(); return nil }
