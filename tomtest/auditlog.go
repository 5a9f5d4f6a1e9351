package tomtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxTamperProbes bounds how many tampered copies [AuditIntegrity] verifies.
const MaxTamperProbes = 48

// AuditIntegrity checks a tamper-evident log kept in the directory dir:
// verify(ctx, dir) must succeed on the log as it is, and must fail on every
// copy of it in which one byte has been flipped (up to [MaxTamperProbes]
// copies, the flipped positions spread over every non-empty file). The
// second half proves that the verifier can fail at all. It covers TOM 004
// §1 (access logging), §2 (logging of relevant actions) and 000 §6
// (structured logs).
//
// Files whose names end in ".lock" are not tampered with.
func AuditIntegrity(dir string, verify func(ctx context.Context, dir string) error) Check {
	return Check{
		Name:        "audit-integrity",
		Clauses:     []string{"000-6.2", "004-1.3", "004-2.3"},
		Description: "the audit log in " + dir + " verifies, and every copy with one flipped byte fails to verify",
		Run: func(ctx context.Context) error {
			if dir == "" || verify == nil {
				return fmt.Errorf("%w: no audit log or verifier given", ErrNotCovered)
			}
			if err := verify(ctx, dir); err != nil {
				return failf("audit log %s does not verify: %v", dir, err)
			}
			files, err := snapshot(os.DirFS(dir))
			if err != nil {
				return failf("reading audit log %s: %v", dir, err)
			}
			var names []string
			total := 0
			for n, b := range files {
				if len(b) > 0 && !strings.HasSuffix(n, ".lock") {
					names = append(names, n)
					total += len(b)
				}
			}
			if total == 0 {
				return failf("audit log %s is empty", dir)
			}
			sort.Strings(names)
			probes := 0
			for _, n := range names {
				b := files[n]
				// Positions for this file, proportional to its size,
				// always including the first and the last byte.
				k := max(2, MaxTamperProbes*len(b)/total)
				for i := 0; i < k && probes < MaxTamperProbes; i++ {
					pos := 0
					if k > 1 {
						pos = i * (len(b) - 1) / (k - 1)
					}
					probes++
					if err := tamperedFails(ctx, dir, files, n, pos, verify); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

func tamperedFails(ctx context.Context, dir string, files map[string][]byte, name string, pos int, verify func(context.Context, string) error) error {
	tmp, err := os.MkdirTemp("", "tomtest-audit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for n, b := range files {
		p := filepath.Join(tmp, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if n == name {
			b = append([]byte(nil), b...)
			b[pos] ^= 0x01
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	if err := verify(ctx, tmp); err == nil {
		return failf("verifier accepted %s with byte %d flipped: the log is not tamper-evident", name, pos)
	}
	return nil
}
