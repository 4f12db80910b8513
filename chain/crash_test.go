package chain_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

const crashEnv = "BERTH_CRASH_CHILD_ROOT"

// TestCrashChildWorkload is the child side of TestKill9LeavesAStoreThatOpens:
// it does nothing unless started by that test with crashEnv set, and then
// runs the store's writing operations in a loop until it is killed.
func TestCrashChildWorkload(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		return
	}
	driver := os.Getenv("BERTH_CRASH_DRIVER")
	seed, _ := strconv.ParseUint(os.Getenv("BERTH_CRASH_SEED"), 10, 64)
	if err := crashWorkload(root, driver, seed); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(3)
	}
}

func crashWorkload(root, driver string, seed uint64) error {
	ctx := context.Background()
	st, err := cas.Open(ctx, root)
	if err != nil {
		return err
	}
	drv, err := mount.New(ctx, driver, filepath.Join(root, "layers"))
	if err != nil {
		return err
	}
	s, err := chain.Open(ctx, st, drv)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	step := func(what string) { fmt.Fprintln(out, "step", what); out.Flush() }
	step("open")
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; ; i++ {
		n := uint64(rng.IntN(1 << 20))
		// A three-layer image through the parallel pipeline.
		var tars [][]byte
		var diffIDs []digest.Digest
		for j := range 3 {
			raw, err := fixtures.LayerTar(fixtures.ManySmallFilesLayer(n*3+uint64(j), 3, 20+j*10, 300))
			if err != nil {
				return err
			}
			tars = append(tars, raw)
			diffIDs = append(diffIDs, digest.FromBytes(raw))
		}
		// Half the time the base layer is shared with earlier images.
		if rng.IntN(2) == 0 {
			raw, _ := fixtures.LayerTar(fixtures.SmallMixedLayer(1))
			tars[0], diffIDs[0] = raw, digest.FromBytes(raw)
		}
		release := s.Lease()
		chainIDs := chain.ChainIDs(diffIDs)
		first := 0
		for first < len(chainIDs) && s.HasLayer(ctx, chainIDs[first]) {
			first++
		}
		parent := digest.Digest("")
		if first > 0 {
			parent = chainIDs[first-1]
		}
		stages, err := s.StageChain(ctx, parent, diffIDs[first:])
		if err != nil {
			return err
		}
		step("staged")
		errs := make(chan error, len(stages))
		for k, stg := range stages {
			stg.Claim()
			go func() { errs <- stg.Apply(ctx, bytes.NewReader(fixtures.Compress(tars[first+k], fixtures.Gzip))) }()
		}
		for range stages {
			if err := <-errs; err != nil {
				return err
			}
		}
		step("applied")
		for k, stg := range stages {
			blob := digest.FromString(fmt.Sprintf("blob-%d-%d", n, k))
			if _, err := stg.Commit(ctx, func(tx *cas.Tx) error {
				if err := tx.Distribution().SetDiffID(blob, stg.DiffID); err != nil {
					return err
				}
				return tx.Distribution().AddV2Metadata(stg.DiffID, cas.V2Metadata{Digest: blob, SourceRepository: "docker.io/library/crash"})
			}); err != nil {
				return err
			}
			step("committed")
		}
		s.Release(ctx, stages)
		cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s","%s","%s"]}}`, diffIDs[0], diffIDs[1], diffIDs[2]))
		img, err := s.CreateImage(ctx, cfg, chain.CreateOptions{Refs: []string{fmt.Sprintf("crash:%d-%d", seed, i)}})
		release()
		if err != nil {
			return err
		}
		step("image")
		// A child image built on it through RegisterLayer.
		release = s.Lease()
		raw, _ := fixtures.LayerTar(fixtures.TextFileLayer(n, "child", 5000))
		l, err := s.RegisterLayer(ctx, img.TopLayer, bytes.NewReader(raw), nil)
		if err != nil {
			release()
			return err
		}
		childCfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s","%s","%s","%s"]}}`, diffIDs[0], diffIDs[1], diffIDs[2], l.DiffID))
		_, err = s.CreateImage(ctx, childCfg, chain.CreateOptions{Parent: img.ID, Refs: []string{fmt.Sprintf("crash-child:%d-%d", seed, i)}})
		release()
		if err != nil {
			return err
		}
		step("child")
		// A partial ingest, as a download cut short would leave.
		w, err := st.Blobs.Writer(ctx, fmt.Sprintf("partial-%d", n))
		if err == nil {
			w.Write(tars[0][:len(tars[0])/2])
			w.Close()
		}
		// Delete an earlier image pair, and collect now and then.
		for _, other := range s.Images(ctx) {
			if len(other.RepoTags) == 1 && strings.HasPrefix(other.RepoTags[0], "crash-child:") && other.RepoTags[0] != fmt.Sprintf("crash-child:%d-%d", seed, i) {
				tag := strings.TrimPrefix(other.RepoTags[0], "crash-child:")
				if _, err := s.DeleteImage(ctx, "crash-child:"+tag, false, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return err
				}
				step("deleted-child")
				if _, err := s.DeleteImage(ctx, "crash:"+tag, false, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return err
				}
				step("deleted")
				break
			}
		}
		if i%3 == 2 {
			if _, err := s.GC(ctx); err != nil {
				return err
			}
			step("gc")
		}
	}
}

// TestKill9LeavesAStoreThatOpens kills a process that is writing to the
// store at many points and checks each time that the store opens and is
// consistent.
func TestKill9LeavesAStoreThatOpens(t *testing.T) {
	points := 60
	if testing.Short() {
		points = 20
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			root := t.TempDir()
			rng := rand.New(rand.NewPCG(42, 42))
			steps := map[string]int{}
			for i := range points {
				// Each phase of the workload gets killed in, at a random
				// moment shortly after it starts.
				target := crashPhases[i%len(crashPhases)]
				after := time.Duration(rng.IntN(15000)) * time.Microsecond
				steps[crashOnce(t, root, driver, uint64(i), target, after)]++
				checkStore(t, root, driver, i)
			}
			t.Logf("%s: killed after these steps: %v", driver, steps)
		})
	}
}

// crashPhases are the workload's step markers; a kill lands just after one.
var crashPhases = []string{"open", "staged", "applied", "committed", "image", "child", "deleted-child", "deleted", "gc"}

// crashOnce starts the workload and kills it a moment (after) past the
// first time it reports target; it returns the target.
func crashOnce(t *testing.T, root, driver string, seed uint64, target string, after time.Duration) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildWorkload$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+root, "BERTH_CRASH_DRIVER="+driver, "BERTH_CRASH_SEED="+strconv.FormatUint(seed, 10))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			if !once && strings.TrimPrefix(sc.Text(), "step ") == target {
				once = true
				close(reached)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("workload exited by itself: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		t.Fatalf("workload never reached step %q", target)
	case <-reached:
	}
	time.Sleep(after)
	cmd.Process.Signal(syscall.SIGKILL)
	err = <-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("workload ended with %v before the kill:\n%s", err, stderr.String())
	}
	return target
}

// checkStore opens the store after a crash and checks what must always
// hold: every record's files exist, reference counts match what refers to
// the layers, no directory lacks a record, images reassemble.
func checkStore(t *testing.T, root, driver string, round int) {
	t.Helper()
	ctx := context.Background()
	st, err := cas.Open(ctx, root)
	if err != nil {
		t.Fatalf("round %d: store does not open: %v", round, err)
	}
	defer st.Close()
	drv, err := mount.New(ctx, driver, filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := chain.Open(ctx, st, drv)
	if err != nil {
		t.Fatalf("round %d: layer store does not open: %v", round, err)
	}
	want := map[digest.Digest]int64{}
	recs := map[digest.Digest]cas.LayerRecord{}
	err = st.Index.View(ctx, func(tx *cas.Tx) error {
		ids, err := tx.LayerDB().List()
		if err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := tx.LayerDB().Get(id, false)
			if err != nil {
				return err
			}
			recs[id] = rec
			if rec.Parent != "" {
				want[rec.Parent]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range s.Images(ctx) {
		if img.TopLayer != "" {
			want[img.TopLayer]++
		}
		if !st.Blobs.Has(ctx, img.ID) {
			t.Fatalf("round %d: image %s has no config blob", round, img.ID)
		}
		for _, c := range chain.ChainIDs(img.Config.RootFS.DiffIDs) {
			if _, ok := recs[c]; !ok {
				t.Fatalf("round %d: image %s misses layer %s", round, img.ID, c)
			}
		}
	}
	dirs, err := drv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(recs) {
		t.Fatalf("round %d: %d layer dirs for %d records", round, len(dirs), len(recs))
	}
	for id, rec := range recs {
		if rec.State != "" {
			t.Fatalf("round %d: layer %s left in state %q", round, id, rec.State)
		}
		if rec.References != want[id] {
			t.Fatalf("round %d: layer %s has %d references, %d things refer to it", round, id, rec.References, want[id])
		}
		if !drv.Exists(rec.CacheID) {
			t.Fatalf("round %d: layer %s has no directory", round, id)
		}
		rc, err := s.LayerTar(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil || digest.NewDigest(digest.SHA256, h) != rec.DiffID {
			t.Fatalf("round %d: layer %s does not reassemble to its diff id: %v", round, id, err)
		}
	}
}
