package chain

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/cas"
	"github.com/opencontainers/go-digest"
)

// GCResult tells what a collection removed.
type GCResult struct {
	Layers     []digest.Digest // ChainIDs
	Blobs      []digest.Digest
	BytesFreed int64
}

// GC removes layers nothing references and blobs no image, layer or
// reference names. It waits for running pipelines (leases) to finish.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	s.leases.Lock()
	defer s.leases.Unlock()
	var res GCResult
	layers, err := s.collectLayers(ctx)
	if err != nil {
		return res, err
	}
	res.Layers = layers
	if err := s.sweepDriverDirs(ctx); err != nil {
		return res, err
	}
	keep := map[digest.Digest]bool{}
	err = s.cas.Index.View(ctx, func(tx *cas.Tx) error {
		ids, err := tx.ImageDB().List()
		if err != nil {
			return err
		}
		for _, id := range ids {
			keep[id] = true
		}
		diffIDs, err := layerDiffIDs(tx)
		if err != nil {
			return err
		}
		for d := range diffIDs {
			blobs, err := tx.Distribution().BlobsByDiffID(d)
			if err != nil {
				return err
			}
			for _, b := range blobs {
				keep[b] = true
			}
		}
		return tx.Refs().All(func(ref string, id digest.Digest) error {
			if i := indexDigest(ref); i != "" {
				keep[i] = true
			}
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	err = s.cas.Blobs.Walk(ctx, func(d digest.Digest, size int64) error {
		if keep[d] {
			return nil
		}
		if err := s.cas.Blobs.Delete(ctx, d); err != nil {
			return err
		}
		res.Blobs = append(res.Blobs, d)
		res.BytesFreed += size
		return nil
	})
	return res, err
}

// indexDigest is the manifest digest of a name@digest reference.
func indexDigest(ref string) digest.Digest {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '@' {
			d := digest.Digest(ref[i+1:])
			if d.Validate() == nil {
				return d
			}
			return ""
		}
	}
	return ""
}

func layerDiffIDs(tx *cas.Tx) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	err := tx.Scan("layerdb/sha256/", true, func(rest string, v []byte) error {
		if len(rest) > 5 && rest[len(rest)-5:] == "/diff" {
			out[digest.Digest(v)] = true
		}
		return nil
	})
	return out, err
}

// collectLayers deletes, top down, every layer with no references and every
// layer whose deletion a crash interrupted.
func (s *Store) collectLayers(ctx context.Context) ([]digest.Digest, error) {
	var removed []digest.Digest
	for {
		var victims []digest.Digest
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
				if rec.References == 0 || rec.State == cas.LayerDeleting {
					victims = append(victims, id)
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		if len(victims) == 0 {
			return removed, nil
		}
		for _, id := range victims {
			if err := s.deleteLayer(ctx, id); err != nil {
				return removed, err
			}
			removed = append(removed, id)
		}
	}
}

// deleteLayer removes one unreferenced layer in two steps, so that a crash
// between them is finished by the next recover: mark it, remove its
// directory, then drop the record and its parent's reference.
func (s *Store) deleteLayer(ctx context.Context, chainID digest.Digest) error {
	var rec cas.LayerRecord
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		var err error
		rec, err = tx.LayerDB().Get(chainID, false)
		if err != nil {
			return err
		}
		if rec.References > 0 && rec.State != cas.LayerDeleting {
			return fmt.Errorf("delete layer %s: %w", chainID, errLayerInUse)
		}
		return tx.LayerDB().SetState(chainID, cas.LayerDeleting)
	})
	if err != nil {
		return err
	}
	if err := s.driver.Remove(ctx, rec.CacheID); err != nil {
		return fmt.Errorf("delete layer %s: %w", chainID, err)
	}
	// The compressed blobs this layer came as go with its last record;
	// a crash before they are unlinked leaves them to GC.
	var blobs []digest.Digest
	err = s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		blobs = nil
		ldb := tx.LayerDB()
		if err := ldb.Delete(chainID); err != nil {
			return err
		}
		if rec.Parent != "" && ldb.Has(rec.Parent) {
			if _, err := ldb.AddReferences(rec.Parent, -1); err != nil {
				return err
			}
		}
		still, err := layerDiffIDs(tx)
		if err != nil {
			return err
		}
		if !still[rec.DiffID] {
			if blobs, err = tx.Distribution().BlobsByDiffID(rec.DiffID); err != nil {
				return err
			}
			return tx.Distribution().DeleteDiffID(rec.DiffID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := s.cas.Blobs.Delete(ctx, b); err != nil {
			return err
		}
	}
	return nil
}
