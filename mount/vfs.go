package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// VFS is the fallback driver for kernels or filesystems without overlay: a
// layer's diff dir is a full copy of its parent with the layer's tar
// applied on top, whiteouts as real deletions. Slow and large, but it needs
// nothing from the kernel. Its layout is <root>/<id>/diff.
type VFS struct {
	*layers
}

var _ Driver = (*VFS)(nil)

// NewVFS opens (creating if needed) a vfs layer store at root,
// <data-root>/layers.
func NewVFS(root string) (*VFS, error) {
	l, err := newLayers(root)
	if err != nil {
		return nil, fmt.Errorf("vfs: %w", err)
	}
	return &VFS{layers: l}, nil
}

// Name returns "vfs".
func (d *VFS) Name() string { return "vfs" }

// IndependentLayers is false: a layer starts as a copy of its parent, so
// the parent must be complete before Create.
func (d *VFS) IndependentLayers() bool { return false }

// Create makes the layer's directory, copying the parent's files into it
// with their owners, modes, times, xattrs and hard links.
func (d *VFS) Create(ctx context.Context, id, parent string) (retErr error) {
	if err := validID(id); err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	if parent != "" {
		if err := validID(parent); err != nil {
			return fmt.Errorf("create layer %s: parent: %w", id, err)
		}
		if _, err := os.Lstat(d.DiffPath(parent)); err != nil {
			return fmt.Errorf("create layer %s: parent: %w", id, err)
		}
	}
	dir := d.dir(id)
	if err := os.Mkdir(dir, 0o701); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	diff := filepath.Join(dir, diffDirName)
	if err := os.Mkdir(diff, 0o755); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	if parent == "" {
		return nil
	}
	if err := CopyTree(ctx, d.DiffPath(parent), diff); err != nil {
		return fmt.Errorf("create layer %s: copy parent %s: %w", id, parent, err)
	}
	return nil
}

// ApplyDiff writes the layer tar over the copy of the parent, deleting what
// its whiteouts name. On error the diff dir is left empty and the layer
// should be removed.
func (d *VFS) ApplyDiff(ctx context.Context, id string, r io.Reader, opts ApplyOptions) (ApplyStats, error) {
	return d.applyInto(ctx, id, r, whiteoutDelete, opts)
}

// Mount returns the diff dir, which already is the whole root; only the
// users are counted.
func (d *VFS) Mount(ctx context.Context, id string) (string, error) {
	if err := validID(id); err != nil {
		return "", fmt.Errorf("mount layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	diff := d.DiffPath(id)
	if _, err := os.Lstat(diff); err != nil {
		return "", fmt.Errorf("mount layer %s: %w", id, err)
	}
	d.refs[id]++
	return diff, nil
}

// Unmount drops one user of the layer.
func (d *VFS) Unmount(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("unmount layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs[id] > 1 {
		d.refs[id]--
	} else {
		delete(d.refs, id)
	}
	return nil
}

// Remove deletes the layer directory. Removing a missing layer succeeds.
func (d *VFS) Remove(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.refs, id)
	if err := removeLayerDir(d.dir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}
