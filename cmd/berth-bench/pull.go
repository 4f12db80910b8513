package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/fixtures"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// benchPull is BENCH.md's cold pull: the bench image from Debian's
// docker-registry on loopback, berthd and dockerd alternating, each pull
// after removing the image on both daemons and dropping caches.
func benchPull(ctx context.Context, r *report) error {
	img, err := fixtures.BenchImage(ctx)
	if err != nil {
		return err
	}
	regDir, err := os.MkdirTemp("/var/tmp", "berth-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(regDir)
	reg, err := fixtures.RunDockerRegistry(ctx, regDir)
	if err != nil {
		return err
	}
	defer reg.Close()
	if _, err := fixtures.PushImage(ctx, reg.Host, "bench", "latest", img); err != nil {
		return err
	}
	ref := reg.Host + "/bench:latest"
	bdir, err := os.MkdirTemp("/var/tmp", "berth-bench-pull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bdir)
	ddir, err := os.MkdirTemp("/var/tmp", "berth-bench-pull-dockerd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ddir)
	b, err := startBerthd(ctx, bdir)
	if err != nil {
		return err
	}
	defer b.stop()
	dk, err := startDockerd(ctx, ddir)
	if err != nil {
		return err
	}
	defer dk.stop()

	const rounds = 3
	var bt, dt []time.Duration
	var peak int64
	for i := range rounds {
		for _, d := range []*daemon{b, dk} {
			d.docker("rmi", ref)
			dropCaches()
			start := time.Now()
			out, err := d.docker("pull", ref)
			el := time.Since(start)
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Downloaded newer image") {
				return fmt.Errorf("%s pull was not cold:\n%s", d.name, out)
			}
			if d == b {
				bt = append(bt, el)
				peak = max(peak, pidHWM(b.cmd.Process.Pid))
			} else {
				dt = append(dt, el)
			}
			fmt.Fprintf(os.Stderr, "pull round %d %s: %v\n", i+1, d.name, el)
		}
	}
	bm, dm := median(bt), median(dt)
	ratio := bm.Seconds() / dm.Seconds()
	verdict := "meets"
	if ratio > 0.30 {
		verdict = "MISSES"
	}
	rssVerdict := "meets"
	if peak > 150*1024 {
		rssVerdict = "MISSES"
	}
	r.add("Cold pull of the bench image (issue 4)", fmt.Sprintf(`
The bench image (5 gzip layers, %s) from Debian's docker-registry on
127.0.0.1, pulled with the docker CLI; before every pull the image is
removed on both daemons and caches are dropped. %d rounds, berthd and
dockerd alternating.

| daemon | median | min–max |
|---|---|---|
| berthd | %.2f s | %.2f–%.2f s |
| dockerd 20.10 | %.2f s | %.2f–%.2f s |

berthd/dockerd: **%.2f** (target ≤ 0.30: %s). berthd peak RSS (VmHWM,
whole run): **%.0f MB** (target ≤ 150 MB during the pull: %s).
`, benchSize(img), rounds, bm.Seconds(), slices.Min(bt).Seconds(), slices.Max(bt).Seconds(),
		dm.Seconds(), slices.Min(dt).Seconds(), slices.Max(dt).Seconds(), ratio, verdict, float64(peak)/1024, rssVerdict))
	return nil
}

func pidHWM(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmHWM:"), "%d", &kb)
			return kb
		}
	}
	return 0
}

func benchSize(img v1.Image) string {
	layers, err := img.Layers()
	if err != nil {
		return "?"
	}
	var total int64
	for _, l := range layers {
		n, _ := l.Size()
		total += n
	}
	return fmt.Sprintf("%.0f MB compressed", float64(total)/1e6)
}
