package pull_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/pull"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"
)

// env is one data root: a cas store, a chain store on a graph driver and a
// puller, as berthd wires them.
type env struct {
	root   string
	driver string
	cas    *cas.Store
	store  *chain.Store
	puller *pull.Puller
}

// testDriver is overlay2 where the kernel allows it (the machine this
// project targets does), vfs otherwise.
func testDriver(t testing.TB) string {
	t.Helper()
	if err := mount.OverlaySupported(t.TempDir()); err == nil {
		return "overlay2"
	} else if os.Getenv("CI") != "" {
		t.Fatalf("overlay2 is not usable here: %v", err)
	}
	return "vfs"
}

func newEnv(t *testing.T, cfg pull.Config, opts ...pull.Option) *env {
	t.Helper()
	return openEnv(t, t.TempDir(), testDriver(t), cfg, opts...)
}

func openEnv(t testing.TB, root, driver string, cfg pull.Config, opts ...pull.Option) *env {
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
	s, err := chain.Open(ctx, st, drv, chain.WithDeviceNodes(true))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e := &env{root: root, driver: driver, cas: st, store: s}
	opts = append([]pull.Option{pull.WithRetryBackoff(time.Millisecond), pull.WithLogger(testLogger(t))}, opts...)
	e.puller = pull.New(s, cfg, opts...)
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) close() {
	if e.cas != nil {
		e.cas.Close()
		e.cas = nil
	}
}

// testLogger sends debug logs to the test log, shown only on failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recorder collects progress lines.
type recorder struct {
	mu   sync.Mutex
	msgs []pull.Message
}

func (r *recorder) add(m pull.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) all() []pull.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pull.Message(nil), r.msgs...)
}

// statuses lists the statuses of one id, consecutive repeats collapsed.
func (r *recorder) statuses(id string) []string {
	var out []string
	for _, m := range r.all() {
		if m.ID != id {
			continue
		}
		if len(out) > 0 && out[len(out)-1] == m.Status {
			continue
		}
		out = append(out, m.Status)
	}
	return out
}

func (r *recorder) has(status string) bool {
	for _, m := range r.all() {
		if m.Status == status {
			return true
		}
	}
	return false
}

func (e *env) pull(t *testing.T, ref string, o pull.Options) (chain.Image, *recorder) {
	t.Helper()
	rec := &recorder{}
	img, err := e.puller.Pull(context.Background(), ref, o, rec.add)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img, rec
}

// checkImage verifies a pulled image against the source: ID = config
// digest, diff_ids, every layer reassembling to its exact tar, and the
// compressed blobs kept with their distribution records naming one of
// repos (a layer that already existed keeps the repository it came from).
func (e *env) checkImage(t *testing.T, img chain.Image, src v1.Image, repos ...string) {
	t.Helper()
	ctx := context.Background()
	cfgName, err := src.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if img.ID.String() != cfgName.String() {
		t.Errorf("image ID %s, want the config digest %s", img.ID, cfgName)
	}
	layers, err := src.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Config.RootFS.DiffIDs) != len(layers) {
		t.Fatalf("%d diff_ids, want %d", len(img.Config.RootFS.DiffIDs), len(layers))
	}
	chainIDs := chain.ChainIDs(img.Config.RootFS.DiffIDs)
	for i, l := range layers {
		diffID, _ := l.DiffID()
		blob, _ := l.Digest()
		if img.Config.RootFS.DiffIDs[i].String() != diffID.String() {
			t.Errorf("layer %d: diff_id %s, want %s", i, img.Config.RootFS.DiffIDs[i], diffID)
		}
		want := uncompressed(t, l)
		rc, err := e.store.LayerTar(ctx, chainIDs[i])
		if err != nil {
			t.Fatalf("layer %d tar: %v", i, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d tar: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("layer %d: reassembled tar differs (%d bytes, want %d)", i, len(got), len(want))
		}
		bd := digest.Digest(blob.String())
		if !e.cas.Blobs.Has(ctx, bd) {
			t.Errorf("layer %d: compressed blob %s not kept", i, bd)
		}
		err = e.cas.Index.View(ctx, func(tx *cas.Tx) error {
			d, err := tx.Distribution().DiffID(bd)
			if err != nil {
				return err
			}
			if d.String() != diffID.String() {
				return fmt.Errorf("diffid-by-digest %s = %s, want %s", bd, d, diffID)
			}
			md, err := tx.Distribution().V2Metadata(d)
			if err != nil {
				return err
			}
			for _, m := range md {
				if m.Digest == bd && slices.Contains(repos, m.SourceRepository) {
					return nil
				}
			}
			return fmt.Errorf("v2metadata of %s = %+v, want %s from one of %v", d, md, bd, repos)
		})
		if err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
	}
}

func uncompressed(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
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

// layerRecords lists the layer records of the store.
func (e *env) layerRecords(t *testing.T) []digest.Digest {
	t.Helper()
	var ids []digest.Digest
	err := e.cas.Index.View(context.Background(), func(tx *cas.Tx) error {
		var err error
		ids, err = tx.LayerDB().List()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// ingests lists the ingest directories left on disk.
func (e *env) ingests(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.root, "ingest"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	return out
}

// specLayer makes a layer of a spec with a compression, typed for format f.
func specLayer(t *testing.T, spec fixtures.LayerSpec, kind fixtures.Compression, f fixtures.ManifestFormat) v1.Layer {
	t.Helper()
	l, err := fixtures.LayerFromSpec(spec, kind, f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fileTar is a one-file layer tar, for hand-made layers.
func fileTar(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg,
		ModTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func blobDigest(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func blobSize(t *testing.T, l v1.Layer) int64 {
	t.Helper()
	n, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func short(d string) string { return strings.TrimPrefix(d, "sha256:")[:12] }

func pushImage(t *testing.T, reg *fixtures.Registry, img v1.Image, repoTag string) string {
	t.Helper()
	h, err := reg.Push(context.Background(), img, repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

// mutateConfig replaces an image's config, keeping its layers: a way to
// make manifests whose config lies about them.
func mutateConfig(img v1.Image, cfg *v1.ConfigFile) (v1.Image, error) {
	return mutate.ConfigFile(img, cfg)
}

var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
