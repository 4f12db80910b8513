package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Changes is GET /containers/{id}/changes: what the container changed in
// its filesystem, relative to its image and init layer, sorted by path.
// overlay2 reads the container's upper directory (whiteouts are
// deletions, opaque directories too; a path present in a lower layer is a
// modification, any other an addition), as dockerd's overlay differ does.
// vfs compares the container's directory with its init layer's.
func (m *Manager) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	rec := c.view()
	drv := m.cfg.Store.Driver()
	var changes []container.FilesystemChange
	if drv.Name() == "overlay2" {
		// The record keeps the layer's directories from its create (as
		// inspect shows them), so the store need not be asked.
		gd := rec.GraphDriverData
		var lowers []string
		if gd["LowerDir"] != "" {
			lowers = strings.Split(gd["LowerDir"], ":")
		}
		changes, err = overlayChanges(ctx, lowers, gd["UpperDir"])
	} else {
		rw, rerr := m.cfg.Store.RWLayerOf(ctx, rec.ID)
		if rerr != nil {
			return nil, fmt.Errorf("changes of container %s: %w", rec.ID, rerr)
		}
		changes, err = naiveChanges(ctx, drv.DiffPath(rw.InitID), drv.DiffPath(rw.MountID))
	}
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", rec.ID, err)
	}
	sortChanges(changes)
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	return changes, nil
}

// sortChanges orders changes by path.
func sortChanges(changes []container.FilesystemChange) {
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
}

// overlayChanges is dockerd's archive.OverlayChanges: a walk of the
// upper directory.
func overlayChanges(ctx context.Context, lowers []string, upper string) ([]container.FilesystemChange, error) {
	var changes []container.FilesystemChange
	changedDirs := map[string]bool{}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		cpath := filepath.Join("/", rel)
		if cpath == "/" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		change := container.FilesystemChange{Path: cpath}
		if overlayDeleted(p, fi) {
			change.Kind = container.ChangeDelete
		} else {
			change.Kind = container.ChangeAdd
			for _, l := range lowers {
				st, err := os.Stat(filepath.Join(l, rel))
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
						continue
					}
					return err
				}
				// A directory that only holds changes is no change of
				// its own when its metadata is the lower one's.
				if st.IsDir() && fi.IsDir() && fi.Size() == st.Size() && fi.Mode() == st.Mode() && sameFsTime(fi.ModTime(), st.ModTime()) {
					return nil
				}
				change.Kind = container.ChangeModify
				break
			}
		}
		// The parent of an added or deleted path is a modified
		// directory even if its own metadata did not change.
		if fi.IsDir() {
			changedDirs[cpath] = true
		}
		if change.Kind == container.ChangeAdd || change.Kind == container.ChangeDelete {
			parent := filepath.Dir(cpath)
			if !changedDirs[parent] && parent != "/" {
				changes = append(changes, container.FilesystemChange{Path: parent, Kind: container.ChangeModify})
				changedDirs[parent] = true
			}
		}
		changes = append(changes, change)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return changes, nil
}

// overlayDeleted reports a whiteout (a 0/0 character device) or an opaque
// directory.
func overlayDeleted(p string, fi fs.FileInfo) bool {
	if fi.Mode()&os.ModeCharDevice != 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && unix.Major(st.Rdev) == 0 && unix.Minor(st.Rdev) == 0 {
			return true
		}
	}
	if fi.IsDir() {
		buf := make([]byte, 4)
		for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
			if n, err := unix.Lgetxattr(p, name, buf); err == nil && n == 1 && buf[0] == 'y' {
				return true
			}
		}
	}
	return false
}

// sameFsTime compares times as dockerd does: equal, or equal in seconds
// when one of them has no sub-second part (a filesystem without it).
func sameFsTime(a, b time.Time) bool {
	return a.Equal(b) || (a.Unix() == b.Unix() && (a.Nanosecond() == 0 || b.Nanosecond() == 0))
}

// fileState is what naiveChanges compares.
type fileState struct {
	st  syscall.Stat_t
	cap []byte
}

// naiveChanges compares two full trees (vfs): the container's against
// its init layer, as dockerd's ChangesDirs does.
func naiveChanges(ctx context.Context, oldRoot, newRoot string) ([]container.FilesystemChange, error) {
	collect := func(root string) (map[string]fileState, error) {
		out := map[string]fileState{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			var state fileState
			if err := syscall.Lstat(p, &state.st); err != nil {
				return err
			}
			buf := make([]byte, 128)
			if n, err := unix.Lgetxattr(p, "security.capability", buf); err == nil {
				state.cap = buf[:n]
			}
			out[filepath.Join("/", rel)] = state
			return nil
		})
		return out, err
	}
	olds, err := collect(oldRoot)
	if err != nil {
		return nil, err
	}
	news, err := collect(newRoot)
	if err != nil {
		return nil, err
	}
	var changes []container.FilesystemChange
	changed := map[string]bool{}
	markParents := func(p string) {
		for d := filepath.Dir(p); d != "/" && !changed[d]; d = filepath.Dir(d) {
			changed[d] = true
			changes = append(changes, container.FilesystemChange{Path: d, Kind: container.ChangeModify})
		}
	}
	for p, n := range news {
		if p == "/" {
			continue
		}
		o, ok := olds[p]
		switch {
		case !ok:
			changes = append(changes, container.FilesystemChange{Path: p, Kind: container.ChangeAdd})
			changed[p] = true
			markParents(p)
		case statDifferent(&o.st, &n.st) || !bytes.Equal(o.cap, n.cap):
			if !changed[p] {
				changes = append(changes, container.FilesystemChange{Path: p, Kind: container.ChangeModify})
				changed[p] = true
			}
			markParents(p)
		}
	}
	for p := range olds {
		if _, ok := news[p]; ok || p == "/" {
			continue
		}
		// A deleted directory is reported once, not with its content.
		if dir := filepath.Dir(p); dir != "/" {
			if _, kept := news[dir]; !kept {
				continue
			}
		}
		changes = append(changes, container.FilesystemChange{Path: p, Kind: container.ChangeDelete})
		markParents(p)
	}
	return changes, nil
}

// statDifferent is dockerd's comparison: type and permissions, owner,
// device, and for non-directories size and mtime.
func statDifferent(o, n *syscall.Stat_t) bool {
	if o.Mode != n.Mode || o.Uid != n.Uid || o.Gid != n.Gid || o.Rdev != n.Rdev {
		return true
	}
	if o.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		if o.Size != n.Size || !sameFsTime(time.Unix(o.Mtim.Unix()), time.Unix(n.Mtim.Unix())) {
			return true
		}
	}
	return false
}
