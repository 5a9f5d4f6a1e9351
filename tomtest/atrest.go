package tomtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
)

// EncryptedAtRest checks that a store keeps no plaintext. It writes a
// random 32-byte canary through put, then reads every file of raw (the
// store's backing files: a directory, a bucket mounted as an fs.FS) and
// fails if the canary appears in any file as raw bytes, hex or base64. It
// covers TOM 000 §3 (encrypted volumes), 004 §2 and §5 (AES-256-GCM at
// rest).
//
// The check fails, too, when put succeeds but raw does not change, since
// then it has looked at the wrong place.
func EncryptedAtRest(put func(ctx context.Context, plaintext []byte) error, raw fs.FS) Check {
	return Check{
		Name:        "encryption-at-rest",
		Clauses:     []string{"000-0.1", "000-3.2", "004-2.2", "004-5.1"},
		Description: "a random canary written through the store appears nowhere in the store's bytes at rest (raw, hex or base64)",
		Run: func(ctx context.Context) error {
			if put == nil || raw == nil {
				return fmt.Errorf("%w: encryption at rest needs a put function and the store's files", ErrNotCovered)
			}
			before, err := snapshot(raw)
			if err != nil {
				return fmt.Errorf("%w: reading the store's files: %v", ErrNotCovered, err)
			}
			canary := make([]byte, 32)
			if _, err := rand.Read(canary); err != nil {
				return err
			}
			// A printable canary, so that stores that transcode text
			// still carry it recognisably.
			plain := []byte("tomtest-canary-" + hex.EncodeToString(canary))
			if err := put(ctx, plain); err != nil {
				return failf("writing the canary: %v", err)
			}
			after, err := snapshot(raw)
			if err != nil {
				return failf("reading the store's files: %v", err)
			}
			changed := false
			for name, b := range after {
				if old, ok := before[name]; !ok || !bytes.Equal(old, b) {
					changed = true
				}
			}
			if !changed {
				return failf("the store wrote nothing to the files given; cannot inspect what it keeps at rest")
			}
			needles := [][]byte{
				plain,
				[]byte(hex.EncodeToString(plain)),
				[]byte(base64.StdEncoding.EncodeToString(plain)),
				[]byte(base64.RawURLEncoding.EncodeToString(plain)),
				canary,
			}
			for name, b := range after {
				for _, n := range needles {
					if bytes.Contains(b, n) {
						return failf("plaintext canary found at rest in %s", name)
					}
				}
			}
			return nil
		},
	}
}

// maxSnapshot bounds how much of a store the check reads.
const maxSnapshot = 512 << 20

func snapshot(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	total := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		total += len(b)
		if total > maxSnapshot {
			return fmt.Errorf("store larger than %d bytes", maxSnapshot)
		}
		out[p] = b
		return nil
	})
	return out, err
}
