package cas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// The typed maps below mirror /var/lib/docker/image/overlay2/{imagedb,
// layerdb,distribution} and repositories.json, one key per file there.

func digestKey(prefix string, d digest.Digest) string {
	return prefix + string(d.Algorithm()) + "/" + d.Encoded()
}

func parseDigestRest(rest string) (digest.Digest, string) {
	// rest is "<alg>/<hex>[/<field>]"
	alg, after, ok := strings.Cut(rest, "/")
	if !ok {
		return "", ""
	}
	hex, field, _ := strings.Cut(after, "/")
	return digest.NewDigestFromEncoded(digest.Algorithm(alg), hex), field
}

// ImageDB is imagedb/: content/<id> marks an image whose config (the blob
// named by the id) is complete; metadata/<id>/{parent,lastUpdated}.
type ImageDB struct{ tx *Tx }

// ImageDB returns the imagedb map of this transaction.
func (t *Tx) ImageDB() ImageDB { return ImageDB{t} }

// Put records an image.
func (m ImageDB) Put(id digest.Digest) error {
	return m.tx.Set(digestKey("imagedb/content/", id), nil)
}

// Has reports whether an image is recorded.
func (m ImageDB) Has(id digest.Digest) bool { return m.tx.Has(digestKey("imagedb/content/", id)) }

// Delete removes an image's content and metadata records.
func (m ImageDB) Delete(id digest.Digest) error {
	if err := m.tx.Delete(digestKey("imagedb/content/", id)); err != nil {
		return err
	}
	return m.tx.DeletePrefix(digestKey("imagedb/metadata/", id) + "/")
}

// List returns every recorded image id.
func (m ImageDB) List() ([]digest.Digest, error) {
	var ids []digest.Digest
	err := m.tx.Scan("imagedb/content/", false, func(rest string, _ []byte) error {
		if d, _ := parseDigestRest(rest); d != "" {
			ids = append(ids, d)
		}
		return nil
	})
	return ids, err
}

// SetParent records the image an image was built from.
func (m ImageDB) SetParent(id, parent digest.Digest) error {
	return m.tx.Set(digestKey("imagedb/metadata/", id)+"/parent", []byte(parent))
}

// Parent returns the recorded parent, "" when there is none.
func (m ImageDB) Parent(id digest.Digest) (digest.Digest, error) {
	v, err := m.tx.Get(digestKey("imagedb/metadata/", id) + "/parent")
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", nil
	}
	return digest.Digest(v), err
}

// SetLastUpdated records when a tag last pointed at the image.
func (m ImageDB) SetLastUpdated(id digest.Digest, t time.Time) error {
	return m.tx.Set(digestKey("imagedb/metadata/", id)+"/lastUpdated", []byte(t.UTC().Format(time.RFC3339Nano)))
}

// LastUpdated returns the recorded time, zero when there is none.
func (m ImageDB) LastUpdated(id digest.Digest) (time.Time, error) {
	v, err := m.tx.Get(digestKey("imagedb/metadata/", id) + "/lastUpdated")
	if errors.Is(err, errdefs.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, string(v))
}

// LayerRecord is one layerdb/<chainID>/ directory.
type LayerRecord struct {
	ChainID  digest.Digest
	DiffID   digest.Digest
	Parent   digest.Digest // ChainID of the layer below, "" for a base layer
	Size     int64
	CacheID  string
	TarSplit []byte // gzip-compressed tar-split JSON stream
	// References counts what holds this layer: images whose top layer it
	// is, child layers and container mounts. Zero means collectable.
	References int64
	// State is "" for a complete layer, LayerDeleting while a delete is
	// under way (a crash leaves it for the startup sweep to finish).
	State string
}

// LayerDeleting marks a layer whose removal has begun.
const LayerDeleting = "deleting"

// LayerDB is layerdb/: per ChainID diff, parent, size, cache-id, tar-split
// (Docker's names), plus berth's refs and state; mounts/<container>/.
type LayerDB struct{ tx *Tx }

// LayerDB returns the layerdb map of this transaction.
func (t *Tx) LayerDB() LayerDB { return LayerDB{t} }

var layerFields = []string{"diff", "parent", "size", "cache-id", "tar-split", "refs", "state"}

// Put writes every field of a layer record.
func (m LayerDB) Put(r LayerRecord) error {
	base := digestKey("layerdb/", r.ChainID) + "/"
	vals := map[string][]byte{
		"diff":      []byte(r.DiffID),
		"size":      []byte(strconv.FormatInt(r.Size, 10)),
		"cache-id":  []byte(r.CacheID),
		"tar-split": r.TarSplit,
		"refs":      []byte(strconv.FormatInt(r.References, 10)),
	}
	if r.Parent != "" {
		vals["parent"] = []byte(r.Parent)
	}
	if r.State != "" {
		vals["state"] = []byte(r.State)
	}
	for _, f := range layerFields {
		v, ok := vals[f]
		var err error
		if ok {
			err = m.tx.Set(base+f, v)
		} else {
			err = m.tx.Delete(base + f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Get reads a layer record; withTarSplit=false skips the largest field.
func (m LayerDB) Get(chainID digest.Digest, withTarSplit bool) (LayerRecord, error) {
	base := digestKey("layerdb/", chainID) + "/"
	r := LayerRecord{ChainID: chainID}
	diff, err := m.tx.Get(base + "diff")
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return r, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
		}
		return r, err
	}
	r.DiffID = digest.Digest(diff)
	if v, err := m.tx.Get(base + "parent"); err == nil {
		r.Parent = digest.Digest(v)
	}
	if v, err := m.tx.Get(base + "size"); err == nil {
		r.Size, _ = strconv.ParseInt(string(v), 10, 64)
	}
	if v, err := m.tx.Get(base + "cache-id"); err == nil {
		r.CacheID = string(v)
	}
	if v, err := m.tx.Get(base + "refs"); err == nil {
		r.References, _ = strconv.ParseInt(string(v), 10, 64)
	}
	if v, err := m.tx.Get(base + "state"); err == nil {
		r.State = string(v)
	}
	if withTarSplit {
		if r.TarSplit, err = m.tx.Get(base + "tar-split"); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Has reports whether a layer is recorded.
func (m LayerDB) Has(chainID digest.Digest) bool {
	return m.tx.Has(digestKey("layerdb/", chainID) + "/diff")
}

// AddReferences changes a layer's reference count by delta and returns the
// new count.
func (m LayerDB) AddReferences(chainID digest.Digest, delta int64) (int64, error) {
	key := digestKey("layerdb/", chainID) + "/refs"
	v, err := m.tx.Get(key)
	if err != nil {
		return 0, fmt.Errorf("layer %s references: %w", chainID, err)
	}
	n, _ := strconv.ParseInt(string(v), 10, 64)
	n += delta
	if n < 0 {
		return 0, fmt.Errorf("layer %s: reference count below zero", chainID)
	}
	return n, m.tx.Set(key, []byte(strconv.FormatInt(n, 10)))
}

// SetState marks a layer (LayerDeleting) or clears the mark ("").
func (m LayerDB) SetState(chainID digest.Digest, state string) error {
	key := digestKey("layerdb/", chainID) + "/state"
	if state == "" {
		return m.tx.Delete(key)
	}
	return m.tx.Set(key, []byte(state))
}

// Delete removes a layer record.
func (m LayerDB) Delete(chainID digest.Digest) error {
	return m.tx.DeletePrefix(digestKey("layerdb/", chainID) + "/")
}

// List returns every recorded ChainID (not the mounts).
func (m LayerDB) List() ([]digest.Digest, error) {
	var ids []digest.Digest
	err := m.tx.Scan("layerdb/sha256/", false, func(rest string, _ []byte) error {
		if strings.HasSuffix(rest, "/diff") {
			ids = append(ids, digest.NewDigestFromEncoded(digest.SHA256, strings.TrimSuffix(rest, "/diff")))
		}
		return nil
	})
	return ids, err
}

// MountRecord is layerdb/mounts/<container>/.
type MountRecord struct {
	Container string
	MountID   string        // cache-id of the read-write layer
	InitID    string        // cache-id of the -init layer, "" without one
	Parent    digest.Digest // ChainID of the image's top layer
}

// PutMount writes a mount record.
func (m LayerDB) PutMount(r MountRecord) error {
	base := "layerdb/mounts/" + r.Container + "/"
	if err := m.tx.Set(base+"mount-id", []byte(r.MountID)); err != nil {
		return err
	}
	if err := m.tx.Set(base+"init-id", []byte(r.InitID)); err != nil {
		return err
	}
	return m.tx.Set(base+"parent", []byte(r.Parent))
}

// GetMount reads a mount record.
func (m LayerDB) GetMount(container string) (MountRecord, error) {
	base := "layerdb/mounts/" + container + "/"
	r := MountRecord{Container: container}
	v, err := m.tx.Get(base + "mount-id")
	if err != nil {
		return r, fmt.Errorf("mount of %s: %w", container, err)
	}
	r.MountID = string(v)
	if v, err := m.tx.Get(base + "init-id"); err == nil {
		r.InitID = string(v)
	}
	if v, err := m.tx.Get(base + "parent"); err == nil {
		r.Parent = digest.Digest(v)
	}
	return r, nil
}

// DeleteMount removes a mount record.
func (m LayerDB) DeleteMount(container string) error {
	return m.tx.DeletePrefix("layerdb/mounts/" + container + "/")
}

// ListMounts returns every mount record.
func (m LayerDB) ListMounts() ([]MountRecord, error) {
	var names []string
	err := m.tx.Scan("layerdb/mounts/", false, func(rest string, _ []byte) error {
		if c, f, ok := strings.Cut(rest, "/"); ok && f == "mount-id" {
			names = append(names, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]MountRecord, 0, len(names))
	for _, n := range names {
		r, err := m.GetMount(n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// V2Metadata ties a layer's diffID to a compressed blob in a repository, so
// push can skip or cross-mount it.
type V2Metadata struct {
	Digest           digest.Digest `json:"Digest"`
	SourceRepository string        `json:"SourceRepository"`
	HMAC             string        `json:"HMAC"`
}

// Distribution is distribution/: diffid-by-digest and v2metadata-by-diffid.
type Distribution struct{ tx *Tx }

// Distribution returns the distribution map of this transaction.
func (t *Tx) Distribution() Distribution { return Distribution{t} }

// SetDiffID records the diffID of a compressed blob.
func (m Distribution) SetDiffID(blob, diffID digest.Digest) error {
	return m.tx.Set(digestKey("distribution/diffid-by-digest/", blob), []byte(diffID))
}

// DiffID returns the diffID recorded for a compressed blob.
func (m Distribution) DiffID(blob digest.Digest) (digest.Digest, error) {
	v, err := m.tx.Get(digestKey("distribution/diffid-by-digest/", blob))
	return digest.Digest(v), err
}

// AddV2Metadata records that diffID is available as md.Digest in
// md.SourceRepository; an existing identical entry is not repeated.
func (m Distribution) AddV2Metadata(diffID digest.Digest, md V2Metadata) error {
	list, err := m.V2Metadata(diffID)
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.Digest == md.Digest && e.SourceRepository == md.SourceRepository {
			return nil
		}
	}
	list = append(list, md)
	raw, _ := json.Marshal(list)
	return m.tx.Set(digestKey("distribution/v2metadata-by-diffid/", diffID), raw)
}

// V2Metadata lists where a diffID is known to be available.
func (m Distribution) V2Metadata(diffID digest.Digest) ([]V2Metadata, error) {
	v, err := m.tx.Get(digestKey("distribution/v2metadata-by-diffid/", diffID))
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []V2Metadata
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("v2metadata of %s: %w", diffID, err)
	}
	return list, nil
}

// DeleteDiffID forgets both maps' entries for a diffID and its blobs.
func (m Distribution) DeleteDiffID(diffID digest.Digest) error {
	list, err := m.V2Metadata(diffID)
	if err != nil {
		return err
	}
	for _, e := range list {
		if err := m.tx.Delete(digestKey("distribution/diffid-by-digest/", e.Digest)); err != nil {
			return err
		}
	}
	return m.tx.Delete(digestKey("distribution/v2metadata-by-diffid/", diffID))
}

// BlobsByDiffID is every blob digest recorded for diffID.
func (m Distribution) BlobsByDiffID(diffID digest.Digest) ([]digest.Digest, error) {
	list, err := m.V2Metadata(diffID)
	out := make([]digest.Digest, 0, len(list))
	for _, e := range list {
		out = append(out, e.Digest)
	}
	return out, err
}

// Refs is refs/: a reference in its normalised string form
// ("docker.io/library/busybox:latest", "…@sha256:…") → image ID.
type Refs struct{ tx *Tx }

// Refs returns the refs map of this transaction.
func (t *Tx) Refs() Refs { return Refs{t} }

// Set points a reference at an image.
func (m Refs) Set(ref string, id digest.Digest) error { return m.tx.Set("refs/"+ref, []byte(id)) }

// Get returns the image a reference points at.
func (m Refs) Get(ref string) (digest.Digest, error) {
	v, err := m.tx.Get("refs/" + ref)
	if err != nil {
		return "", fmt.Errorf("reference %s: %w", ref, err)
	}
	return digest.Digest(v), nil
}

// Delete removes a reference.
func (m Refs) Delete(ref string) error { return m.tx.Delete("refs/" + ref) }

// All calls fn for every reference.
func (m Refs) All(fn func(ref string, id digest.Digest) error) error {
	return m.tx.Scan("refs/", true, func(rest string, v []byte) error { return fn(rest, digest.Digest(v)) })
}

// Containers is containers/<id> → the container's JSON record, owned by
// package run.
type Containers struct{ tx *Tx }

// Containers returns the containers map of this transaction.
func (t *Tx) Containers() Containers { return Containers{t} }

// Put stores a container record.
func (m Containers) Put(id string, record []byte) error { return m.tx.Set("containers/"+id, record) }

// Get reads a container record.
func (m Containers) Get(id string) ([]byte, error) { return m.tx.Get("containers/" + id) }

// Delete removes a container record.
func (m Containers) Delete(id string) error { return m.tx.Delete("containers/" + id) }

// All calls fn for every container record.
func (m Containers) All(fn func(id string, record []byte) error) error {
	return m.tx.Scan("containers/", true, fn)
}
