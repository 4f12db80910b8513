package run

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/netns"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// CreateRequest is the body of POST /containers/create plus its name.
type CreateRequest struct {
	Name             string
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

const linuxMinMemory = 6 * 1024 * 1024

func invalid(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

// noSuchImage words a missing image exactly as dockerd does, with the
// implied tag, so the CLI's auto-pull message matches.
func noSuchImage(ref string) error {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil && !strings.HasPrefix(ref, "sha256:") {
		ref = reference.FamiliarString(reference.TagNameOnly(n))
	}
	return errdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

// clone deep-copies an API value through JSON (create requests are small,
// and the copy keeps callers from changing a record behind its back).
func clone[T any](v *T) *T {
	out := new(T)
	if v == nil {
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	return out
}

// Create makes a container from an image: the record, its read-write
// layer on the image, its directory with hostname, hosts and resolv.conf,
// and the volumes it names. A missing image is exactly `No such image:
// <ref>` (404) so the CLI pulls; a taken name is a 409; an invalid request
// a 400. A failed create leaves nothing behind.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (resp container.CreateResponse, retErr error) {
	if req.Config == nil {
		return resp, invalid("config cannot be empty in order to create a container")
	}
	cfg := clone(req.Config)
	hc := clone(req.HostConfig)
	if cfg.Image == "" {
		return resp, invalid("no image specified")
	}
	name := strings.TrimPrefix(req.Name, "/")
	if req.Name != "" {
		if err := checkName(req.Name); err != nil {
			return resp, err
		}
	}
	img, err := m.cfg.Store.Image(ctx, cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return resp, noSuchImage(cfg.Image)
		}
		return resp, err
	}
	mergeImageConfig(cfg, img.Config.Config)
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = nil
	}
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		return resp, invalid("no command specified")
	}
	warnings, err := m.normalize(cfg, hc)
	if err != nil {
		return resp, err
	}
	logCfg, err := parseLogConfig(hc.LogConfig)
	if err != nil {
		return resp, err
	}
	mounts, err := parseMounts(cfg, hc)
	if err != nil {
		return resp, err
	}

	id := newID()
	if cfg.Hostname == "" {
		if hc.NetworkMode.IsHost() {
			cfg.Hostname, _ = os.Hostname()
		} else {
			cfg.Hostname = id[:12]
		}
	}
	if err := m.reserveName(&name, id); err != nil {
		return resp, err
	}
	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { m.releaseName(name, id) })

	bg := context.WithoutCancel(ctx)
	rw, err := m.cfg.Store.CreateRWLayer(ctx, id, img.TopLayer)
	if err != nil {
		return resp, fmt.Errorf("create container: %w", err)
	}
	undo = append(undo, func() { m.cfg.Store.RemoveRWLayer(bg, id) })

	created, err := m.createVolumes(mounts)
	undo = append(undo, func() {
		for _, v := range created {
			m.volumes.Remove(bg, v, true)
		}
	})
	if err != nil {
		return resp, err
	}

	dir := m.containerDir(id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return resp, fmt.Errorf("create container: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	rec := &record{
		ID:             id,
		Name:           name,
		Created:        time.Now().UTC(),
		Config:         cfg,
		HostConfig:     hc,
		ImageID:        img.ID,
		Driver:         m.cfg.Store.Driver().Name(),
		Mounts:         mounts,
		State:          containerState{Status: container.StateCreated},
		Runtime:        hc.Runtime,
		Log:            logCfg,
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
	}
	if logCfg.Driver == "json-file" {
		rec.LogPath = filepath.Join(dir, id+"-json.log")
	}
	if len(cfg.Entrypoint) > 0 {
		rec.Path, rec.Args = cfg.Entrypoint[0], append(append([]string{}, cfg.Entrypoint[1:]...), cfg.Cmd...)
	} else {
		rec.Path, rec.Args = cfg.Cmd[0], append([]string{}, cfg.Cmd[1:]...)
	}
	rec.GraphDriverData = m.graphDriverData(ctx, rw.MountID, rw.InitID)
	if err := m.writeNetworkFiles(rec); err != nil {
		return resp, err
	}
	if err := m.persist(ctx, rec); err != nil {
		return resp, err
	}
	c := newCtr(rec, &m.gen)
	m.mu.Lock()
	m.byID[id] = c
	m.mu.Unlock()
	m.gen.Add(1)
	m.emit(events.ActionCreate, rec, nil)
	if warnings == nil {
		warnings = []string{}
	}
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

// reserveName takes *name for id (choosing a random one when empty).
func (m *Manager) reserveName(name *string, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if *name == "" {
		*name = randomName(func(n string) bool { _, taken := m.byName[n]; return taken })
	}
	if other, taken := m.byName[*name]; taken {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf(
			"Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", *name, other))
	}
	m.byName[*name] = id
	return nil
}

func (m *Manager) releaseName(name, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName[name] == id {
		delete(m.byName, name)
	}
}

// mergeImageConfig fills the request's config from the image's, as
// dockerd's merge does.
func mergeImageConfig(cfg *container.Config, img dockerspec.DockerOCIImageConfig) {
	if cfg.User == "" {
		cfg.User = img.User
	}
	if len(img.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				if _, ok := cfg.ExposedPorts[port]; !ok {
					cfg.ExposedPorts[port] = struct{}{}
				}
			}
		}
	}
	if len(cfg.Env) == 0 {
		cfg.Env = append([]string{}, img.Env...)
	} else {
		for _, ie := range img.Env {
			k, _, _ := strings.Cut(ie, "=")
			found := false
			for _, ue := range cfg.Env {
				if uk, _, _ := strings.Cut(ue, "="); uk == k {
					found = true
					break
				}
			}
			if !found {
				cfg.Env = append(cfg.Env, ie)
			}
		}
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range img.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = append([]string{}, img.Cmd...)
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = append([]string(nil), img.Entrypoint...)
		}
	}
	if cfg.Healthcheck == nil && img.Healthcheck != nil {
		h := *img.Healthcheck
		cfg.Healthcheck = &h
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if len(img.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = img.Shell
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = img.OnBuild
	}
}

// normalize validates a create request and fills in dockerd's defaults,
// so inspect shows what the container really runs with.
func (m *Manager) normalize(cfg *container.Config, hc *container.HostConfig) (warnings []string, _ error) {
	if cfg.WorkingDir != "" {
		if !path.IsAbs(cfg.WorkingDir) {
			return nil, invalid("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
		}
		cfg.WorkingDir = path.Clean(cfg.WorkingDir)
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return nil, invalid("Invalid signal: %s", cfg.StopSignal)
		}
	}
	if cfg.StopTimeout != nil && *cfg.StopTimeout < -1 {
		return nil, invalid("invalid stop timeout %d", *cfg.StopTimeout)
	}
	switch {
	case hc.NetworkMode == "":
		hc.NetworkMode = network.NetworkDefault
	case hc.NetworkMode == network.NetworkDefault, hc.NetworkMode == network.NetworkBridge,
		hc.NetworkMode.IsNone(), hc.NetworkMode.IsHost():
	case hc.NetworkMode.IsContainer():
		if hc.NetworkMode.ConnectedContainer() == "" {
			return nil, invalid("invalid network mode: %s", hc.NetworkMode)
		}
	default:
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", hc.NetworkMode))
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return nil, invalid("%v", err)
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return nil, invalid("can't create 'AutoRemove' container with restart policy")
	}
	if hc.Runtime == "" {
		hc.Runtime = m.cfg.DefaultRuntime
	}
	if _, ok := m.cfg.Runtimes[hc.Runtime]; !ok {
		return nil, invalid("unknown or invalid runtime name: %s", hc.Runtime)
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = m.cfg.LogDriver
		if len(hc.LogConfig.Config) == 0 {
			hc.LogConfig.Config = map[string]string{}
			for k, v := range m.cfg.LogOpts {
				hc.LogConfig.Config[k] = v
			}
		}
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	if hc.ShmSize < 0 {
		return nil, invalid("SHM size can not be less than 0")
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = m.cfg.ShmSize
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if !hc.IpcMode.Valid() {
		return nil, invalid("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return nil, invalid("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return nil, invalid("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return nil, invalid("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if hc.CgroupnsMode.IsEmpty() {
		hc.CgroupnsMode = container.CgroupnsModeHost
		if cgroupV2() && !hc.Privileged {
			hc.CgroupnsMode = container.CgroupnsModePrivate
		}
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, invalid("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.OomKillDisable == nil {
		f := false
		hc.OomKillDisable = &f
	}
	if hc.Init != nil && *hc.Init && m.cfg.InitPath == "" {
		return nil, invalid("--init requested but no init binary is configured")
	}
	if hc.MaskedPaths == nil && !hc.Privileged {
		hc.MaskedPaths = append([]string{}, defaultMaskedPaths...)
	}
	if hc.ReadonlyPaths == nil && !hc.Privileged {
		hc.ReadonlyPaths = append([]string{}, defaultReadonlyPaths...)
	}
	if _, err := tweakCaps(hc.CapAdd, hc.CapDrop, false); err != nil {
		return nil, err
	}
	if _, err := parseSecurityOpts(hc.SecurityOpt); err != nil {
		return nil, err
	}
	for _, ul := range hc.Ulimits {
		if err := checkUlimit(ul); err != nil {
			return nil, err
		}
	}
	for _, d := range hc.DNS {
		if !d.IsValid() {
			return nil, invalid("invalid DNS server address")
		}
	}
	w, err := checkResources(&hc.Resources)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func cgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// checkResources is dockerd's validation of resource limits.
func checkResources(r *container.Resources) (warnings []string, _ error) {
	if r.Memory != 0 && r.Memory < linuxMinMemory {
		return nil, invalid("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return nil, invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return nil, invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.Memory > 0 && r.MemorySwap == 0 {
		// dockerd's default: swap as large as the memory limit.
		r.MemorySwap = 2 * r.Memory
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return nil, invalid("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < linuxMinMemory {
		return nil, invalid("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return nil, invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.OomKillDisable != nil && *r.OomKillDisable && r.Memory == 0 {
		warnings = append(warnings, "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return nil, invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return nil, invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if nc := runtime.NumCPU(); r.NanoCPUs < 0 || r.NanoCPUs > int64(nc)*1e9 {
		return nil, invalid("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)
	}
	if r.CPUShares < 0 {
		return nil, invalid("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return nil, invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return nil, invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CpusetCpus != "" {
		cpus, err := parseCPUSet(r.CpusetCpus)
		if err != nil {
			return nil, invalid("Invalid value %s for cpuset cpus", r.CpusetCpus)
		}
		nc := runtime.NumCPU()
		for _, c := range cpus {
			if c >= nc {
				return nil, invalid("Requested CPUs are not available - requested %s, available: 0-%d", r.CpusetCpus, nc-1)
			}
		}
	}
	if r.CpusetMems != "" {
		if _, err := parseCPUSet(r.CpusetMems); err != nil {
			return nil, invalid("Invalid value %s for cpuset mems", r.CpusetMems)
		}
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return nil, invalid("Range of blkio weight is from 10 to 1000")
	}
	return warnings, nil
}

// parseCPUSet reads "0-2,4".
func parseCPUSet(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad cpuset %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad cpuset %q", s)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

var rlimitNames = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// checkUlimit refuses unknown ulimits, soft above hard, and hard limits
// above what the host allows, which would otherwise fail inside the
// runtime with an obscure message.
func checkUlimit(ul *container.Ulimit) error {
	if ul == nil {
		return invalid("invalid ulimit: null")
	}
	res, ok := rlimitNames[ul.Name]
	if !ok {
		return invalid("invalid ulimit type: %s", ul.Name)
	}
	if ul.Soft > ul.Hard && ul.Hard != -1 {
		return invalid("ulimit soft limit must be less than or equal to hard limit: %d > %d", ul.Soft, ul.Hard)
	}
	var host unix.Rlimit
	if err := unix.Getrlimit(res, &host); err != nil {
		return nil
	}
	max := host.Max
	if res == unix.RLIMIT_NOFILE {
		// Root may raise nofile up to fs.nr_open, no further.
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
				max = n
			}
		}
	}
	if ul.Hard >= 0 && uint64(ul.Hard) > max && max != unix.RLIM_INFINITY {
		return invalid("ulimit %s: hard limit %d is above the host's hard limit %d", ul.Name, ul.Hard, max)
	}
	return nil
}

// mergeUlimits adds the daemon's default ulimits the container does not
// set itself.
func mergeUlimits(own, defaults []*container.Ulimit) []*container.Ulimit {
	out := append([]*container.Ulimit{}, own...)
	set := map[string]bool{}
	for _, u := range own {
		set[u.Name] = true
	}
	for _, u := range defaults {
		if !set[u.Name] {
			out = append(out, u)
		}
	}
	return out
}

// logSettings is a container's resolved log configuration.
type logSettings struct {
	Driver  string `json:"driver"`
	MaxSize int64  `json:"maxSize,omitempty"`
	MaxFile int    `json:"maxFile,omitempty"`
}

// parseLogConfig checks a log driver and its options.
func parseLogConfig(lc container.LogConfig) (logSettings, error) {
	ls := logSettings{Driver: lc.Type, MaxFile: 1}
	switch lc.Type {
	case "json-file":
	case "none":
		for k := range lc.Config {
			return ls, invalid("unknown log opt '%s' for none log driver", k)
		}
		return ls, nil
	default:
		return ls, invalid("failed to create logging driver: logger: no log driver named '%s' is registered", lc.Type)
	}
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return ls, invalid("failed to parse max-size %q: %v", v, err)
			}
			if n <= 0 && v != "-1" {
				return ls, invalid("max-size must be a positive number")
			}
			if n > 0 {
				ls.MaxSize = n
			}
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return ls, invalid("failed to parse max-file %q: %v", v, err)
			}
			if n < 1 {
				return ls, invalid("max-file cannot be less than 1")
			}
			ls.MaxFile = n
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return ls, invalid("error reading compress log option: %v", err)
			}
			if b {
				return ls, invalid("compress log option is not supported")
			}
		case "labels", "labels-regex", "env", "env-regex", "tag", "mode", "max-buffer-size":
		default:
			return ls, invalid("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if ls.MaxFile > 1 && ls.MaxSize == 0 {
		return ls, invalid("max-file can only be used with max-size")
	}
	return ls, nil
}

// writeNetworkFiles writes a new container's hostname, hosts and
// resolv.conf, which start bind-mounts over the init layer's placeholders.
func (m *Manager) writeNetworkFiles(rec *record) error {
	cfg, hc := rec.Config, rec.HostConfig
	hostname := cfg.Hostname
	if err := os.WriteFile(rec.HostnamePath, []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	var hosts []byte
	var err error
	if hc.NetworkMode.IsHost() {
		host, _ := os.ReadFile(m.cfg.HostHosts)
		hosts, err = netns.HostNetworkHosts(host, hc.ExtraHosts)
	} else {
		hosts, err = netns.BuildHosts(netns.HostsOptions{Hostname: cfg.Hostname, Domainname: cfg.Domainname, ExtraHosts: hc.ExtraHosts})
	}
	if err != nil {
		return invalid("%v", err)
	}
	if err := os.WriteFile(rec.HostsPath, hosts, 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	hostResolv, _ := os.ReadFile(m.cfg.HostResolvConf)
	var resolv []byte
	if hc.NetworkMode.IsHost() && len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		resolv = hostResolv
	} else {
		opts := netns.ResolvOptions{Nameservers: m.cfg.DNS, Search: m.cfg.DNSSearch, Options: m.cfg.DNSOptions}
		if len(hc.DNS) > 0 {
			opts.Nameservers = nil
			for _, a := range hc.DNS {
				opts.Nameservers = append(opts.Nameservers, a.String())
			}
		}
		if len(hc.DNSSearch) > 0 {
			opts.Search = hc.DNSSearch
		}
		if len(hc.DNSOptions) > 0 {
			opts.Options = hc.DNSOptions
		}
		if resolv, err = netns.BuildResolvConf(hostResolv, opts); err != nil {
			return invalid("%v", err)
		}
	}
	if err := os.WriteFile(rec.ResolvConfPath, resolv, 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

// graphDriverData is inspect's GraphDriver.Data for a container layer.
func (m *Manager) graphDriverData(ctx context.Context, mountID, initID string) map[string]string {
	drv := m.cfg.Store.Driver()
	upper := drv.DiffPath(mountID)
	if drv.Name() != "overlay2" {
		return map[string]string{"Dir": upper}
	}
	layerDir := filepath.Dir(upper)
	lowers := []string{drv.DiffPath(initID)}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(drv.DiffPath(initID)), "lower")); err == nil {
		root := filepath.Dir(layerDir)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), ":") {
			if target, err := filepath.EvalSymlinks(filepath.Join(root, l)); err == nil {
				lowers = append(lowers, target)
			}
		}
	}
	return map[string]string{
		"LowerDir":  strings.Join(lowers, ":"),
		"MergedDir": filepath.Join(layerDir, "merged"),
		"UpperDir":  upper,
		"WorkDir":   filepath.Join(layerDir, "work"),
	}
}
