package chain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/cas"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// RWLayer is a container's read-write layer: an init layer (Docker's
// "<id>-init": placeholders the runtime bind-mounts over) on the image's
// chain, and the writable layer on top of it.
type RWLayer struct {
	Container string
	MountID   string
	InitID    string
	Parent    digest.Digest // ChainID of the image's top layer ("" for scratch)
}

// initEntries are the placeholders of Docker's init layer.
var initEntries = []struct {
	path string
	dir  bool
	link string
}{
	{path: "dev/pts", dir: true},
	{path: "dev/shm", dir: true},
	{path: "proc", dir: true},
	{path: "sys", dir: true},
	{path: ".dockerenv"},
	{path: "etc/resolv.conf"},
	{path: "etc/hosts"},
	{path: "etc/hostname"},
	{path: "dev/console"},
	{path: "etc/mtab", link: "/proc/mounts"},
}

// CreateRWLayer makes a container's init and read-write layers on the image
// chain whose top is parent, and records them (holding a reference on
// parent) in one transaction. A crash before the record leaves only
// directories, which the next Open sweeps.
func (s *Store) CreateRWLayer(ctx context.Context, container string, parent digest.Digest) (RWLayer, error) {
	parentCache := ""
	if parent != "" {
		l, err := s.Layer(ctx, parent)
		if err != nil {
			return RWLayer{}, fmt.Errorf("create container layer: %w", err)
		}
		parentCache = l.CacheID
	}
	rw := RWLayer{Container: container, MountID: newCacheID(), Parent: parent}
	rw.InitID = rw.MountID + "-init"
	cleanup := func() {
		bg := context.WithoutCancel(ctx)
		s.driver.Remove(bg, rw.MountID)
		s.driver.Remove(bg, rw.InitID)
	}
	if err := s.driver.Create(ctx, rw.InitID, parentCache); err != nil {
		return RWLayer{}, fmt.Errorf("create init layer: %w", err)
	}
	if err := writeInitLayer(s.driver.DiffPath(rw.InitID)); err != nil {
		cleanup()
		return RWLayer{}, fmt.Errorf("create init layer: %w", err)
	}
	if err := s.driver.Create(ctx, rw.MountID, rw.InitID); err != nil {
		cleanup()
		return RWLayer{}, fmt.Errorf("create container layer: %w", err)
	}
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		if _, err := tx.LayerDB().GetMount(container); err == nil {
			return fmt.Errorf("container %s already has a layer: %w", container, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			if _, err := tx.LayerDB().AddReferences(parent, 1); err != nil {
				return err
			}
		}
		return tx.LayerDB().PutMount(cas.MountRecord{Container: container, MountID: rw.MountID, InitID: rw.InitID, Parent: parent})
	})
	if err != nil {
		cleanup()
		return RWLayer{}, fmt.Errorf("create container layer: %w", err)
	}
	return rw, nil
}

func writeInitLayer(root string) error {
	for _, e := range initEntries {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var err error
		switch {
		case e.dir:
			err = os.MkdirAll(p, 0o755)
		case e.link != "":
			err = os.Symlink(e.link, p)
		default:
			var f *os.File
			f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
			if err == nil {
				err = f.Close()
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return unix.Chmod(filepath.Join(root, "dev/shm"), 0o1777)
}

// RWLayerOf returns a container's recorded read-write layer.
func (s *Store) RWLayerOf(ctx context.Context, container string) (RWLayer, error) {
	var rw RWLayer
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		m, err := tx.LayerDB().GetMount(container)
		if err != nil {
			return err
		}
		rw = RWLayer{Container: m.Container, MountID: m.MountID, InitID: m.InitID, Parent: m.Parent}
		return nil
	})
	return rw, err
}

// MountRW mounts a container's layer stack and returns the root path.
func (s *Store) MountRW(ctx context.Context, container string) (string, error) {
	rw, err := s.RWLayerOf(ctx, container)
	if err != nil {
		return "", err
	}
	return s.driver.Mount(ctx, rw.MountID)
}

// UnmountRW undoes one MountRW.
func (s *Store) UnmountRW(ctx context.Context, container string) error {
	rw, err := s.RWLayerOf(ctx, container)
	if err != nil {
		return err
	}
	return s.driver.Unmount(ctx, rw.MountID)
}

// RWLayers lists every container layer record (for reconciling at start).
func (s *Store) RWLayers(ctx context.Context) ([]RWLayer, error) {
	var out []RWLayer
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		ms, err := tx.LayerDB().ListMounts()
		for _, m := range ms {
			out = append(out, RWLayer{Container: m.Container, MountID: m.MountID, InitID: m.InitID, Parent: m.Parent})
		}
		return err
	})
	return out, err
}

// RemoveRWLayer unmounts and deletes a container's layers, drops the
// reference on the image chain and collects layers nothing holds any more
// (an image force-deleted while the container used it).
func (s *Store) RemoveRWLayer(ctx context.Context, container string) error {
	rw, err := s.RWLayerOf(ctx, container)
	if err != nil {
		return err
	}
	// Unmount until the driver's count is gone; a daemon restart may have
	// left it mounted once without an in-memory count.
	for range 4 {
		if err := s.driver.Unmount(ctx, rw.MountID); err != nil {
			break
		}
	}
	err = s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		if rw.Parent != "" && tx.LayerDB().Has(rw.Parent) {
			if _, err := tx.LayerDB().AddReferences(rw.Parent, -1); err != nil {
				return err
			}
		}
		return tx.LayerDB().DeleteMount(container)
	})
	if err != nil {
		return fmt.Errorf("remove container layer: %w", err)
	}
	if err := s.driver.Remove(ctx, rw.MountID); err != nil {
		return fmt.Errorf("remove container layer: %w", err)
	}
	if err := s.driver.Remove(ctx, rw.InitID); err != nil {
		return fmt.Errorf("remove init layer: %w", err)
	}
	_, err = s.collectChain(ctx, rw.Parent)
	return err
}

// collectChain deletes, from top down, the layers of a chain that nothing
// references any more, and returns their ChainIDs.
func (s *Store) collectChain(ctx context.Context, top digest.Digest) ([]digest.Digest, error) {
	var removed []digest.Digest
	for c := top; c != ""; {
		var rec cas.LayerRecord
		err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
			var err error
			rec, err = tx.LayerDB().Get(c, false)
			return err
		})
		if err != nil || rec.References > 0 {
			return removed, nil
		}
		if err := s.deleteLayer(ctx, c); err != nil {
			if errors.Is(err, errLayerInUse) {
				return removed, nil
			}
			return removed, err
		}
		removed = append(removed, c)
		c = rec.Parent
	}
	return removed, nil
}
