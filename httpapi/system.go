package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

// defaultIndexServer is the Docker Hub index address dockerd reports and the
// CLI uses as the default credential key.
const defaultIndexServer = "https://index.docker.io/v1/"

// SystemInfo supplies the facts of /info and /version that only the daemon
// knows. Host facts (kernel, OS, CPUs, memory) are read by the server.
type SystemInfo interface {
	// DaemonInfo is called for every GET /info.
	DaemonInfo(ctx context.Context) (DaemonInfo, error)
	// Components lists the parts besides the engine shown by
	// `docker version` (runc, …), each with Details such as GitCommit.
	Components(ctx context.Context) ([]system.ComponentVersion, error)
}

// noSystemInfo stands in for a missing SystemInfo backend.
type noSystemInfo struct{}

func (noSystemInfo) DaemonInfo(context.Context) (DaemonInfo, error) { return DaemonInfo{}, nil }

func (noSystemInfo) Components(context.Context) ([]system.ComponentVersion, error) { return nil, nil }

// CgroupFeatures says which resource limits the daemon can enforce; the
// docker CLI warns about the missing ones.
type CgroupFeatures struct {
	MemoryLimit    bool
	SwapLimit      bool
	CPUCfsPeriod   bool
	CPUCfsQuota    bool
	CPUShares      bool
	CPUSet         bool
	PidsLimit      bool
	OomKillDisable bool
}

// DaemonInfo is the daemon's part of GET /info.
type DaemonInfo struct {
	ID string
	// Name defaults to the host name.
	Name string

	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int

	DockerRootDir string
	Driver        string
	DriverStatus  [][2]string
	Plugins       system.PluginsInfo
	LoggingDriver string

	CgroupDriver   string // "cgroupfs", "systemd" or "none"
	CgroupVersion  string // "1" or "2"
	Cgroup         CgroupFeatures
	IPv4Forwarding bool

	Runtimes         map[string]system.RuntimeWithStatus
	DefaultRuntime   string
	InitBinary       string
	ContainerdCommit system.Commit
	RuncCommit       system.Commit
	InitCommit       system.Commit

	RegistryConfig *registry.ServiceConfig
	// IndexServerAddress defaults to https://index.docker.io/v1/.
	IndexServerAddress string

	Labels              []string
	Debug               bool
	ExperimentalBuild   bool
	LiveRestoreEnabled  bool
	SecurityOptions     []string // "name=seccomp,profile=default"; a bare "seccomp" gets "name=" prepended
	HTTPProxy           string
	HTTPSProxy          string
	NoProxy             string
	DefaultAddressPools []system.NetworkAddressPool
	Warnings            []string
}

// DiskUsage answers GET /system/df.
type DiskUsage interface {
	DiskUsage(ctx context.Context) (DiskUsageReport, error)
}

// DiskUsageReport is /system/df in the shape API 1.41 clients decode
// (dockerd before 1.52): flat lists, not the newer per-type usage objects.
type DiskUsageReport struct {
	LayersSize int64
	Images     []ImageSummary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// hostFacts are read once when the server starts.
type hostFacts struct {
	KernelVersion   string // uname -r
	Architecture    string // uname -m
	OperatingSystem string // PRETTY_NAME of os-release
	OSVersion       string // VERSION_ID of os-release
	NCPU            int
	MemTotal        int64
	Hostname        string
}

func readHostFacts(log *slog.Logger) hostFacts {
	h := hostFacts{NCPU: runtime.NumCPU()}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		log.Warn("read kernel version", "err", err)
	} else {
		h.KernelVersion = unix.ByteSliceToString(uts.Release[:])
		h.Architecture = unix.ByteSliceToString(uts.Machine[:])
	}
	h.OperatingSystem, h.OSVersion = readOSRelease(log)
	if containerized() {
		h.OperatingSystem += " (containerized)"
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		log.Warn("read memory size", "err", err)
	} else {
		h.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	if name, err := os.Hostname(); err == nil {
		h.Hostname = name
	}
	return h
}

// readOSRelease reads the OS name as dockerd's operatingsystem package does:
// /etc/os-release, falling back to /usr/lib/os-release.
func readOSRelease(log *slog.Logger) (name, version string) {
	var data []byte
	var err error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		log.Warn("read os-release", "err", err)
		return "<unknown>", ""
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		vals[k] = v
	}
	name = vals["PRETTY_NAME"]
	if name == "" {
		name = strings.TrimSpace(vals["NAME"] + " " + vals["VERSION"])
	}
	if name == "" {
		name = "Linux"
	}
	return name, vals["VERSION_ID"]
}

// containerized mirrors dockerd's check: a process 1 in a non-root cgroup
// means the daemon runs inside a container.
func containerized() bool {
	data, err := os.ReadFile("/proc/1/cgroup")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) > 0 && !bytes.HasSuffix(line, []byte(":/")) && !bytes.HasSuffix(line, []byte(":/init.scope")) {
			return true
		}
	}
	return false
}

func (s *Server) registerSystemRoutes() {
	e := s.echo
	e.GET("/_ping", s.ping)
	e.HEAD("/_ping", s.ping)
	e.GET("/version", s.getVersion)
	e.GET("/info", s.getInfo)
	e.GET("/system/df", s.getDiskUsage)
}

// ping answers HEAD and GET /_ping. The CLI reads Api-Version (set by
// versionMiddleware), Ostype, Docker-Experimental, Builder-Version and Swarm.
func (s *Server) ping(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	// "2" would make the CLI use BuildKit, which berth does not serve.
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	if c.Request().Method == http.MethodHead {
		h.Set(echo.HeaderContentLength, "0")
		c.Response().WriteHeader(http.StatusOK)
		return nil
	}
	h.Set(echo.HeaderContentLength, "2")
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write([]byte("OK"))
	return err
}

func (s *Server) getVersion(c echo.Context) error {
	ctx := c.Request().Context()
	comps, err := s.backends.System.Components(ctx)
	if err != nil {
		return fmt.Errorf("version components: %w", err)
	}
	engine := system.ComponentVersion{
		Name:    "Engine",
		Version: s.opts.Version,
		Details: map[string]string{
			"ApiVersion":    s.opts.MaxAPIVersion,
			"Arch":          runtime.GOARCH,
			"BuildTime":     s.opts.BuildTime,
			"Experimental":  "false",
			"GitCommit":     s.opts.GitCommit,
			"GoVersion":     runtime.Version(),
			"KernelVersion": s.host.KernelVersion,
			"MinAPIVersion": s.opts.MinAPIVersion,
			"Os":            runtime.GOOS,
		},
	}
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: s.opts.PlatformName},
		Components:    append([]system.ComponentVersion{engine}, comps...),
		Version:       s.opts.Version,
		APIVersion:    s.opts.MaxAPIVersion,
		MinAPIVersion: s.opts.MinAPIVersion,
		GitCommit:     s.opts.GitCommit,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: s.host.KernelVersion,
		BuildTime:     s.opts.BuildTime,
	}
	return WriteJSON(c, http.StatusOK, v)
}

func (s *Server) getInfo(c echo.Context) error {
	d, err := s.backends.System.DaemonInfo(c.Request().Context())
	if err != nil {
		return fmt.Errorf("daemon info: %w", err)
	}
	return WriteJSON(c, http.StatusOK, s.composeInfo(d))
}

// composeInfo merges daemon and host facts into the /info answer. Lists the
// CLI ranges over are never null, and SecurityOptions always have the
// "name=" form the CLI insists on.
func (s *Server) composeInfo(d DaemonInfo) system.Info {
	debug := d.Debug || s.opts.Debug
	info := system.Info{
		ID:                  d.ID,
		Containers:          d.Containers,
		ContainersRunning:   d.ContainersRunning,
		ContainersPaused:    d.ContainersPaused,
		ContainersStopped:   d.ContainersStopped,
		Images:              d.Images,
		Driver:              d.Driver,
		DriverStatus:        nonNil(d.DriverStatus),
		Plugins:             d.Plugins,
		MemoryLimit:         d.Cgroup.MemoryLimit,
		SwapLimit:           d.Cgroup.SwapLimit,
		CPUCfsPeriod:        d.Cgroup.CPUCfsPeriod,
		CPUCfsQuota:         d.Cgroup.CPUCfsQuota,
		CPUShares:           d.Cgroup.CPUShares,
		CPUSet:              d.Cgroup.CPUSet,
		PidsLimit:           d.Cgroup.PidsLimit,
		OomKillDisable:      d.Cgroup.OomKillDisable,
		IPv4Forwarding:      d.IPv4Forwarding,
		Debug:               debug,
		SystemTime:          time.Now().Format(time.RFC3339Nano),
		LoggingDriver:       d.LoggingDriver,
		CgroupDriver:        d.CgroupDriver,
		CgroupVersion:       d.CgroupVersion,
		NEventsListener:     s.events.Subscribers(),
		KernelVersion:       s.host.KernelVersion,
		OperatingSystem:     s.host.OperatingSystem,
		OSVersion:           s.host.OSVersion,
		OSType:              runtime.GOOS,
		Architecture:        s.host.Architecture,
		IndexServerAddress:  d.IndexServerAddress,
		RegistryConfig:      d.RegistryConfig,
		NCPU:                s.host.NCPU,
		MemTotal:            s.host.MemTotal,
		DockerRootDir:       d.DockerRootDir,
		HTTPProxy:           d.HTTPProxy,
		HTTPSProxy:          d.HTTPSProxy,
		NoProxy:             d.NoProxy,
		Name:                d.Name,
		Labels:              nonNil(d.Labels),
		ExperimentalBuild:   d.ExperimentalBuild,
		ServerVersion:       s.opts.Version,
		Runtimes:            d.Runtimes,
		DefaultRuntime:      d.DefaultRuntime,
		Swarm:               swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		LiveRestoreEnabled:  d.LiveRestoreEnabled,
		InitBinary:          d.InitBinary,
		ContainerdCommit:    d.ContainerdCommit,
		RuncCommit:          d.RuncCommit,
		InitCommit:          d.InitCommit,
		SecurityOptions:     securityOptions(d.SecurityOptions),
		DefaultAddressPools: d.DefaultAddressPools,
		CDISpecDirs:         []string{},
		Warnings:            append(slices.Clone(d.Warnings), featureWarnings(d)...),
	}
	if info.Name == "" {
		info.Name = s.host.Hostname
	}
	if info.IndexServerAddress == "" {
		info.IndexServerAddress = defaultIndexServer
	}
	if info.RegistryConfig == nil {
		info.RegistryConfig = &registry.ServiceConfig{}
	}
	if info.RegistryConfig.IndexConfigs == nil {
		rc := *info.RegistryConfig
		rc.IndexConfigs = map[string]*registry.IndexInfo{}
		info.RegistryConfig = &rc
	}
	if info.Runtimes == nil {
		info.Runtimes = map[string]system.RuntimeWithStatus{}
	}
	if debug {
		info.NGoroutines = runtime.NumGoroutine()
		if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
			info.NFd = len(fds)
		}
	}
	return info
}

// featureWarnings are the warnings dockerd derives from missing kernel
// features; `docker info` prints them on stderr.
func featureWarnings(d DaemonInfo) []string {
	var w []string
	add := func(ok bool, msg string) {
		if !ok {
			w = append(w, "WARNING: "+msg)
		}
	}
	add(d.Cgroup.MemoryLimit, "No memory limit support")
	add(d.Cgroup.SwapLimit, "No swap limit support")
	add(d.Cgroup.OomKillDisable || d.CgroupVersion != "1", "No oom kill disable support")
	add(d.Cgroup.CPUCfsQuota, "No cpu cfs quota support")
	add(d.Cgroup.CPUCfsPeriod, "No cpu cfs period support")
	add(d.Cgroup.CPUShares, "No cpu shares support")
	add(d.Cgroup.CPUSet, "No cpuset support")
	add(d.Cgroup.PidsLimit, "No pids limit support")
	add(d.IPv4Forwarding, "IPv4 forwarding is disabled")
	return w
}

// securityOptions normalises entries to "name=x[,k=v]": the CLI fails
// `docker info` (exit 1) on any other form.
func securityOptions(in []string) []string {
	out := make([]string, 0, len(in))
	for _, o := range in {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if !strings.HasPrefix(o, "name=") {
			o = "name=" + o
		}
		out = append(out, o)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) getDiskUsage(c echo.Context) error {
	var r DiskUsageReport
	if s.backends.DiskUsage != nil {
		var err error
		if r, err = s.backends.DiskUsage.DiskUsage(c.Request().Context()); err != nil {
			return fmt.Errorf("disk usage: %w", err)
		}
	}
	// dockerd sends empty lists, and null for a build cache it has none of.
	r.Images = nonNil(r.Images)
	r.Containers = nonNil(r.Containers)
	r.Volumes = nonNil(r.Volumes)
	return WriteJSON(c, http.StatusOK, r)
}
