package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/fixtures/load"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// benchImages are the images both daemons hold for the API scenarios.
func benchImages(ctx context.Context) (map[string]v1.Image, error) {
	bb, err := fixtures.BusyboxImage(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{"busybox:latest": bb}
	for i := range 4 {
		img, err := fixtures.SmallImage(uint64(100 + i))
		if err != nil {
			return nil, err
		}
		out[fmt.Sprintf("small%d:latest", i)] = img
	}
	return out, nil
}

// seedBerth writes images into a berthd data root before it starts.
func seedBerth(ctx context.Context, dataRoot string, images map[string]v1.Image) error {
	st, s, err := openStore(ctx, dataRoot)
	if err != nil {
		return err
	}
	defer st.Close()
	for ref, img := range images {
		if _, err := load.LoadImage(ctx, s, img, ref); err != nil {
			return err
		}
	}
	return nil
}

// seedDockerd loads the same images into dockerd with `docker load`.
func seedDockerd(d *daemon, images map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for ref, img := range images {
		t, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	p := filepath.Join(d.dir, "images.tar")
	if err := tarball.MultiRefWriteToFile(p, refs); err != nil {
		return err
	}
	_, err := d.docker("load", "-i", p)
	return err
}

// benchAPI measures GET /_ping and GET /images/json with 4 keep-alive
// clients on the unix socket, berthd and dockerd alternating, and
// berthd's idle RSS.
func benchAPI(ctx context.Context, r *report) error {
	images, err := benchImages(ctx)
	if err != nil {
		return err
	}
	bdir, err := os.MkdirTemp("/var/tmp", "berth-bench-api-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bdir)
	ddir, err := os.MkdirTemp("/var/tmp", "berth-bench-dockerd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ddir)
	if err := seedBerth(ctx, filepath.Join(bdir, "data"), images); err != nil {
		return err
	}
	b, err := startBerthd(ctx, bdir)
	if err != nil {
		return err
	}
	defer b.stop()
	time.Sleep(2 * time.Second)
	idle := b.rssKB()
	dk, err := startDockerd(ctx, ddir)
	if err != nil {
		return err
	}
	defer dk.stop()
	if err := seedDockerd(dk, images); err != nil {
		return err
	}
	const rounds, clients = 3, 4
	dur := 3 * time.Second
	type result struct{ berth, docker []float64 }
	res := map[string]*result{"/_ping": {}, "/v1.41/images/json": {}}
	for range rounds {
		for _, path := range []string{"/_ping", "/v1.41/images/json"} {
			for _, d := range []*daemon{b, dk} {
				rps, err := hammer(d, path, clients, dur)
				if err != nil {
					return err
				}
				if d == b {
					res[path].berth = append(res[path].berth, rps)
				} else {
					res[path].docker = append(res[path].docker, rps)
				}
			}
		}
	}
	busy := b.rssKB()
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	row := func(path string, target float64) string {
		x := res[path]
		ratio := med(x.berth) / med(x.docker)
		verdict := "meets"
		if ratio < target {
			verdict = "MISSES"
		}
		return fmt.Sprintf("| GET %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | **%.1f×** | ≥ %.1f×: %s |", path,
			med(x.berth), slices.Min(x.berth), slices.Max(x.berth), med(x.docker), slices.Min(x.docker), slices.Max(x.docker), ratio, target, verdict)
	}
	rssVerdict := "meets"
	if idle > 30*1024 {
		rssVerdict = "MISSES"
	}
	r.add("Engine API throughput and idle memory (issue 3)", fmt.Sprintf(`
%d keep-alive clients on the unix socket, %d rounds of %v per daemon and
path, berthd and dockerd (Debian docker.io, started as BENCH.md says)
alternating. Both hold the same %d images (busybox + generated ones).
Requests per second, median (min–max).

| request | berthd | dockerd | berthd/dockerd | target |
|---|---|---|---|---|
%s
%s

berthd RSS: idle after start **%.1f MB** (target ≤ 30 MB: %s); after the
load %.1f MB. dockerd + containerd after the load: %.1f MB.
`, clients, rounds, dur, len(images), row("/_ping", 1.5), row("/v1.41/images/json", 10),
		float64(idle)/1024, rssVerdict, float64(busy)/1024, float64(dk.rssKB())/1024))
	return nil
}
