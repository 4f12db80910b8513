package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// WritePidfile records the current process in path, as dockerd's pidfile:
// it refuses when the file names a process that is alive, and replaces a
// stale one. The file also stays flock'ed while the daemon runs, so two
// daemons started at the same moment cannot both pass the check.
//
// release removes the file (only if it still holds this process's PID) and
// drops the lock; call it on shutdown.
func WritePidfile(path string) (release func() error, err error) {
	if path == "" {
		return nil, errors.New("pid file: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("pid file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file %s: %w", path, err)
	}
	inUse := fmt.Errorf("pid file found, ensure berthd is not running or delete %s", path)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, inUse
		}
		return nil, fmt.Errorf("lock pid file %s: %w", path, err)
	}
	old, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read pid file %s: %w", path, err)
	}
	// Anything that is not the PID of a live process is stale (dockerd
	// also ignores unparsable content).
	if pid, err := strconv.Atoi(strings.TrimSpace(string(old))); err == nil && pid > 0 && processAlive(pid) {
		f.Close()
		return nil, inUse
	}
	own := strconv.Itoa(os.Getpid())
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid file %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(own), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid file %s: %w", path, err)
	}

	var once sync.Once
	var relErr error
	release = func() error {
		once.Do(func() {
			defer f.Close()
			// Remove only our own file: if someone deleted it and another
			// berthd wrote a new one, that one is not ours to remove.
			held, err1 := f.Stat()
			cur, err2 := os.Stat(path)
			if err1 != nil || err2 != nil || !os.SameFile(held, cur) {
				return
			}
			if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != own {
				return
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				relErr = fmt.Errorf("remove pid file %s: %w", path, err)
			}
		})
		return relErr
	}
	return release, nil
}

// processAlive reports whether pid names a process; EPERM means it exists
// but belongs to someone else.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
