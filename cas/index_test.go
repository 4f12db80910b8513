package cas

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

func newIndex(t *testing.T) *Index {
	t.Helper()
	ix, err := OpenIndex(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func TestIndexTransactionIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	ix := newIndex(t)
	id := digest.FromString("config")
	boom := errors.New("boom")
	err := ix.Update(ctx, func(tx *Tx) error {
		if err := tx.ImageDB().Put(id); err != nil {
			return err
		}
		if err := tx.Refs().Set("docker.io/library/x:latest", id); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	ix.View(ctx, func(tx *Tx) error {
		if tx.ImageDB().Has(id) {
			t.Error("image recorded by a failed transaction")
		}
		if _, err := tx.Refs().Get("docker.io/library/x:latest"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("ref of a failed transaction: %v", err)
		}
		return nil
	})
}

func TestTypedMapsRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ix, err := OpenIndex(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	img, parentImg := digest.FromString("img"), digest.FromString("parent")
	base := LayerRecord{ChainID: digest.FromString("c1"), DiffID: digest.FromString("c1"), Size: 10, CacheID: "abc", TarSplit: []byte("ts1"), References: 1}
	top := LayerRecord{ChainID: digest.FromString("c2"), DiffID: digest.FromString("d2"), Parent: base.ChainID, Size: 20, CacheID: "def", TarSplit: []byte("ts2")}
	blob := digest.FromString("blob")
	now := time.Now().Truncate(time.Microsecond)
	err = ix.Update(ctx, func(tx *Tx) error {
		tx.ImageDB().Put(img)
		tx.ImageDB().SetParent(img, parentImg)
		tx.ImageDB().SetLastUpdated(img, now)
		tx.LayerDB().Put(base)
		tx.LayerDB().Put(top)
		tx.LayerDB().PutMount(MountRecord{Container: "c0ffee", MountID: "rw", InitID: "rw-init", Parent: top.ChainID})
		tx.Distribution().SetDiffID(blob, top.DiffID)
		tx.Distribution().AddV2Metadata(top.DiffID, V2Metadata{Digest: blob, SourceRepository: "docker.io/library/x"})
		tx.Distribution().AddV2Metadata(top.DiffID, V2Metadata{Digest: blob, SourceRepository: "docker.io/library/x"})
		tx.Refs().Set("docker.io/library/x:latest", img)
		return tx.Containers().Put("c0ffee", []byte(`{"Name":"/x"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	// Reopen: what was committed survives a restart.
	ix, err = OpenIndex(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	err = ix.View(ctx, func(tx *Tx) error {
		if p, _ := tx.ImageDB().Parent(img); p != parentImg {
			t.Errorf("parent %s", p)
		}
		if lu, _ := tx.ImageDB().LastUpdated(img); !lu.Equal(now) {
			t.Errorf("lastUpdated %v want %v", lu, now)
		}
		ids, _ := tx.ImageDB().List()
		if len(ids) != 1 || ids[0] != img {
			t.Errorf("images %v", ids)
		}
		got, err := tx.LayerDB().Get(top.ChainID, true)
		if err != nil || got.Parent != base.ChainID || got.Size != 20 || got.CacheID != "def" || string(got.TarSplit) != "ts2" || got.DiffID != top.DiffID {
			t.Errorf("layer %+v %v", got, err)
		}
		layers, _ := tx.LayerDB().List()
		if len(layers) != 2 {
			t.Errorf("layers %v", layers)
		}
		mounts, _ := tx.LayerDB().ListMounts()
		if len(mounts) != 1 || mounts[0].InitID != "rw-init" || mounts[0].Parent != top.ChainID {
			t.Errorf("mounts %+v", mounts)
		}
		if d, _ := tx.Distribution().DiffID(blob); d != top.DiffID {
			t.Errorf("diffid-by-digest %s", d)
		}
		md, _ := tx.Distribution().V2Metadata(top.DiffID)
		if len(md) != 1 || md[0].SourceRepository != "docker.io/library/x" {
			t.Errorf("v2metadata %+v", md)
		}
		if id, _ := tx.Refs().Get("docker.io/library/x:latest"); id != img {
			t.Errorf("ref %s", id)
		}
		if rec, _ := tx.Containers().Get("c0ffee"); string(rec) != `{"Name":"/x"}` {
			t.Errorf("container %s", rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLayerReferencesAndDelete(t *testing.T) {
	ctx := context.Background()
	ix := newIndex(t)
	l := LayerRecord{ChainID: digest.FromString("c"), DiffID: digest.FromString("c"), CacheID: "x"}
	ix.Update(ctx, func(tx *Tx) error { return tx.LayerDB().Put(l) })
	err := ix.Update(ctx, func(tx *Tx) error {
		if n, err := tx.LayerDB().AddReferences(l.ChainID, 2); n != 2 || err != nil {
			t.Errorf("add: %d %v", n, err)
		}
		if _, err := tx.LayerDB().AddReferences(l.ChainID, -3); err == nil {
			t.Error("reference count went below zero")
		}
		return tx.LayerDB().Delete(l.ChainID)
	})
	if err != nil {
		t.Fatal(err)
	}
	ix.View(ctx, func(tx *Tx) error {
		if tx.LayerDB().Has(l.ChainID) {
			t.Error("deleted layer still recorded")
		}
		if _, err := tx.LayerDB().Get(l.ChainID, false); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("get deleted: %v", err)
		}
		return nil
	})
}
