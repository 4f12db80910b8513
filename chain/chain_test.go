package chain_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// The vectors of seed 002 (a real /var/lib/docker): the OCI ChainID formula.
func TestChainIDVectorsFromDockerLayout(t *testing.T) {
	diffIDs := []digest.Digest{
		"sha256:7bff100f35cb359a368537bb07829b055fe8e0b1cb01085a3a628ae9c187c7b8",
		"sha256:b1ddbff022577cd249a074285a1a7eb76d7c9139132ba5aa4272fc115dfa9e36",
		"sha256:9edc93f4dcf640f272ed73f933863dbefae6719745093d09c6c6908f402b1c34",
		"sha256:a6c8828ba4b58628284f783d3c918ac379ae2aba0830f4c926a330842361ffb6",
	}
	want := []digest.Digest{
		"sha256:7bff100f35cb359a368537bb07829b055fe8e0b1cb01085a3a628ae9c187c7b8",
		"sha256:db7c15c2f03f63a658285a55edc0a0012ccd0033f4695d4b428b1b464637e655",
		"sha256:0e88764cdf90e8a5d6597b2d8e65b8f70e7b62982b0aee934195b54600320d47",
		"sha256:80fe1abae43103e3be54ac2813114d1dea6fc91454a3369104b8dd6e2b1363f5",
	}
	got := chain.ChainIDs(diffIDs)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ChainID(%d) = %s, want %s", i+1, got[i], want[i])
		}
	}
	if diffIDs[1] != "sha256:b1ddbff022577cd249a074285a1a7eb76d7c9139132ba5aa4272fc115dfa9e36" {
		t.Fatal("ChainIDs changed its input")
	}
}

type env struct {
	root  string
	cas   *cas.Store
	drv   mount.Driver
	store *chain.Store
}

func drivers(t *testing.T) []string {
	t.Helper()
	names := []string{"vfs"}
	if err := mount.OverlaySupported(t.TempDir()); err == nil {
		names = append(names, "overlay2")
	} else if os.Getenv("CI") != "" {
		t.Fatalf("overlay2 is not usable here: %v", err)
	}
	return names
}

func openEnv(t *testing.T, root, driver string, opts ...chain.Option) *env {
	t.Helper()
	ctx := context.Background()
	st, err := cas.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := mount.New(ctx, driver, filepath.Join(root, "layers"))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	s, err := chain.Open(ctx, st, drv, append([]chain.Option{chain.WithDeviceNodes(true)}, opts...)...)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e := &env{root: root, cas: st, drv: drv, store: s}
	t.Cleanup(func() { st.Close() })
	return e
}

func forEachDriver(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range drivers(t) {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

func layerTar(t *testing.T, spec fixtures.LayerSpec) []byte {
	t.Helper()
	b, err := fixtures.LayerTar(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reassemble(t *testing.T, e *env, chainID digest.Digest) []byte {
	t.Helper()
	rc, err := e.store.LayerTar(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every fixture layer, in every compression, reassembles to its exact bytes.
func TestRegisterAndReassembleExactBytes(t *testing.T) {
	specs := map[string]fixtures.LayerSpec{
		"mixed":    fixtures.SmallMixedLayer(1),
		"many":     fixtures.ManySmallFilesLayer(2, 10, 500, 300),
		"random":   fixtures.RandomFileLayer(3, "blob/random", 3<<20),
		"text":     fixtures.TextFileLayer(4, "doc/text", 1<<20),
		"whiteout": fixtures.WhiteoutLayer(5, []string{"etc/motd", "data/one"}, []string{"data/small"}),
	}
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		e := openEnv(t, t.TempDir(), driver)
		for name, spec := range specs {
			raw := layerTar(t, spec)
			for _, comp := range []fixtures.Compression{fixtures.Uncompressed, fixtures.Gzip, fixtures.Zstd} {
				t.Run(name+"/"+comp.String(), func(t *testing.T) {
					l, err := e.store.RegisterLayer(ctx, "", bytes.NewReader(fixtures.Compress(raw, comp)), nil)
					if err != nil {
						t.Fatal(err)
					}
					if want := digest.FromBytes(raw); l.DiffID != want || l.ChainID != want {
						t.Fatalf("diffID %s chainID %s, want %s", l.DiffID, l.ChainID, want)
					}
					back := reassemble(t, e, l.ChainID)
					if !bytes.Equal(back, raw) {
						t.Fatalf("reassembled %d bytes differ from the %d registered", len(back), len(raw))
					}
				})
			}
		}
	})
}

func configFor(t *testing.T, diffIDs []digest.Digest, history []map[string]any, extra map[string]any) []byte {
	t.Helper()
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-02T03:04:05Z",
		"config":       map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin"}, "Labels": map[string]string{"a": "b"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// StageChain applies layers in parallel and commits them in chain order.
func TestStageChainParallelApplyOrderedCommit(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		e := openEnv(t, t.TempDir(), driver)
		var tars [][]byte
		var diffIDs []digest.Digest
		for i := range 4 {
			raw := layerTar(t, fixtures.ManySmallFilesLayer(uint64(10+i), 4, 50, 200))
			tars = append(tars, raw)
			diffIDs = append(diffIDs, digest.FromBytes(raw))
		}
		release := e.store.Lease()
		defer release()
		stages, err := e.store.StageChain(ctx, "", diffIDs)
		if err != nil {
			t.Fatal(err)
		}
		defer e.store.Release(ctx, stages)
		// A second caller of the same chain shares the stages: it does not
		// get to apply them.
		again, err := e.store.StageChain(ctx, "", diffIDs)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range again {
			if st == nil {
				t.Fatal("nil stage")
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(stages))
		for i, st := range stages {
			if !st.Claim() {
				t.Fatalf("stage %d already claimed", i)
			}
			if again[i].Claim() {
				t.Fatalf("stage %d claimed twice", i)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.Apply(ctx, bytes.NewReader(fixtures.Compress(tars[i], fixtures.Gzip)))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
		}
		if _, err := stages[2].Commit(ctx, nil); err == nil {
			t.Fatal("committed layer 3 before layer 2")
		}
		blob := digest.FromString("compressed-0")
		for i, st := range stages {
			var extra func(tx *cas.Tx) error
			if i == 0 {
				extra = func(tx *cas.Tx) error { return tx.Distribution().SetDiffID(blob, diffIDs[0]) }
			}
			l, err := st.Commit(ctx, extra)
			if err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
			if l.ChainID != chain.ChainIDs(diffIDs)[i] {
				t.Fatalf("chain id %d: %s", i, l.ChainID)
			}
		}
		e.store.Release(ctx, again)
		img, err := e.store.CreateImage(ctx, configFor(t, diffIDs, nil, nil), chain.CreateOptions{Refs: []string{"staged:v1"}})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range chain.ChainIDs(diffIDs) {
			back := reassemble(t, e, c)
			if !bytes.Equal(back, tars[i]) {
				t.Fatalf("layer %d does not reassemble", i)
			}
		}
		e.cas.Index.View(ctx, func(tx *cas.Tx) error {
			if d, err := tx.Distribution().DiffID(blob); err != nil || d != diffIDs[0] {
				t.Errorf("distribution map not written with the layer: %s %v", d, err)
			}
			return nil
		})
		if img.TopLayer != chain.ChainIDs(diffIDs)[3] {
			t.Fatalf("top layer %s", img.TopLayer)
		}
	})
}

func TestStageApplyRejectsWrongDiffID(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), "vfs")
	raw := layerTar(t, fixtures.SmallMixedLayer(7))
	stages, err := e.store.StageChain(ctx, "", []digest.Digest{digest.FromString("not this")})
	if err != nil {
		t.Fatal(err)
	}
	stages[0].Claim()
	err = stages[0].Apply(ctx, bytes.NewReader(raw))
	if err == nil || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("apply of the wrong content: %v", err)
	}
	e.store.Release(ctx, stages)
	if dirs, _ := e.drv.List(ctx); len(dirs) != 0 {
		t.Fatalf("failed stage left directories: %v", dirs)
	}
}

type imageSet struct {
	base, child, other chain.Image
	baseDiff           digest.Digest
}

func makeImages(t *testing.T, e *env) imageSet {
	t.Helper()
	ctx := context.Background()
	a := layerTar(t, fixtures.SmallMixedLayer(21))
	b := layerTar(t, fixtures.TextFileLayer(22, "b", 3000))
	la, err := e.store.RegisterLayer(ctx, "", bytes.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := e.store.RegisterLayer(ctx, la.ChainID, bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	hist := []map[string]any{
		{"created": "2026-01-01T00:00:00Z", "created_by": "ADD a /"},
		{"created": "2026-01-01T00:00:01Z", "created_by": "ENV x=y", "empty_layer": true},
	}
	base, err := e.store.CreateImage(ctx, configFor(t, []digest.Digest{la.DiffID}, hist, nil), chain.CreateOptions{Refs: []string{"base:1"}})
	if err != nil {
		t.Fatal(err)
	}
	hist2 := append(hist, map[string]any{"created": "2026-01-01T00:00:02Z", "created_by": "RUN b"})
	child, err := e.store.CreateImage(ctx, configFor(t, []digest.Digest{la.DiffID, lb.DiffID}, hist2, nil),
		chain.CreateOptions{Parent: base.ID, Refs: []string{"child:1"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.store.CreateImage(ctx, configFor(t, []digest.Digest{la.DiffID}, nil, map[string]any{"author": "other"}),
		chain.CreateOptions{Refs: []string{"127.0.0.1:5000/team/other:v2"}})
	if err != nil {
		t.Fatal(err)
	}
	return imageSet{base, child, other, la.DiffID}
}

func TestImagesCreateResolveTagHistory(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), "vfs")
	set := makeImages(t, e)
	if set.base.ID != digest.FromBytes(set.base.RawConfig) {
		t.Fatal("image ID is not the config digest")
	}
	if !e.cas.Blobs.Has(ctx, set.base.ID) {
		t.Fatal("config not stored as a blob")
	}
	la, _ := e.store.Layer(ctx, set.baseDiff)
	if set.child.Size <= la.Size || set.base.Size != la.Size {
		t.Fatalf("sizes: base %d child %d layer %d", set.base.Size, set.child.Size, la.Size)
	}
	for _, ref := range []string{"base:1", "docker.io/library/base:1", set.base.ID.String(), set.base.ID.Encoded()[:12], "sha256:" + set.base.ID.Encoded()} {
		img, err := e.store.Image(ctx, ref)
		if err != nil || img.ID != set.base.ID {
			t.Errorf("resolve %q: %v %s", ref, err, img.ID)
		}
	}
	other, err := e.store.Image(ctx, "127.0.0.1:5000/team/other:v2")
	if err != nil || other.ID != set.other.ID || other.RepoTags[0] != "127.0.0.1:5000/team/other:v2" {
		t.Fatalf("other: %v %+v", err, other.RepoTags)
	}
	if _, err := e.store.Image(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "No such image: nope:latest") {
		t.Fatalf("missing image: %v", err)
	}
	// A tag moves from one image to another.
	if _, err := e.store.Tag(ctx, "child:1", "base:1"); err != nil {
		t.Fatal(err)
	}
	if img, _ := e.store.Image(ctx, "base:1"); img.ID != set.child.ID {
		t.Fatal("tag did not move")
	}
	if img, _ := e.store.Image(ctx, set.base.ID.String()); len(img.RepoTags) != 0 {
		t.Fatalf("old image keeps the moved tag: %v", img.RepoTags)
	}
	if _, err := e.store.Tag(ctx, "child:1", "Bad Name"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad tag: %v", err)
	}
	hist, err := e.store.History(ctx, "child:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].CreatedBy != "RUN b" || hist[0].ID != set.child.ID.String() || hist[1].ID != set.base.ID.String() || hist[2].Size != la.Size || hist[1].Size != 0 {
		t.Fatalf("history: %+v", hist)
	}
	// Everything survives a restart.
	e.cas.Close()
	e2 := openEnv(t, e.root, "vfs")
	imgs := e2.store.Images(ctx)
	if len(imgs) != 3 {
		t.Fatalf("images after reopen: %d", len(imgs))
	}
	if img, err := e2.store.Image(ctx, "base:1"); err != nil || img.ID != set.child.ID || img.Size != set.child.Size {
		t.Fatalf("after reopen: %v %+v", err, img)
	}
}

func TestDeleteImageConflictsAndCleanup(t *testing.T) {
	ctx := context.Background()
	users := map[digest.Digest][]chain.ImageUser{}
	var mu sync.Mutex
	e := openEnv(t, t.TempDir(), "vfs", chain.WithImageUsers(func(context.Context) map[digest.Digest][]chain.ImageUser {
		mu.Lock()
		defer mu.Unlock()
		return users
	}))
	set := makeImages(t, e)

	_, err := e.store.DeleteImage(ctx, set.base.ID.String(), true, true)
	want := fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", chain.ShortID(set.base.ID))
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != want {
		t.Fatalf("delete parent: %v", err)
	}
	mu.Lock()
	users[set.child.ID] = []chain.ImageUser{{ContainerID: "0123456789abcdef0123", Running: false}}
	mu.Unlock()
	_, err = e.store.DeleteImage(ctx, set.child.ID.String(), false, true)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "(must be forced) - image is being used by stopped container 0123456789ab") {
		t.Fatalf("delete used: %v", err)
	}
	// By name, a used image is only untagged.
	items, err := e.store.DeleteImage(ctx, "child:1", false, true)
	if err != nil || len(items) != 1 || items[0].Untagged != "child:1" {
		t.Fatalf("untag used: %v %+v", err, items)
	}
	if _, err := e.store.Image(ctx, set.child.ID.String()); err != nil {
		t.Fatal("used image deleted by untag")
	}
	mu.Lock()
	users = map[digest.Digest][]chain.ImageUser{}
	mu.Unlock()
	items, err = e.store.DeleteImage(ctx, set.child.ID.String(), false, true)
	if err != nil {
		t.Fatal(err)
	}
	// child's own layer goes; base's stays (base and other use it). With
	// prune, the untagged parent goes unless tagged (base:1 is tagged).
	var deleted []string
	for _, it := range items {
		deleted = append(deleted, it.Deleted)
	}
	if len(deleted) != 2 || deleted[0] != set.child.ID.String() {
		t.Fatalf("deleted %v", deleted)
	}
	if _, err := e.store.Image(ctx, "base:1"); err != nil {
		t.Fatal("tagged parent pruned")
	}
	// Two images share the base layer: deleting one keeps it.
	if _, err := e.store.DeleteImage(ctx, "base:1", false, false); err != nil {
		t.Fatal(err)
	}
	if !e.store.HasLayer(ctx, set.baseDiff) {
		t.Fatal("shared layer deleted")
	}
	items, err = e.store.DeleteImage(ctx, "127.0.0.1:5000/team/other:v2", false, false)
	if err != nil || len(items) != 3 || items[0].Untagged != "127.0.0.1:5000/team/other:v2" || items[2].Deleted != set.baseDiff.String() {
		t.Fatalf("delete last: %v %+v", err, items)
	}
	if dirs, _ := e.drv.List(ctx); len(dirs) != 0 {
		t.Fatalf("layer dirs left: %v", dirs)
	}
	res, err := e.store.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Blobs) != 0 && e.cas.Blobs.Has(ctx, set.base.ID) {
		t.Fatal("GC kept a config of a deleted image")
	}
	if len(e.store.Images(ctx)) != 0 {
		t.Fatal("images left")
	}
}

func TestDeleteByIDReferencedInMultipleRepositories(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), "vfs")
	set := makeImages(t, e)
	if _, err := e.store.Tag(ctx, "127.0.0.1:5000/team/other:v2", "another/repo:x"); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.DeleteImage(ctx, chain.ShortID(set.other.ID), false, false)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "(must be forced) - image is referenced in multiple repositories") {
		t.Fatalf("delete by id: %v", err)
	}
	items, err := e.store.DeleteImage(ctx, chain.ShortID(set.other.ID), true, false)
	if err != nil || len(items) != 3 {
		t.Fatalf("forced: %v %+v", err, items)
	}
}

func TestOpenSweepsOrphansAndUnreferencedLayers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	e := openEnv(t, root, "vfs")
	set := makeImages(t, e)
	// An orphan directory (a crash between Create and Commit) and a layer
	// registered but never referenced (a crash before the image).
	if err := e.drv.Create(ctx, "orphan0000", ""); err != nil {
		t.Fatal(err)
	}
	lone, err := e.store.RegisterLayer(ctx, "", bytes.NewReader(layerTar(t, fixtures.TextFileLayer(99, "lone", 100))), nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "tmp", "junk"), []byte("x"), 0o600)
	e.cas.Close()
	e2 := openEnv(t, root, "vfs")
	if e2.drv.Exists("orphan0000") {
		t.Fatal("orphan dir kept")
	}
	if e2.store.HasLayer(ctx, lone.ChainID) {
		t.Fatal("unreferenced layer kept")
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "junk")); !os.IsNotExist(err) {
		t.Fatal("tmp not swept")
	}
	if _, err := e2.store.Image(ctx, set.child.ID.String()); err != nil {
		t.Fatal(err)
	}
	for _, c := range chain.ChainIDs(set.child.Config.RootFS.DiffIDs) {
		if _, err := e2.store.LayerTar(ctx, c); err != nil {
			t.Fatalf("layer %s lost: %v", c, err)
		}
	}
}

func TestRegisterRefusesBreakoutAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), "vfs")
	var buf bytes.Buffer
	writeTar(t, &buf, "../../escape", "x")
	_, err := e.store.RegisterLayer(ctx, "", bytes.NewReader(buf.Bytes()), nil)
	if err == nil || !strings.Contains(err.Error(), "../../escape") {
		t.Fatalf("breakout: %v", err)
	}
	if dirs, _ := e.drv.List(ctx); len(dirs) != 0 {
		t.Fatalf("dirs left: %v", dirs)
	}
	e.cas.Index.View(ctx, func(tx *cas.Tx) error {
		if ids, _ := tx.LayerDB().List(); len(ids) != 0 {
			t.Errorf("records left: %v", ids)
		}
		return nil
	})
}

func TestCreateImageNeedsItsLayers(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), "vfs")
	_, err := e.store.CreateImage(ctx, configFor(t, []digest.Digest{digest.FromString("absent")}, nil, nil), chain.CreateOptions{})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("image without layers: %v", err)
	}
	if _, err := e.store.CreateImage(ctx, []byte("{not json"), chain.CreateOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad config: %v", err)
	}
	if n := e.store.ImageCount(); n != 0 {
		t.Fatalf("%d images", n)
	}
}

func writeTar(t *testing.T, w io.Writer, name, content string) {
	t.Helper()
	tw := tar.NewWriter(w)
	tw.WriteHeader(&tar.Header{Name: "fine", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("ok"))
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
}

func TestRWLayerMountsOnImageAndHoldsItsChain(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		e := openEnv(t, t.TempDir(), driver)
		set := makeImages(t, e)
		rw, err := e.store.CreateRWLayer(ctx, "c1", set.child.TopLayer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.CreateRWLayer(ctx, "c1", set.child.TopLayer); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("second layer for one container: %v", err)
		}
		root, err := e.store.MountRW(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"b", "etc/motd", "etc/hosts", "etc/resolv.conf", ".dockerenv", "dev/shm"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s missing in the container root: %v", p, err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "written"), []byte("rw"), 0o644); err != nil {
			t.Fatalf("root is not writable: %v", err)
		}
		if err := e.store.UnmountRW(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		// The image is force-deleted while the container holds its chain:
		// the layers stay until the container's layer goes.
		if _, err := e.store.DeleteImage(ctx, set.child.ID.String(), true, false); err != nil {
			t.Fatal(err)
		}
		if !e.store.HasLayer(ctx, set.child.TopLayer) {
			t.Fatal("layer held by a container was deleted")
		}
		if err := e.store.RemoveRWLayer(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if e.store.HasLayer(ctx, set.child.TopLayer) {
			t.Fatal("layer of the deleted image kept after its last container went")
		}
		if e.drv.Exists(rw.MountID) || e.drv.Exists(rw.InitID) {
			t.Fatal("container layer dirs kept")
		}
		if _, err := e.store.RWLayerOf(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("record kept: %v", err)
		}
	})
}
