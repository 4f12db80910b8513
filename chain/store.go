package chain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/mount"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ImageUser is a container that uses an image; package run answers for it.
type ImageUser struct {
	ContainerID string
	Running     bool
}

// ImageUsersFunc lists the containers using each image.
type ImageUsersFunc func(ctx context.Context) map[digest.Digest][]ImageUser

// Store is the layer and image store of one data root.
type Store struct {
	cas          *cas.Store
	driver       mount.Driver
	allowDevices bool
	imageUsers   ImageUsersFunc
	now          func() time.Time

	// leases keeps GC away from layers that are registered but not yet
	// referenced by an image: pipelines hold a read lease, GC the write.
	leases sync.RWMutex

	syncer *fsSyncer

	stagesMu sync.Mutex
	stages   map[digest.Digest]*Stage

	gen    atomic.Uint64 // bumped by every change to images or references
	mu     sync.Mutex    // images and refs caches and the changes behind them
	images map[digest.Digest]*Image
	refs   map[string]digest.Digest // normalised reference → image ID
}

// Option tunes a Store.
type Option func(*Store)

// WithDeviceNodes lets layers create device nodes (root outside a user
// namespace, as Docker does).
func WithDeviceNodes(allow bool) Option { return func(s *Store) { s.allowDevices = allow } }

// WithImageUsers tells the store which containers use which images.
func WithImageUsers(fn ImageUsersFunc) Option { return func(s *Store) { s.imageUsers = fn } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open loads the store, after finishing or undoing whatever a crash left
// half-done.
func Open(ctx context.Context, st *cas.Store, drv mount.Driver, opts ...Option) (*Store, error) {
	s := &Store{
		cas:    st,
		driver: drv,
		now:    time.Now,
		syncer: newFSSyncer(),
		stages: map[digest.Digest]*Stage{},
		images: map[digest.Digest]*Image{},
		refs:   map[string]digest.Digest{},
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.recover(ctx); err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	if err := s.loadImages(ctx); err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	return s, nil
}

// CAS is the underlying content store.
func (s *Store) CAS() *cas.Store { return s.cas }

// Driver is the graph driver layers live in.
func (s *Store) Driver() mount.Driver { return s.driver }

// Lease keeps GC from collecting layers registered but not yet referenced;
// pipelines hold one from their first layer until their image is created.
func (s *Store) Lease() (release func()) {
	s.leases.RLock()
	return s.leases.RUnlock
}

func (s *Store) loadImages(ctx context.Context) error {
	type rec struct {
		id     digest.Digest
		parent digest.Digest
		last   time.Time
	}
	var recs []rec
	refs := map[string]digest.Digest{}
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		ids, err := tx.ImageDB().List()
		if err != nil {
			return err
		}
		for _, id := range ids {
			p, err := tx.ImageDB().Parent(id)
			if err != nil {
				return err
			}
			lu, _ := tx.ImageDB().LastUpdated(id)
			recs = append(recs, rec{id, p, lu})
		}
		return tx.Refs().All(func(ref string, id digest.Digest) error {
			refs[ref] = id
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		raw, err := s.cas.Blobs.ReadAll(ctx, r.id)
		if err != nil {
			return fmt.Errorf("image %s: config: %w", r.id, err)
		}
		cfg, err := ParseConfig(raw)
		if err != nil {
			return fmt.Errorf("image %s: %w", r.id, err)
		}
		img := &Image{ID: r.id, Config: cfg, RawConfig: raw, Parent: r.parent}
		if n := len(cfg.RootFS.DiffIDs); n > 0 {
			img.TopLayer = ChainIDs(cfg.RootFS.DiffIDs)[n-1]
			if err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
				for c := img.TopLayer; c != ""; {
					l, err := tx.LayerDB().Get(c, false)
					if err != nil {
						return fmt.Errorf("image %s: layer %s: %w", r.id, c, err)
					}
					img.Size += l.Size
					c = l.Parent
				}
				return nil
			}); err != nil {
				return err
			}
		}
		s.images[r.id] = img
	}
	for ref, id := range refs {
		img, ok := s.images[id]
		if !ok {
			continue
		}
		n, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			continue
		}
		s.addRefLocked(img, n, time.Time{})
	}
	for _, r := range recs {
		s.images[r.id].LastTagTime = r.last
	}
	return nil
}

// recover finishes what a crash interrupted: layer deletions under way,
// layers never referenced, driver directories without a record, temp files
// and stale ingests. It runs before anything else uses the store.
func (s *Store) recover(ctx context.Context) error {
	tmp := s.cas.TempDir()
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
	if _, err := s.collectLayers(ctx); err != nil {
		return err
	}
	if err := s.sweepDriverDirs(ctx); err != nil {
		return err
	}
	if _, err := s.cas.Blobs.SweepIngests(ctx, 24*time.Hour); err != nil {
		return err
	}
	return nil
}

// sweepDriverDirs removes layer directories no record names.
func (s *Store) sweepDriverDirs(ctx context.Context) error {
	known := map[string]bool{}
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		ids, err := tx.LayerDB().List()
		if err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := tx.LayerDB().Get(id, false)
			if err != nil {
				return err
			}
			known[rec.CacheID] = true
		}
		mounts, err := tx.LayerDB().ListMounts()
		for _, m := range mounts {
			known[m.MountID] = true
			known[m.InitID] = true
		}
		return err
	})
	if err != nil {
		return err
	}
	s.stagesMu.Lock()
	for _, st := range s.stages {
		known[st.cacheID] = true
	}
	s.stagesMu.Unlock()
	dirs, err := s.driver.List(ctx)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if !known[d] {
			if err := s.driver.Remove(ctx, d); err != nil {
				return fmt.Errorf("sweep layer dir %s: %w", d, err)
			}
		}
	}
	return nil
}

// Generation changes whenever an image or a reference does, so callers can
// cache what they computed from Images.
func (s *Store) Generation() uint64 { return s.gen.Load() }
