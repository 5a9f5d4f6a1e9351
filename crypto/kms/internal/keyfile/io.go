package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tomkit/tomkit/internal/errtext"
)

// ErrExist reports a file that Write with create found in place.
var ErrExist = fs.ErrExist

// Lock takes an exclusive lock on path + ".lock", creating it if needed.
// Closing the returned file releases the lock.
func Lock(path string) (*os.File, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errtext.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, errtext.Errorf("lock: %w", err)
	}
	return lock, nil
}

// tempPattern names the temporary files of the keyring file path.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// RemoveStale removes temporary files left by a writer that crashed: they
// may hold keys that were shredded since. Temporary files exist only while
// their writer holds the lock, which the caller must hold.
func RemoveStale(path string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPattern(path)))
	for _, f := range stale {
		os.Remove(f)
	}
}

// Write writes b to path atomically with mode 0600: a temporary file in
// the same directory, fsync, rename (or, with create, a link that fails
// with [ErrExist] rather than replace a file), fsync of the directory.
// The caller holds the lock, except when creating.
func Write(path string, b []byte, create bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if create {
		// Link fails if the file appeared meanwhile: never clobber a keyring.
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrExist, path)
			}
			return err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
