package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// Image is an image as the store knows it. Values returned by the Store are
// copies: callers may keep them.
type Image struct {
	ID     digest.Digest
	Config dockerspec.DockerOCIImage
	// RawConfig is the config JSON exactly as stored (its digest is ID).
	RawConfig []byte
	// TopLayer is the ChainID of the image's top layer, "" for an image
	// without layers.
	TopLayer    digest.Digest
	Size        int64
	Parent      digest.Digest
	RepoTags    []string // familiar form, e.g. "busybox:latest"
	RepoDigests []string // familiar form, e.g. "busybox@sha256:…"
	LastTagTime time.Time
}

// Created is the image's creation time from its config.
func (img Image) Created() time.Time {
	if img.Config.Created == nil {
		return time.Time{}
	}
	return *img.Config.Created
}

// ShortID is the 12-hex form Docker prints.
func ShortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

func (img *Image) clone() Image {
	c := *img
	c.RepoTags = slices.Clone(img.RepoTags)
	c.RepoDigests = slices.Clone(img.RepoDigests)
	return c
}

// ParseConfig decodes and checks an image config.
func ParseConfig(raw []byte) (dockerspec.DockerOCIImage, error) {
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("image config: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	if cfg.RootFS.Type != "" && cfg.RootFS.Type != "layers" {
		return cfg, fmt.Errorf("image config: %w: rootfs type %q", errdefs.ErrInvalidArgument, cfg.RootFS.Type)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return cfg, fmt.Errorf("image config: %w: diff id %q", errdefs.ErrInvalidArgument, d)
		}
	}
	return cfg, nil
}

// CreateOptions are what an image is created with besides its config.
type CreateOptions struct {
	Parent digest.Digest // the image it was built from
	// Refs are references to point at the image in the same transaction
	// (tags and name@digest), in any form ParseNormalizedNamed accepts.
	Refs []string
	// Extra adds records to the same transaction.
	Extra func(tx *cas.Tx) error
}

// CreateImage stores config as a blob and records the image (ID = config
// digest) with its references, in one transaction. Every layer named by the
// config's diff_ids must already be committed. Creating an existing image
// only adds the references.
func (s *Store) CreateImage(ctx context.Context, raw []byte, opts CreateOptions) (Image, error) {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return Image{}, err
	}
	refs, err := normalizeRefs(opts.Refs)
	if err != nil {
		return Image{}, err
	}
	top := digest.Digest("")
	if n := len(cfg.RootFS.DiffIDs); n > 0 {
		top = ChainIDs(cfg.RootFS.DiffIDs)[n-1]
	}
	id, err := s.cas.Blobs.Put(ctx, raw, "")
	if err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var size int64
	var moved []movedRef
	err = s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		moved = moved[:0]
		size = 0
		ldb := tx.LayerDB()
		for c := top; c != ""; {
			rec, err := ldb.Get(c, false)
			if err != nil || rec.State != "" {
				return fmt.Errorf("create image: layer %s is not in the store: %w", c, errdefs.ErrFailedPrecondition)
			}
			size += rec.Size
			c = rec.Parent
		}
		idb := tx.ImageDB()
		if !idb.Has(id) {
			if top != "" {
				if _, err := ldb.AddReferences(top, 1); err != nil {
					return err
				}
			}
			if err := idb.Put(id); err != nil {
				return err
			}
			if opts.Parent != "" {
				if !idb.Has(opts.Parent) {
					return fmt.Errorf("create image: parent %s: %w", opts.Parent, errdefs.ErrNotFound)
				}
				if err := idb.SetParent(id, opts.Parent); err != nil {
					return err
				}
			}
		}
		for _, r := range refs {
			m, err := setRef(tx, r, id, now)
			if err != nil {
				return err
			}
			moved = append(moved, m...)
		}
		if opts.Extra != nil {
			return opts.Extra(tx)
		}
		return nil
	})
	if err != nil {
		return Image{}, err
	}
	entry, ok := s.images[id]
	if !ok {
		entry = &Image{ID: id, Config: cfg, RawConfig: raw, TopLayer: top, Size: size, Parent: opts.Parent}
		s.images[id] = entry
		s.gen.Add(1)
	}
	s.applyMovedRefs(moved, now)
	for _, r := range refs {
		s.addRefLocked(entry, r, now)
	}
	return entry.clone(), nil
}

type movedRef struct {
	ref  reference.Named
	from digest.Digest
}

// setRef points ref at id and reports the image it was taken from.
func setRef(tx *cas.Tx, ref reference.Named, id digest.Digest, now time.Time) ([]movedRef, error) {
	var moved []movedRef
	if old, err := tx.Refs().Get(ref.String()); err == nil && old != id {
		moved = append(moved, movedRef{ref: ref, from: old})
	}
	if err := tx.Refs().Set(ref.String(), id); err != nil {
		return nil, err
	}
	if _, ok := ref.(reference.Tagged); ok {
		if err := tx.ImageDB().SetLastUpdated(id, now); err != nil {
			return nil, err
		}
	}
	return moved, nil
}

func (s *Store) applyMovedRefs(moved []movedRef, now time.Time) {
	for _, m := range moved {
		if old, ok := s.images[m.from]; ok {
			s.removeRefLocked(old, m.ref)
		}
	}
}

func normalizeRefs(in []string) ([]reference.Named, error) {
	out := make([]reference.Named, 0, len(in))
	for _, r := range in {
		n, err := ParseReference(r)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseReference normalises a user reference the way Docker does:
// "busybox" → docker.io/library/busybox:latest. A reference with a digest
// keeps it; one without a tag gets "latest".
func ParseReference(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if _, ok := n.(reference.Canonical); ok {
		return n, nil
	}
	return reference.TagNameOnly(n), nil
}

func (s *Store) addRefLocked(img *Image, ref reference.Named, now time.Time) {
	s.gen.Add(1)
	s.refs[ref.String()] = img.ID
	fam := reference.FamiliarString(ref)
	if _, ok := ref.(reference.Canonical); ok {
		if !slices.Contains(img.RepoDigests, fam) {
			img.RepoDigests = append(img.RepoDigests, fam)
			sort.Strings(img.RepoDigests)
		}
		return
	}
	if !slices.Contains(img.RepoTags, fam) {
		img.RepoTags = append(img.RepoTags, fam)
		sort.Strings(img.RepoTags)
	}
	img.LastTagTime = now
}

func (s *Store) removeRefLocked(img *Image, ref reference.Named) {
	s.gen.Add(1)
	if s.refs[ref.String()] == img.ID {
		delete(s.refs, ref.String())
	}
	fam := reference.FamiliarString(ref)
	img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == fam })
	img.RepoDigests = slices.DeleteFunc(img.RepoDigests, func(t string) bool { return t == fam })
}

// Tag points ref at the image refOrID names. A tag that pointed elsewhere
// moves.
func (s *Store) Tag(ctx context.Context, refOrID, ref string) (Image, error) {
	img, err := s.Image(ctx, refOrID)
	if err != nil {
		return Image{}, err
	}
	n, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	if _, ok := n.(reference.Canonical); ok {
		return Image{}, errdefs.ErrInvalidArgument.WithMessage("refusing to create a tag with a digest reference")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var moved []movedRef
	err = s.cas.Index.Update(ctx, func(tx *cas.Tx) error {
		if !tx.ImageDB().Has(img.ID) {
			return errdefs.ErrNotFound.WithMessage("No such image: " + refOrID)
		}
		var err error
		moved, err = setRef(tx, n, img.ID, now)
		return err
	})
	if err != nil {
		return Image{}, err
	}
	s.applyMovedRefs(moved, now)
	entry := s.images[img.ID]
	s.addRefLocked(entry, n, now)
	return entry.clone(), nil
}

// Images returns every image, in no particular order.
func (s *Store) Images(ctx context.Context) []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	return out
}

// ImageCount is the number of images.
func (s *Store) ImageCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.images)
}

// Image resolves a reference or an ID (full, "sha256:"-prefixed, or a
// unique hex prefix) the way Docker does: names first, then ID prefixes.
func (s *Store) Image(ctx context.Context, refOrID string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.resolveLocked(refOrID)
	if err != nil {
		return Image{}, err
	}
	return img.clone(), nil
}

func noSuchImage(refOrID string) error {
	return errdefs.ErrNotFound.WithMessage("No such image: " + refOrID)
}

// errNoSuchImage formats like Docker: a name gets its implied tag.
func errNoSuchImage(refOrID string) error {
	if n, err := ParseReference(refOrID); err == nil && !looksLikeID(refOrID) {
		return noSuchImage(reference.FamiliarString(n))
	}
	return noSuchImage(refOrID)
}

func looksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) resolveLocked(refOrID string) (*Image, error) {
	if strings.HasPrefix(refOrID, "sha256:") {
		if d := digest.Digest(refOrID); d.Validate() == nil {
			if img, ok := s.images[d]; ok {
				return img, nil
			}
			return nil, noSuchImage(refOrID)
		}
	}
	if n, err := ParseReference(refOrID); err == nil {
		if id, ok := s.refs[n.String()]; ok {
			if img, ok := s.images[id]; ok {
				return img, nil
			}
		}
		// name@digest where the digest is the image ID also resolves.
		if c, ok := n.(reference.Canonical); ok {
			if img, ok := s.images[c.Digest()]; ok {
				return img, nil
			}
		}
	}
	if looksLikeID(refOrID) {
		prefix := strings.TrimPrefix(refOrID, "sha256:")
		var found *Image
		for id, img := range s.images {
			if strings.HasPrefix(id.Encoded(), prefix) {
				if found != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage("multiple IDs found with provided prefix: " + refOrID)
				}
				found = img
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, errNoSuchImage(refOrID)
}

// Children lists the images whose parent is id.
func (s *Store) Children(id digest.Digest) []digest.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.childrenLocked(id)
}

func (s *Store) childrenLocked(id digest.Digest) []digest.Digest {
	var out []digest.Digest
	for cid, img := range s.images {
		if img.Parent == id {
			out = append(out, cid)
		}
	}
	return out
}

// HistoryItem is one line of `docker history`.
type HistoryItem struct {
	ID        string
	Created   int64
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// History lists an image's history, newest first, with IDs filled in by
// walking the parent chain as Docker does ("<missing>" beyond it).
func (s *Store) History(ctx context.Context, refOrID string) ([]HistoryItem, error) {
	img, err := s.Image(ctx, refOrID)
	if err != nil {
		return nil, err
	}
	var out []HistoryItem
	diffIDs := img.Config.RootFS.DiffIDs
	chainIDs := ChainIDs(diffIDs)
	layer := 0
	for _, h := range img.Config.History {
		var size int64
		if !h.EmptyLayer && layer < len(chainIDs) {
			if l, err := s.Layer(ctx, chainIDs[layer]); err == nil {
				size = l.Size
			}
			layer++
		}
		var created int64
		if h.Created != nil {
			created = h.Created.Unix()
		}
		out = append([]HistoryItem{{ID: "<missing>", Created: created, CreatedBy: h.CreatedBy, Comment: h.Comment, Size: size}}, out...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.images[img.ID]
	for i := range out {
		if cur == nil {
			break
		}
		out[i].ID = cur.ID.String()
		out[i].Tags = slices.Clone(cur.RepoTags)
		if cur.Parent == "" {
			break
		}
		cur = s.images[cur.Parent]
	}
	return out, nil
}

// errImageNotFound reports whether err is a not-found.
func isNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }
