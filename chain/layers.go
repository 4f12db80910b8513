package chain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

// Layer is a committed layer.
type Layer struct {
	ChainID digest.Digest
	DiffID  digest.Digest
	Parent  digest.Digest
	Size    int64
	CacheID string
}

// ChainIDs computes the ChainID of every prefix of a diffID list.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	return identity.ChainIDs(append([]digest.Digest(nil), diffIDs...))
}

func chainOf(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return identity.ChainID([]digest.Digest{parent, diffID})
}

func newCacheID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Stage is one layer on its way into the store: its driver directory exists,
// its content is applied by exactly one caller (Claim), and it is committed
// after its parent. Stages of one chain ID are shared between concurrent
// callers, so a layer wanted by two pulls is extracted once.
type Stage struct {
	s           *Store
	ChainID     digest.Digest
	DiffID      digest.Digest
	cacheID     string
	parentChain digest.Digest
	parentStage *Stage

	claimOnce sync.Once
	claimed   bool
	applied   chan struct{}
	applyErr  error
	size      int64
	tarSplit  []byte
	created   bool

	commitMu  sync.Mutex
	committed *Layer
	users     int // guarded by s.stagesMu
}

// StageChain prepares stages for diffIDs stacked on the committed layer
// parent ("" for none). Callers skip layers already present first. Each
// stage must be Released by every caller that got it.
func (s *Store) StageChain(ctx context.Context, parent digest.Digest, diffIDs []digest.Digest) ([]*Stage, error) {
	parentCache := ""
	if parent != "" {
		l, err := s.Layer(ctx, parent)
		if err != nil {
			return nil, fmt.Errorf("stage on %s: %w", parent, err)
		}
		parentCache = l.CacheID
	}
	stages := make([]*Stage, 0, len(diffIDs))
	chainID := parent
	var prev *Stage
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	for _, diffID := range diffIDs {
		if err := diffID.Validate(); err != nil {
			s.releaseLocked(ctx, stages)
			return nil, fmt.Errorf("stage layer: diff id %q: %w", diffID, errdefs.ErrInvalidArgument)
		}
		chainID = chainOf(chainID, diffID)
		st, ok := s.stages[chainID]
		if !ok {
			st = &Stage{s: s, ChainID: chainID, DiffID: diffID, cacheID: newCacheID(),
				parentChain: parent, parentStage: prev, applied: make(chan struct{})}
			if prev != nil {
				st.parentChain = prev.ChainID
			}
			if s.driver.IndependentLayers() {
				pc := parentCache
				if prev != nil {
					pc = prev.cacheID
				}
				if err := s.driver.Create(ctx, st.cacheID, pc); err != nil {
					s.releaseLocked(ctx, stages)
					return nil, fmt.Errorf("stage layer %s: %w", chainID, err)
				}
				st.created = true
			}
			s.stages[chainID] = st
		}
		st.users++
		stages = append(stages, st)
		prev = st
	}
	return stages, nil
}

// Claim reports whether the caller is the one to Apply this stage's content;
// the others Wait for it.
func (st *Stage) Claim() bool {
	won := false
	st.claimOnce.Do(func() { st.claimed, won = true, true })
	return won
}

// Wait blocks until the stage's content is applied (by whoever claimed it).
func (st *Stage) Wait(ctx context.Context) error {
	select {
	case <-st.applied:
		return st.applyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Apply extracts the layer stream (gzip, zstd or plain tar) into the stage's
// directory in one pass, computing the diffID and the tar-split metadata.
// The diffID must match the one the stage was made for. Only the caller that
// won Claim may call it.
func (st *Stage) Apply(ctx context.Context, r io.Reader) (err error) {
	defer func() {
		st.applyErr = err
		close(st.applied)
	}()
	if !st.s.driver.IndependentLayers() {
		parentCache := ""
		if st.parentStage != nil {
			// vfs starts as a copy of its parent, so it waits for it.
			if err := st.parentStage.Wait(ctx); err != nil {
				return fmt.Errorf("layer %s: parent: %w", st.ChainID, err)
			}
			parentCache = st.parentStage.cacheID
		} else if st.parentChain != "" {
			l, err := st.s.Layer(ctx, st.parentChain)
			if err != nil {
				return err
			}
			parentCache = l.CacheID
		}
		if err := st.s.driver.Create(ctx, st.cacheID, parentCache); err != nil {
			return fmt.Errorf("layer %s: %w", st.ChainID, err)
		}
		st.created = true
	}
	res, err := st.s.applyStream(ctx, st.cacheID, r)
	if err != nil {
		return fmt.Errorf("layer %s: %w", st.ChainID, err)
	}
	if res.diffID != st.DiffID {
		return fmt.Errorf("layer %s: %w: content has diff id %s, expected %s", st.ChainID, errdefs.ErrInvalidArgument, res.diffID, st.DiffID)
	}
	st.size, st.tarSplit = res.size, res.tarSplit
	return nil
}

type applyResult struct {
	diffID   digest.Digest
	size     int64
	tarSplit []byte
}

// applyStream is the one pass: decompress → hash → tar-split → driver.
func (s *Store) applyStream(ctx context.Context, cacheID string, r io.Reader) (applyResult, error) {
	plain, _, err := Decompress(r)
	if err != nil {
		return applyResult{}, err
	}
	defer plain.Close()
	h := sha256.New()
	var tsBuf bytes.Buffer
	// tar-split metadata is small and read rarely: compress it fast.
	gz, _ := gzip.NewWriterLevel(&tsBuf, gzip.BestSpeed)
	tarStream, done, err := asm.NewInputTarStreamWithDone(io.TeeReader(plain, h), storage.NewJSONPacker(gz), nil)
	if err != nil {
		return applyResult{}, err
	}
	stats, applyErr := s.driver.ApplyDiff(ctx, cacheID, tarStream, mount.ApplyOptions{AllowDeviceNodes: s.allowDevices})
	if applyErr == nil {
		// The driver stops at the end-of-archive marker; the padding after
		// it is part of the diffID and of the tar-split record.
		_, applyErr = io.Copy(io.Discard, tarStream)
	}
	tarStream.Close()
	splitErr := <-done
	if applyErr != nil {
		return applyResult{}, applyErr
	}
	if splitErr != nil {
		return applyResult{}, fmt.Errorf("read layer tar: %w", splitErr)
	}
	if err := gz.Close(); err != nil {
		return applyResult{}, err
	}
	if err := s.syncer.sync(func() error { return s.driver.Sync(ctx, cacheID) }); err != nil {
		return applyResult{}, fmt.Errorf("sync layer: %w", err)
	}
	return applyResult{diffID: digest.NewDigest(digest.SHA256, h), size: stats.Size, tarSplit: tsBuf.Bytes()}, nil
}

// Commit records the stage as a layer, after its parent, in one transaction
// together with whatever extra records the caller adds (distribution maps).
// Committing a stage twice returns the first result.
func (st *Stage) Commit(ctx context.Context, extra func(tx *cas.Tx) error) (Layer, error) {
	st.commitMu.Lock()
	defer st.commitMu.Unlock()
	if st.committed != nil {
		if extra != nil {
			if err := st.s.cas.Index.Update(ctx, extra); err != nil {
				return Layer{}, err
			}
		}
		return *st.committed, nil
	}
	if err := st.Wait(ctx); err != nil {
		return Layer{}, err
	}
	if st.parentStage != nil && !st.parentStage.isCommitted() {
		return Layer{}, fmt.Errorf("commit layer %s: parent %s is not committed yet", st.ChainID, st.parentChain)
	}
	l := Layer{ChainID: st.ChainID, DiffID: st.DiffID, Parent: st.parentChain, Size: st.size, CacheID: st.cacheID}
	l, err := st.s.commitLayer(ctx, l, st.tarSplit, extra)
	if err != nil {
		return Layer{}, err
	}
	st.committed = &l
	return l, nil
}

func (st *Stage) isCommitted() bool {
	st.commitMu.Lock()
	defer st.commitMu.Unlock()
	return st.committed != nil
}

// commitLayer writes the record; when the chain ID is already recorded
// (registered meanwhile by another path) the existing layer wins and the
// new directory is dropped.
func (s *Store) commitLayer(ctx context.Context, l Layer, tarSplit []byte, extra func(tx *cas.Tx) error) (Layer, error) {
	var existing *Layer
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		existing = nil
		ldb := tx.LayerDB()
		if rec, err := ldb.Get(l.ChainID, false); err == nil && rec.State == "" {
			e := recordToLayer(rec)
			existing = &e
		} else {
			if l.Parent != "" {
				if _, err := ldb.AddReferences(l.Parent, 1); err != nil {
					return fmt.Errorf("parent of %s: %w", l.ChainID, err)
				}
			}
			err := ldb.Put(cas.LayerRecord{ChainID: l.ChainID, DiffID: l.DiffID, Parent: l.Parent,
				Size: l.Size, CacheID: l.CacheID, TarSplit: tarSplit})
			if err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		return Layer{}, fmt.Errorf("commit layer %s: %w", l.ChainID, err)
	}
	if existing != nil {
		s.driver.Remove(ctx, l.CacheID)
		return *existing, nil
	}
	return l, nil
}

// Release gives up the caller's use of stages. A stage nobody uses any more
// and that was never committed has its directory removed.
func (s *Store) Release(ctx context.Context, stages []*Stage) {
	s.stagesMu.Lock()
	defer s.stagesMu.Unlock()
	s.releaseLocked(ctx, stages)
}

func (s *Store) releaseLocked(ctx context.Context, stages []*Stage) {
	for _, st := range stages {
		st.users--
		if st.users > 0 {
			continue
		}
		delete(s.stages, st.ChainID)
		if !st.isCommitted() && st.created {
			s.driver.Remove(context.WithoutCancel(ctx), st.cacheID)
		}
	}
}

// RegisterLayer applies one layer stream on top of the committed layer
// parent ("" for none) when the diffID is not known in advance (load,
// import, build). An identical layer already present is reused. Callers
// hold a Lease until an image references the layer.
func (s *Store) RegisterLayer(ctx context.Context, parent digest.Digest, r io.Reader, extra func(tx *cas.Tx, l Layer) error) (Layer, error) {
	parentCache := ""
	if parent != "" {
		pl, err := s.Layer(ctx, parent)
		if err != nil {
			return Layer{}, fmt.Errorf("register layer: parent: %w", err)
		}
		parentCache = pl.CacheID
	}
	cacheID := newCacheID()
	if err := s.driver.Create(ctx, cacheID, parentCache); err != nil {
		return Layer{}, fmt.Errorf("register layer: %w", err)
	}
	res, err := s.applyStream(ctx, cacheID, r)
	if err != nil {
		s.driver.Remove(context.WithoutCancel(ctx), cacheID)
		return Layer{}, fmt.Errorf("register layer: %w", err)
	}
	l := Layer{ChainID: chainOf(parent, res.diffID), DiffID: res.diffID, Parent: parent, Size: res.size, CacheID: cacheID}
	var txExtra func(tx *cas.Tx) error
	if extra != nil {
		txExtra = func(tx *cas.Tx) error { return extra(tx, l) }
	}
	committed, err := s.commitLayer(ctx, l, res.tarSplit, txExtra)
	if err != nil {
		s.driver.Remove(context.WithoutCancel(ctx), cacheID)
		return Layer{}, err
	}
	return committed, nil
}

func recordToLayer(r cas.LayerRecord) Layer {
	return Layer{ChainID: r.ChainID, DiffID: r.DiffID, Parent: r.Parent, Size: r.Size, CacheID: r.CacheID}
}

// Layer returns a committed layer.
func (s *Store) Layer(ctx context.Context, chainID digest.Digest) (Layer, error) {
	var l Layer
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		rec, err := tx.LayerDB().Get(chainID, false)
		if err != nil {
			return err
		}
		if rec.State != "" {
			return fmt.Errorf("layer %s is being deleted: %w", chainID, errdefs.ErrNotFound)
		}
		l = recordToLayer(rec)
		return nil
	})
	return l, err
}

// HasLayer reports whether a complete layer with this chain ID is recorded.
func (s *Store) HasLayer(ctx context.Context, chainID digest.Digest) bool {
	_, err := s.Layer(ctx, chainID)
	return err == nil
}

// LayerTar reassembles the exact tar a layer was registered from, from its
// tar-split record and its files.
func (s *Store) LayerTar(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error) {
	var rec cas.LayerRecord
	err := s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		var err error
		rec, err = tx.LayerDB().Get(chainID, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("layer tar %s: %w", chainID, err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(rec.TarSplit))
	if err != nil {
		return nil, fmt.Errorf("layer tar %s: tar-split: %w", chainID, err)
	}
	getter := storage.NewPathFileGetter(s.driver.DiffPath(rec.CacheID))
	return asm.NewOutputTarStream(getter, storage.NewJSONUnpacker(gz)), nil
}

// errLayerInUse is wrapped when GC or delete meets a referenced layer.
var errLayerInUse = errors.New("layer in use")
