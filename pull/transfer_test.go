package pull_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/pull"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// randomImage is n layers of random (incompressible) bytes of size each,
// gzip-compressed, so blob sizes are about the file sizes.
func randomImage(t *testing.T, seed uint64, n int, size int64) (v1.Image, []v1.Layer) {
	t.Helper()
	var layers []v1.Layer
	for i := range n {
		layers = append(layers, specLayer(t, fixtures.RandomFileLayer(seed+uint64(i), fmt.Sprintf("data/f%d", i), size), fixtures.Gzip, fixtures.DockerSchema2))
	}
	img, err := fixtures.NewImage(layers)
	if err != nil {
		t.Fatal(err)
	}
	return img, layers
}

func blobGets(reg *fixtures.Registry, digest string) int {
	return reg.Requests(http.MethodGet, "/blobs/"+regexp.QuoteMeta(digest)+"$")
}

func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 100, 3, 400_000)
	pushImage(t, reg, img, "conc/img:latest")
	// Slow bodies keep the first pull's transfers running while the
	// others join them.
	if _, err := reg.Throttle("/blobs/", 4<<20); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{})
	ref := reg.Ref("conc/img")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.puller.Pull(context.Background(), ref, pull.Options{}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
	}
	for i, l := range layers {
		if n := blobGets(reg, blobDigest(t, l)); n != 1 {
			t.Errorf("layer %d fetched %d times, want once", i, n)
		}
	}
	cfgName, _ := img.ConfigName()
	if n := blobGets(reg, cfgName.String()); n != 1 {
		t.Errorf("config fetched %d times, want once", n)
	}
	got, err := e.store.Image(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	e.checkImage(t, got, img, reg.Host+"/conc/img")
	if n := len(e.store.Images(context.Background())); n != 1 {
		t.Errorf("%d images, want 1", n)
	}
}

func TestMaxConcurrentDownloads(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 200, 5, 200_000)
	pushImage(t, reg, img, "limit/img:latest")
	if _, err := reg.Throttle("/blobs/", 2<<20); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{MaxConcurrentDownloads: 2})
	reg.ResetStats()
	got, rec := e.pull(t, reg.Ref("limit/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/limit/img")
	if m := reg.MaxConcurrentBlobGets(); m != 2 {
		t.Errorf("at most %d blob GETs in flight, want exactly 2", m)
	}
	waiting := 0
	for _, l := range layers {
		s := rec.statuses(short(blobDigest(t, l)))
		if slices.Contains(s, "Waiting") {
			waiting++
			want := []string{"Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"}
			if !slices.Equal(s, want) {
				t.Errorf("queued layer lines %q, want %q", s, want)
			}
		}
	}
	if waiting < 3 {
		t.Errorf("%d layers reported Waiting, want at least 3 of 5 with a limit of 2", waiting)
	}
}

func TestLoweredLimitAppliesLive(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, _ := randomImage(t, 300, 4, 200_000)
	pushImage(t, reg, img, "reload/img:latest")
	if _, err := reg.Throttle("/blobs/", 2<<20); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{MaxConcurrentDownloads: 4})
	e.puller.SetConfig(pull.Config{MaxConcurrentDownloads: 1})
	reg.ResetStats()
	e.pull(t, reg.Ref("reload/img"), pull.Options{})
	if m := reg.MaxConcurrentBlobGets(); m != 1 {
		t.Errorf("%d blob GETs in flight after lowering the limit to 1", m)
	}
}

func TestResumeWithRangeAfterDrop(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 400, 1, 1_500_000)
	pushImage(t, reg, img, "drop/img:latest")
	d, size := blobDigest(t, layers[0]), blobSize(t, layers[0])
	reg.DropBlobAfter(d, 600_000, 1)
	e := newEnv(t, pull.Config{})
	reg.ResetStats()
	got, _ := e.pull(t, reg.Ref("drop/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/drop/img")
	var ranges []string
	for _, r := range reg.RangeRequests() {
		if r.Digest == d {
			ranges = append(ranges, r.Range)
		}
	}
	if want := fmt.Sprintf("bytes=600000-%d", size-1); !slices.Equal(ranges, []string{want}) {
		t.Errorf("Range requests %q, want [%s]", ranges, want)
	}
	if served := reg.BlobBytesServed(d); served >= 2*size || served < size {
		t.Errorf("served %d bytes of a %d-byte blob", served, size)
	}
}

func TestRegistryIgnoringRange(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 500, 1, 1_000_000)
	pushImage(t, reg, img, "norange/img:latest")
	d := blobDigest(t, layers[0])
	reg.DropBlobAfter(d, 400_000, 2)
	reg.IgnoreRange(d)
	e := newEnv(t, pull.Config{})
	reg.ResetStats()
	got, _ := e.pull(t, reg.Ref("norange/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/norange/img")
	if n := len(reg.RangeRequests()); n < 1 {
		t.Errorf("no Range request was tried")
	}
}

func TestCorruptBlobFailsCleanly(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 600, 3, 300_000)
	pushImage(t, reg, img, "corrupt/img:latest")
	bad := blobDigest(t, layers[1])
	reg.CorruptBlob(bad, 200_000)
	e := newEnv(t, pull.Config{})
	_, err := e.puller.Pull(context.Background(), reg.Ref("corrupt/img"), pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("pull of a corrupt blob: %v, want an error naming %s", err, bad)
	}
	if !strings.Contains(err.Error(), "verification failed") && !strings.Contains(err.Error(), "diff id") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if n := len(e.store.Images(context.Background())); n != 0 {
		t.Errorf("%d images after a failed pull", n)
	}
	if recs := e.layerRecords(t); len(recs) != 0 {
		t.Errorf("layer records left: %v", recs)
	}
	if e.cas.Blobs.Has(context.Background(), digestOf(bad)) {
		t.Errorf("corrupt blob %s was kept", bad)
	}
	for _, in := range e.ingests(t) {
		if strings.Contains(in, strings.TrimPrefix(bad, "sha256:")) {
			t.Errorf("ingest of the corrupt blob left: %s", in)
		}
	}
	// Once the registry serves the right bytes the pull works.
	reg.ClearFaults()
	got, _ := e.pull(t, reg.Ref("corrupt/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/corrupt/img")
}

func TestServerErrorsAreRetried(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 700, 2, 100_000)
	pushImage(t, reg, img, "flaky/img:latest")
	d := blobDigest(t, layers[0])
	if _, err := reg.FailNext("/blobs/"+regexp.QuoteMeta(d)+"$", http.StatusInternalServerError, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.FailNext("/manifests/", http.StatusServiceUnavailable, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.FailNext("/blobs/"+regexp.QuoteMeta(blobDigest(t, layers[1]))+"$", http.StatusTooManyRequests, 1); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{})
	got, _ := e.pull(t, reg.Ref("flaky/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/flaky/img")
	if n := blobGets(reg, d); n != 3 {
		t.Errorf("%d GETs of the flaky blob, want 3", n)
	}

	// A registry that keeps failing makes the pull fail after 5 retries.
	img2, layers2 := randomImage(t, 710, 1, 10_000)
	pushImage(t, reg, img2, "flaky/bad:latest")
	d2 := blobDigest(t, layers2[0])
	if _, err := reg.FailNext("/blobs/"+regexp.QuoteMeta(d2)+"$", http.StatusInternalServerError, 100); err != nil {
		t.Fatal(err)
	}
	_, err := e.puller.Pull(context.Background(), reg.Ref("flaky/bad"), pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "injected fault") || !errdefs.IsUnavailable(err) {
		t.Errorf("persistent 500: %v", err)
	}
	if n := blobGets(reg, d2); n != 6 {
		t.Errorf("%d GETs of the failing blob, want 6 (1 + 5 retries)", n)
	}
}

func TestProgressSequenceOneLayer(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 800, 1, 600_000)
	pushImage(t, reg, img, "prog/img:latest")
	if _, err := reg.Throttle("/blobs/", 2<<20); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{})
	_, rec := e.pull(t, reg.Ref("prog/img"), pull.Options{})
	id := short(blobDigest(t, layers[0]))
	want := []string{"Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"}
	if got := rec.statuses(id); !slices.Equal(got, want) {
		t.Fatalf("layer lines %q, want %q", got, want)
	}
	size := blobSize(t, layers[0])
	var downloads []pull.Message
	for _, m := range rec.all() {
		switch {
		case m.ID == id && m.Status == "Downloading":
			downloads = append(downloads, m)
		case m.ID == id && m.Status != "Extracting":
			if m.Detail == nil || m.Detail.Current != 0 || m.Progress != "" {
				t.Errorf("%q line carries %+v %q, want an empty progressDetail", m.Status, m.Detail, m.Progress)
			}
		}
	}
	if len(downloads) < 2 || len(downloads) > 20 {
		t.Errorf("%d Downloading lines for a ~0.3 s download, want a few (one per ~100 ms)", len(downloads))
	}
	last := downloads[len(downloads)-1]
	if last.Detail.Current != size || last.Detail.Total != size {
		t.Errorf("last Downloading %+v, want %d/%d", last.Detail, size, size)
	}
	if !strings.HasPrefix(last.Progress, "[==================================================>]") || !strings.HasSuffix(last.Progress, " "+units.HumanSize(float64(size))+"/"+units.HumanSize(float64(size))) {
		t.Errorf("progress bar %q", last.Progress)
	}
	for i := 1; i < len(downloads); i++ {
		if downloads[i].Detail.Current < downloads[i-1].Detail.Current {
			t.Errorf("Downloading went backwards: %d then %d", downloads[i-1].Detail.Current, downloads[i].Detail.Current)
		}
	}
}

func TestCancelledPullLeavesNothingAndResumes(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 900, 2, 1_000_000)
	pushImage(t, reg, img, "cancel/img:latest")
	throttle, err := reg.Throttle("/blobs/", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	driver := testDriver(t)
	e := openEnv(t, root, driver, pull.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	big := blobDigest(t, layers[0])
	go func() {
		// Cancel once part of the first layer has arrived.
		for reg.BlobBytesServed(big) < 300_000 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err = e.puller.Pull(ctx, reg.Ref("cancel/img"), pull.Options{}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	if n := len(e.store.Images(context.Background())); n != 0 {
		t.Errorf("%d images after a cancelled pull", n)
	}
	if recs := e.layerRecords(t); len(recs) != 0 {
		t.Errorf("layer records after a cancelled pull: %v", recs)
	}
	// Give the transfers a moment to save their ingests, then "restart
	// the daemon": a new store and puller on the same data root.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.ingests(t)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	e.close()
	reg.RemoveFault(throttle)
	before := reg.BlobBytesServed(big)
	e2 := openEnv(t, root, driver, pull.Config{})
	got, _ := e2.pull(t, reg.Ref("cancel/img"), pull.Options{})
	e2.checkImage(t, got, img, reg.Host+"/cancel/img")
	second := reg.BlobBytesServed(big) - before
	if size := blobSize(t, layers[0]); second >= size {
		t.Errorf("second pull fetched %d bytes of a %d-byte blob: the ingest was not reused", second, size)
	}
	if len(reg.RangeRequests()) == 0 {
		t.Error("the second pull sent no Range request")
	}
	if in := e2.ingests(t); len(in) != 0 {
		t.Errorf("ingests left after a complete pull: %v", in)
	}
}

// One client giving up must not stop the others watching the same blob.
func TestWatcherLeavingDoesNotStopOthers(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, layers := randomImage(t, 1000, 2, 600_000)
	pushImage(t, reg, img, "watch/img:latest")
	if _, err := reg.Throttle("/blobs/", 2<<20); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{})
	ref := reg.Ref("watch/img")
	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() {
		_, err := e.puller.Pull(ctxA, ref, pull.Options{}, nil)
		errA <- err
	}()
	for reg.BlobBytesServed(blobDigest(t, layers[0])) == 0 {
		time.Sleep(2 * time.Millisecond)
	}
	errB := make(chan error, 1)
	recB := &recorder{}
	go func() {
		_, err := e.puller.Pull(context.Background(), ref, pull.Options{}, recB.add)
		errB <- err
	}()
	// B watches both transfers once it reports their progress.
	deadline := time.Now().Add(10 * time.Second)
	for !(slices.Contains(recB.statuses(short(blobDigest(t, layers[0]))), "Downloading") &&
		slices.Contains(recB.statuses(short(blobDigest(t, layers[1]))), "Downloading")) {
		if time.Now().After(deadline) {
			t.Fatalf("second pull never joined the transfers: %+v", recB.all())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pull: %v", err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("the other pull failed: %v", err)
	}
	got, err := e.store.Image(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	e.checkImage(t, got, img, reg.Host+"/watch/img")
	for i, l := range layers {
		if n := blobGets(reg, blobDigest(t, l)); n != 1 {
			t.Errorf("layer %d fetched %d times, want once", i, n)
		}
	}
}

func TestLayerCountMismatch(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, _ := randomImage(t, 1100, 2, 1000)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.RootFS.DiffIDs = cfg.RootFS.DiffIDs[:1]
	bad, err := mutateConfig(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, bad, "count/img:latest")
	e := newEnv(t, pull.Config{})
	_, err = e.puller.Pull(context.Background(), reg.Ref("count/img"), pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "layers from manifest don't match image configuration") {
		t.Errorf("layer count mismatch: %v", err)
	}
	if errdefs.IsNotFound(err) {
		t.Errorf("reported as not found: %v", err)
	}
	if len(e.store.Images(context.Background())) != 0 || len(e.layerRecords(t)) != 0 {
		t.Error("something was recorded")
	}
}

// A diff_id that does not match the layer fails the pull and records
// nothing.
func TestWrongDiffID(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, _ := randomImage(t, 1200, 2, 1000)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	bad, err := mutateConfig(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, bad, "diffid/img:latest")
	e := newEnv(t, pull.Config{})
	_, err = e.puller.Pull(context.Background(), reg.Ref("diffid/img"), pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "diff id") {
		t.Errorf("wrong diff id: %v", err)
	}
	if len(e.store.Images(context.Background())) != 0 || len(e.layerRecords(t)) != 0 {
		t.Error("something was recorded")
	}
}

// vfs layers depend on their parents, so they are applied one after the
// other from the committed blobs instead of streamed.
func TestPullWithVFS(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img := mixedImage(t, 1300, fixtures.DockerSchema2)
	pushImage(t, reg, img, "vfs/img:latest")
	e := openEnv(t, t.TempDir(), "vfs", pull.Config{MaxConcurrentDownloads: 1})
	got, rec := e.pull(t, reg.Ref("vfs/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/vfs/img")
	if !rec.has("Pull complete") {
		t.Error("no Pull complete line")
	}
}
