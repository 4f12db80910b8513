package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Directory and file names inside a layer directory, as Docker's overlay2
// names them.
const (
	diffDirName   = "diff"
	workDirName   = "work"
	mergedDirName = "merged"
	linkFileName  = "link"
	lowerFileName = "lower"
	linkDirName   = "l"

	maxIDLen = 128
)

// validID reports whether id can name a layer directory. The character set
// is narrow because ids end up in overlay mount options, where ':' and ','
// are separators; "l" is the short-link directory; names starting with '.'
// are kept for the driver's own temporary directories.
func validID(id string) error {
	if id == "" || len(id) > maxIDLen || id == linkDirName {
		return fmt.Errorf("invalid layer id %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return fmt.Errorf("invalid layer id %q", id)
		}
	}
	return nil
}

// layers is what both drivers share: the root directory, the tar applier
// and the mount reference counts.
type layers struct {
	root string
	ap   *applier

	// mu guards refs and serialises mount state changes. refs counts the
	// users of each mounted layer in this process; a mount found on disk
	// (left by an earlier daemon) is adopted by the first Mount as one user.
	mu   sync.Mutex
	refs map[string]int
}

func newLayers(root string) (*layers, error) {
	if root == "" {
		return nil, errors.New("layers root is empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("layers root %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o701); err != nil {
		return nil, fmt.Errorf("create layers root: %w", err)
	}
	// Mount points are compared with /proc/self/mountinfo, which holds
	// resolved paths.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("layers root %s: %w", root, err)
	}
	return &layers{root: real, ap: newApplier(), refs: map[string]int{}}, nil
}

func (l *layers) dir(id string) string { return filepath.Join(l.root, id) }

// DiffPath returns the directory holding the layer's files, "" for an id
// that cannot name a layer.
func (l *layers) DiffPath(id string) string {
	if validID(id) != nil {
		return ""
	}
	return filepath.Join(l.root, id, diffDirName)
}

// Exists reports whether the layer directory is on disk.
func (l *layers) Exists(id string) bool {
	if validID(id) != nil {
		return false
	}
	_, err := os.Lstat(l.dir(id))
	return err == nil
}

// List returns the ids of every layer directory on disk.
func (l *layers) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(l.root)
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() && validID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Sync flushes the filesystem holding the layer with one syncfs.
func (l *layers) Sync(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	fd, err := unix.Open(l.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync layer %s: %w", id, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync layer %s: %w", id, err)
	}
	return nil
}

// applyInto runs the tar applier on the diff dir of an existing layer.
func (l *layers) applyInto(ctx context.Context, id string, r io.Reader, mode whiteoutMode, opts ApplyOptions) (ApplyStats, error) {
	if err := validID(id); err != nil {
		return ApplyStats{}, fmt.Errorf("apply layer: %w", err)
	}
	diff := l.DiffPath(id)
	if st, err := os.Lstat(diff); err != nil || !st.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", diff)
		}
		return ApplyStats{}, fmt.Errorf("apply layer %s: %w", id, err)
	}
	stats, err := l.ap.apply(ctx, diff, r, mode, opts)
	if err != nil {
		return ApplyStats{}, fmt.Errorf("apply layer %s: %w", id, err)
	}
	return stats, nil
}

// mounted reports whether path is a mount point; a missing path is not.
func mounted(path string) bool {
	ok, err := mountinfo.Mounted(path)
	return err == nil && ok
}

// removeLayerDir deletes a layer directory after detaching whatever is still
// mounted on its merged dir.
func removeLayerDir(dir string) error {
	merged := filepath.Join(dir, mergedDirName)
	for i := 0; i < 16 && mounted(merged); i++ {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", merged, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
