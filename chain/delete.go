package chain

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/cas"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// DeleteItem is one line of `docker rmi` output: exactly one field is set.
type DeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// conflict wordings are Docker's: the CLI user knows them.
func conflictf(hard bool, id digest.Digest, reason string) error {
	kind := "must be forced"
	if hard {
		kind = "cannot be forced"
	}
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (%s) - %s", ShortID(id), kind, reason))
}

// DeleteImage is `docker rmi`: by name it removes that reference and, when
// it was the last, the image; by ID it removes the image with all its
// references. Images used by containers or with child images are refused
// with Docker's conflict wording; force overrides only what Docker lets it.
// prune also deletes parent images left untagged and unused.
func (s *Store) DeleteImage(ctx context.Context, refOrID string, force, prune bool) ([]DeleteItem, error) {
	users := map[digest.Digest][]ImageUser{}
	if s.imageUsers != nil {
		users = s.imageUsers(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.resolveLocked(refOrID)
	if err != nil {
		return nil, err
	}
	var items []DeleteItem
	byName := !s.isIDReference(img.ID, refOrID)
	if byName {
		n, err := ParseReference(refOrID)
		if err != nil {
			return nil, err
		}
		// A tag or digest not literally present (resolved through the
		// image-ID digest form) is not a reference to untag.
		if got, ok := s.refs[n.String()]; !ok || got != img.ID {
			byName = false
		} else {
			untag := []reference.Named{n}
			// When only digest references of the same repository remain,
			// they go too (Docker does the same).
			remaining := s.refsOfLocked(img.ID)
			onlyDigests := true
			var sameRepoDigests []reference.Named
			for _, r := range remaining {
				if r.String() == n.String() {
					continue
				}
				if _, ok := r.(reference.Canonical); !ok {
					onlyDigests = false
					break
				}
				if r.Name() == n.Name() {
					sameRepoDigests = append(sameRepoDigests, r)
				}
			}
			if onlyDigests {
				untag = append(untag, sameRepoDigests...)
			}
			if err := s.untagLocked(ctx, img, untag); err != nil {
				return nil, err
			}
			for _, r := range untag {
				items = append(items, DeleteItem{Untagged: reference.FamiliarString(r)})
			}
			if len(s.refsOfLocked(img.ID)) > 0 {
				return items, nil
			}
			// The last reference is gone: delete the image if nothing
			// holds it, quietly keeping it otherwise.
			more, err := s.deleteImageLocked(ctx, img, users, force, prune, true)
			return append(items, more...), err
		}
	}
	refs := s.refsOfLocked(img.ID)
	if !force {
		repos := map[string]bool{}
		for _, r := range refs {
			repos[r.Name()] = true
		}
		if len(repos) > 1 {
			return nil, conflictf(false, img.ID, "image is referenced in multiple repositories")
		}
	}
	if err := s.checkConflictsLocked(img, users, force); err != nil {
		return nil, err
	}
	if err := s.untagLocked(ctx, img, refs); err != nil {
		return nil, err
	}
	for _, r := range refs {
		items = append(items, DeleteItem{Untagged: reference.FamiliarString(r)})
	}
	more, err := s.deleteImageLocked(ctx, img, users, force, prune, false)
	return append(items, more...), err
}

func (s *Store) isIDReference(id digest.Digest, refOrID string) bool {
	if !looksLikeID(refOrID) {
		return false
	}
	// A hex string that is also a tagged name resolves by name first.
	if n, err := ParseReference(refOrID); err == nil {
		if got, ok := s.refs[n.String()]; ok && got == id {
			return false
		}
	}
	return true
}

func (s *Store) refsOfLocked(id digest.Digest) []reference.Named {
	var out []reference.Named
	for ref, target := range s.refs {
		if target != id {
			continue
		}
		if n, err := reference.ParseNormalizedNamed(ref); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *Store) untagLocked(ctx context.Context, img *Image, refs []reference.Named) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		for _, r := range refs {
			if err := tx.Refs().Delete(r.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("untag %s: %w", ShortID(img.ID), err)
	}
	for _, r := range refs {
		s.removeRefLocked(img, r)
	}
	return nil
}

func (s *Store) checkConflictsLocked(img *Image, users map[digest.Digest][]ImageUser, force bool) error {
	for _, u := range users[img.ID] {
		if u.Running {
			return conflictf(true, img.ID, "image is being used by running container "+shortHex(u.ContainerID))
		}
	}
	if len(s.childrenLocked(img.ID)) > 0 {
		return conflictf(true, img.ID, "image has dependent child images")
	}
	if !force {
		for _, u := range users[img.ID] {
			return conflictf(false, img.ID, "image is being used by stopped container "+shortHex(u.ContainerID))
		}
	}
	return nil
}

// deleteImageLocked removes an image record and the layers only it held.
// quiet: a conflict just keeps the image (the caller only untagged).
func (s *Store) deleteImageLocked(ctx context.Context, img *Image, users map[digest.Digest][]ImageUser, force, prune, quiet bool) ([]DeleteItem, error) {
	if err := s.checkConflictsLocked(img, users, force); err != nil {
		if quiet {
			return nil, nil
		}
		return nil, err
	}
	err := s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		if err := tx.ImageDB().Delete(img.ID); err != nil {
			return err
		}
		if img.TopLayer != "" {
			if _, err := tx.LayerDB().AddReferences(img.TopLayer, -1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete image %s: %w", ShortID(img.ID), err)
	}
	delete(s.images, img.ID)
	s.gen.Add(1)
	// The config blob goes with the image (GC collects it after a crash).
	if err := s.cas.Blobs.Delete(ctx, img.ID); err != nil {
		return nil, err
	}
	items := []DeleteItem{{Deleted: img.ID.String()}}
	// The image's layers go while nothing else holds them, top down.
	removed, err := s.collectChain(ctx, img.TopLayer)
	for _, c := range removed {
		items = append(items, DeleteItem{Deleted: c.String()})
	}
	if err != nil {
		return items, err
	}
	if prune && img.Parent != "" {
		if parent, ok := s.images[img.Parent]; ok && len(s.refsOfLocked(parent.ID)) == 0 && len(s.childrenLocked(parent.ID)) == 0 {
			more, err := s.deleteImageLocked(ctx, parent, users, false, prune, true)
			items = append(items, more...)
			if err != nil {
				return items, err
			}
		}
	}
	return items, nil
}

func shortHex(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
