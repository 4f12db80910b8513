package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/httpapi"
	"github.com/berth-dev/berth/run"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// daemonID is a stable identity for this data root (dockerd keeps one in
// engine-id).
func daemonID(root string) (string, error) {
	p := filepath.Join(root, "engine-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [16]byte
	rand.Read(b[:])
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	return id, nil
}

func (d *daemon) DaemonInfo(ctx context.Context) (httpapi.DaemonInfo, error) {
	cfg := d.config()
	runtimes := map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}}
	for name, rt := range cfg.Runtimes {
		runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: rt.Path, Args: rt.RuntimeArgs}}
	}
	all, _ := d.containers.List(ctx, run.ListOptions{All: true})
	var running, paused, stopped int
	for _, c := range all {
		switch c.State {
		case "running":
			running++
		case "paused":
			paused++
		default:
			stopped++
		}
	}
	info := httpapi.DaemonInfo{
		ID:                 d.id,
		Containers:         len(all),
		ContainersRunning:  running,
		ContainersPaused:   paused,
		ContainersStopped:  stopped,
		Images:             d.images.ImageCount(),
		DockerRootDir:      cfg.DataRoot,
		Driver:             d.driver.Name(),
		DriverStatus:       driverStatus(d.driver.Name()),
		LoggingDriver:      cfg.LogDriver,
		CgroupDriver:       cfg.CgroupDriver(),
		CgroupVersion:      cgroupVersion(),
		Cgroup:             cgroupFeatures(),
		IPv4Forwarding:     ipForwarding(),
		Runtimes:           runtimes,
		DefaultRuntime:     cfg.DefaultRuntime,
		RegistryConfig:     registryConfig(cfg.InsecureRegistries, cfg.RegistryMirrors),
		Labels:             cfg.Labels,
		Debug:              cfg.Debug,
		LiveRestoreEnabled: cfg.LiveRestore,
		SecurityOptions:    []string{"name=seccomp,profile=default"},
		Plugins: system.PluginsInfo{
			Volume:  []string{"local"},
			Network: []string{"bridge", "host", "none"},
			Log:     []string{"json-file", "none"},
		},
	}
	return info, nil
}

func (d *daemon) Components(ctx context.Context) ([]system.ComponentVersion, error) {
	out := []system.ComponentVersion{}
	runc := filepath.Join(filepath.Dir(os.Args[0]), "runc")
	if b, err := exec.CommandContext(ctx, runc, "--version").Output(); err == nil {
		lines := strings.Split(string(b), "\n")
		v := strings.TrimPrefix(lines[0], "runc version ")
		out = append(out, system.ComponentVersion{Name: "runc", Version: v, Details: map[string]string{"GitCommit": ""}})
	}
	return out, nil
}

func (d *daemon) DiskUsage(ctx context.Context) (httpapi.DiskUsageReport, error) {
	r := httpapi.DiskUsageReport{LayersSize: d.images.LayersSize(ctx)}
	for _, img := range d.images.Images(ctx) {
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		r.Images = append(r.Images, httpapi.ImageSummary{
			Containers: 0, Created: img.Created().Unix(), ID: img.ID.String(), Labels: img.Config.Config.Labels,
			RepoTags: tags, RepoDigests: append([]string{}, img.RepoDigests...), SharedSize: 0,
			Size: img.Size, VirtualSize: img.Size,
		})
	}
	sort.Slice(r.Images, func(i, j int) bool { return r.Images[i].Created > r.Images[j].Created })
	containers, err := d.containers.List(ctx, run.ListOptions{All: true, Size: true})
	if err != nil {
		return r, err
	}
	r.Containers = containers
	// Each image counts the containers created from it, as dockerd's df.
	users := map[string]int64{}
	for _, c := range containers {
		users[c.ImageID]++
	}
	for i := range r.Images {
		r.Images[i].Containers = users[r.Images[i].ID]
	}
	if r.Volumes, err = d.containers.Volumes().Usage(ctx); err != nil {
		return r, err
	}
	return r, nil
}

func driverStatus(name string) [][2]string {
	if name != "overlay2" {
		return nil
	}
	return [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}, {"Using metacopy", "false"}, {"Native Overlay Diff", "true"}, {"userxattr", "false"}}
}

func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}

func cgroupFeatures() httpapi.CgroupFeatures {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if cgroupVersion() == "2" {
		return httpapi.CgroupFeatures{MemoryLimit: true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true}
	}
	return httpapi.CgroupFeatures{
		MemoryLimit:    exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
		SwapLimit:      exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
		CPUCfsPeriod:   exists("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
		CPUCfsQuota:    exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
		CPUShares:      exists("/sys/fs/cgroup/cpu/cpu.shares"),
		CPUSet:         exists("/sys/fs/cgroup/cpuset/cpuset.cpus"),
		PidsLimit:      exists("/sys/fs/cgroup/pids"),
		OomKillDisable: exists("/sys/fs/cgroup/memory/memory.oom_control"),
	}
}

func ipForwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// registryConfig is /info's RegistryConfig: 127.0.0.0/8 is always
// insecure, as in dockerd.
func registryConfig(insecure, mirrors []string) *registry.ServiceConfig {
	rc := &registry.ServiceConfig{IndexConfigs: map[string]*registry.IndexInfo{}, Mirrors: append([]string{}, mirrors...)}
	seen := map[string]bool{}
	add := func(cidr string) {
		if p, err := netip.ParsePrefix(cidr); err == nil && !seen[p.Masked().String()] {
			seen[p.Masked().String()] = true
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p.Masked())
		}
	}
	add("127.0.0.0/8")
	for _, r := range insecure {
		if strings.Contains(r, "/") {
			add(r)
			continue
		}
		rc.IndexConfigs[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}, Secure: false, Official: false}
	}
	rc.IndexConfigs["docker.io"] = &registry.IndexInfo{Name: "docker.io", Mirrors: append([]string{}, mirrors...), Secure: true, Official: true}
	return rc
}
