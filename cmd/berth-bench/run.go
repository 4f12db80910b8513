package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/fixtures"
)

// benchRun measures `docker run --rm --network none busybox true` end to
// end, GET /containers/json?all=1 with 100 containers, and idle memory
// with those 100 containers, berthd against dockerd (+ containerd).
func benchRun(ctx context.Context, r *report) error {
	bb, err := fixtures.BusyboxImage(ctx)
	if err != nil {
		return err
	}
	images := map[string]v1.Image{"busybox:latest": bb}
	bdir, err := os.MkdirTemp("/var/tmp", "berth-bench-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bdir)
	ddir, err := os.MkdirTemp("/var/tmp", "berth-bench-run-dockerd-")
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
	dk, err := startDockerd(ctx, ddir)
	if err != nil {
		return err
	}
	defer dk.stop()
	if err := seedDockerd(dk, images); err != nil {
		return err
	}
	// Warm both (first run pays for page cache and lazy init).
	for _, d := range []*daemon{b, dk} {
		if _, err := d.docker("run", "--rm", "--network", "none", "busybox", "true"); err != nil {
			return err
		}
	}
	const runs = 15
	var bt, dt, rt []time.Duration
	for range runs {
		for _, d := range []*daemon{b, dk} {
			start := time.Now()
			if _, err := d.docker("run", "--rm", "--network", "none", "busybox", "true"); err != nil {
				return err
			}
			if d == b {
				bt = append(bt, time.Since(start))
			} else {
				dt = append(dt, time.Since(start))
			}
		}
		el, err := bareRunc(bdir)
		if err != nil {
			return err
		}
		rt = append(rt, el)
	}
	runRatio := median(bt).Seconds() / median(dt).Seconds()

	for _, d := range []*daemon{b, dk} {
		for i := range 100 {
			if _, err := d.docker("create", "--name", fmt.Sprintf("bench%03d", i), "busybox", "true"); err != nil {
				return err
			}
		}
	}
	time.Sleep(2 * time.Second)
	bRSS, dRSS := b.rssKB()+shimRSS(b), dk.rssKB()
	var bq, dq []float64
	for range 3 {
		for _, d := range []*daemon{b, dk} {
			rps, err := hammer(d, "/v1.41/containers/json?all=1", 4, 3*time.Second)
			if err != nil {
				return err
			}
			if d == b {
				bq = append(bq, rps)
			} else {
				dq = append(dq, rps)
			}
		}
	}
	medF := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	psRatio := medF(bq) / medF(dq)
	rssRatio := float64(bRSS) / float64(dRSS)
	verdict := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "MISSES"
	}
	lo, hi := minMax(bt)
	dlo, dhi := minMax(dt)
	r.add("Containers (issue 5)", fmt.Sprintf(`
berthd and dockerd alternating, the docker CLI as client, busybox from
the offline fixture loaded into both.

| measure | berthd | dockerd (+containerd) | ratio | target |
|---|---|---|---|---|
| docker run --rm --network none busybox true, median of %d (min–max) | %.0f ms (%.0f–%.0f) | %.0f ms (%.0f–%.0f) | **%.2f** | ≤ 0.25: %s |
| GET /containers/json?all=1, 100 containers, 4 clients | %.0f req/s | %.0f req/s | **%.1f×** | ≥ 20×: %s |
| idle RSS with 100 containers created | %.1f MB | %.1f MB | **%.2f** | ≤ 0.30: %s |

Bare `+"`runc run`"+` of the same bundle here: %.0f ms median — the floor
any engine pays on this machine, where starting a process takes ~15 ms.
`, runs, ms(median(bt)), ms(lo), ms(hi), ms(median(dt)), ms(dlo), ms(dhi), runRatio, verdict(runRatio <= 0.25),
		medF(bq), medF(dq), psRatio, verdict(psRatio >= 20),
		float64(bRSS)/1024, float64(dRSS)/1024, rssRatio, verdict(rssRatio <= 0.30), ms(median(rt))))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// shimRSS adds the RSS of berthd's shims (children re-parented to init are
// found by their command line).
func shimRSS(d *daemon) int64 {
	out, _ := exec.Command("pgrep", "-f", d.dir+".*").Output()
	var total int64
	for _, p := range strings.Fields(string(out)) {
		var pid int
		fmt.Sscan(p, &pid)
		if pid != d.cmd.Process.Pid {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "shim") {
				total += pidRSS(pid)
			}
		}
	}
	return total
}

// bareRunc times `runc run` of a busybox bundle made from the seeded
// image's layer, with runc's default spec and no network namespace.
func bareRunc(dir string) (time.Duration, error) {
	bundle := filepath.Join(dir, "bare")
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
			return 0, err
		}
		// The busybox layer dir is the rootfs: copy it once.
		layers, _ := filepath.Glob(filepath.Join(dir, "data", "layers", "*", "diff"))
		for _, l := range layers {
			if _, err := os.Stat(filepath.Join(l, "bin", "busybox")); err == nil {
				if out, err := exec.Command("cp", "-a", l+"/.", filepath.Join(bundle, "rootfs")).CombinedOutput(); err != nil {
					return 0, fmt.Errorf("copy rootfs: %v: %s", err, out)
				}
				break
			}
		}
		spec := exec.Command(filepath.Join(binDir(), "runc"), "spec")
		spec.Dir = bundle
		if out, err := spec.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("runc spec: %v: %s", err, out)
		}
		b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
		s := strings.Replace(string(b), `"terminal": true`, `"terminal": false`, 1)
		s = strings.Replace(s, `"sh"`, `"true"`, 1)
		os.WriteFile(filepath.Join(bundle, "config.json"), []byte(s), 0o644)
	}
	start := time.Now()
	cmd := exec.Command(filepath.Join(binDir(), "runc"), "--root", filepath.Join(dir, "bare-state"), "run", fmt.Sprintf("bare%d", time.Now().UnixNano()))
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("runc run: %v: %s", err, out)
	}
	return time.Since(start), nil
}
