package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	defaultPathEnv      = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	inContainerInitPath = "/sbin/docker-init"
)

// defaultCapabilities is Docker's default capability set.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// defaultMaskedPaths and defaultReadonlyPaths are Docker's.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// allCapabilities lists every capability berthd itself may grant (its
// bounding set), as "CAP_X": what --privileged and --cap-add ALL give, as
// dockerd does.
func allCapabilities() []string {
	var out []string
	caps, err := capability.ListSupported()
	if err != nil {
		caps = capability.ListKnown()
	}
	own, err := capability.NewPid2(0)
	if err == nil {
		err = own.Load()
	}
	for _, c := range caps {
		if err == nil && !own.Get(capability.BOUNDING, c) {
			continue
		}
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

func knownCapability(name string) bool {
	for _, c := range capability.ListKnown() {
		if "CAP_"+strings.ToUpper(c.String()) == name {
			return true
		}
	}
	return false
}

// normalizeCaps upper-cases and prefixes capability names, refusing
// unknown ones (Docker's wording).
func normalizeCaps(in []string) ([]string, error) {
	var out []string
	for _, c := range in {
		c = strings.ToUpper(c)
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !knownCapability(c) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown capability: %q", c))
		}
		out = append(out, c)
	}
	return out, nil
}

// tweakCaps applies --cap-add/--cap-drop/--privileged to the defaults.
func tweakCaps(adds, drops []string, privileged bool) ([]string, error) {
	if privileged {
		return allCapabilities(), nil
	}
	add, err := normalizeCaps(adds)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps(drops)
	if err != nil {
		return nil, err
	}
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	var caps []string
	switch {
	case has(add, "ALL"):
		for _, c := range allCapabilities() {
			if !has(drop, c) {
				caps = append(caps, c)
			}
		}
	case has(drop, "ALL"):
		for _, c := range add {
			if c != "ALL" {
				caps = append(caps, c)
			}
		}
	default:
		for _, c := range defaultCapabilities {
			if !has(drop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range add {
			if !has(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	return caps, nil
}

func i64(v int64) *int64 { return &v }

// baseSpec is Docker's default Linux spec.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{},
		Root:    &specs.Root{},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Sysctl: map[string]string{},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},
					{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},
					{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
				},
			},
		},
	}
}

// baseEnv is a container process's environment as dockerd sets it: PATH,
// HOSTNAME and, with a terminal, TERM, overridden by env.
func baseEnv(hostname string, tty bool, env []string) []string {
	base := []string{"PATH=" + defaultPathEnv, "HOSTNAME=" + hostname}
	if tty {
		base = append(base, "TERM=xterm")
	}
	return replaceOrAppendEnv(base, env)
}

// replaceOrAppendEnv overrides entries of env by key with those of
// overrides, appending new keys.
func replaceOrAppendEnv(env, overrides []string) []string {
	idx := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		idx[k] = i
	}
	for _, o := range overrides {
		k, _, hasEq := strings.Cut(o, "=")
		if i, ok := idx[k]; ok {
			if hasEq {
				env[i] = o
			} else {
				env[i] = ""
			}
			continue
		}
		if hasEq {
			idx[k] = len(env)
			env = append(env, o)
		}
	}
	out := env[:0]
	for _, e := range env {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// resolveUser maps a Docker user spec (name, uid, name:group, uid:gid)
// to ids using the image's /etc/passwd and /etc/group.
func resolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	var u specs.User
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return u, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return u, err
	}
	eu, err := user.GetExecUserPath(spec, nil, passwd, group)
	if err != nil {
		return u, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	u.UID, u.GID = uint32(eu.Uid), uint32(eu.Gid)
	u.AdditionalGids = []uint32{u.GID}
	var extra []int
	if len(groupAdd) > 0 {
		extra, err = user.GetAdditionalGroupsPath(groupAdd, group)
		if err != nil {
			return u, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	for _, g := range append(eu.Sgids, extra...) {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

// buildSpec makes the OCI spec of a run, following dockerd's createSpec.
func (m *Manager) buildSpec(ctx context.Context, rec *record, rootfs, nsPath string) (*specs.Spec, error) {
	cfg, hc := rec.Config, rec.HostConfig
	s := baseSpec()
	s.Root = &specs.Root{Path: rootfs, Readonly: hc.ReadonlyRootfs}

	// Process.
	p := s.Process
	p.Args = append([]string{rec.Path}, rec.Args...)
	if hc.Init != nil && *hc.Init && !hc.PidMode.IsHost() {
		p.Args = append([]string{inContainerInitPath, "--", rec.Path}, rec.Args...)
	}
	p.Terminal = cfg.Tty
	p.Env = baseEnv(cfg.Hostname, cfg.Tty, cfg.Env)
	usr, err := resolveUser(rootfs, cfg.User, hc.GroupAdd)
	if err != nil {
		return nil, err
	}
	p.User = usr
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := makeWorkdir(rootfs, p.Cwd); err != nil {
		return nil, err
	}
	caps, err := tweakCaps(hc.CapAdd, hc.CapDrop, hc.Privileged)
	if err != nil {
		return nil, err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Permitted: caps, Effective: caps}
	oom := hc.OomScoreAdj
	p.OOMScoreAdj = &oom
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	p.NoNewPrivileges = sec.noNewPrivileges
	ulimits := mergeUlimits(hc.Ulimits, m.cfg.DefaultUlimits)
	for _, ul := range ulimits {
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(ul.Name), Soft: uint64(ul.Soft), Hard: uint64(ul.Hard)})
	}
	if cfg.Tty && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}

	// Namespaces.
	l := s.Linux
	l.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	switch {
	case hc.NetworkMode.IsHost():
	case hc.NetworkMode.IsContainer():
		path, err := m.namespaceOf(hc.NetworkMode.ConnectedContainer(), "net")
		if err != nil {
			return nil, err
		}
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath})
		if sysctlExists("net.ipv4.ping_group_range") {
			l.Sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if sysctlExists("net.ipv4.ip_unprivileged_port_start") {
			l.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
	}
	if !hc.UTSMode.IsHost() {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
		s.Hostname = cfg.Hostname
		s.Domainname = cfg.Domainname
	}
	switch {
	case hc.PidMode.IsHost():
	case hc.PidMode.IsContainer():
		path, err := m.namespaceOf(hc.PidMode.Container(), "pid")
		if err != nil {
			return nil, err
		}
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	switch {
	case hc.IpcMode.IsHost():
	case hc.IpcMode.IsContainer():
		path, err := m.namespaceOf(hc.IpcMode.Container(), "ipc")
		if err != nil {
			return nil, err
		}
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: path})
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if hc.CgroupnsMode.IsPrivate() {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	// Cgroups and resources.
	parent := hc.CgroupParent
	if parent == "" {
		parent = m.cfg.CgroupParent
	}
	l.CgroupsPath = filepath.Join("/", parent, rec.ID)
	// l.Resources keeps the devices the base spec allows.
	res := linuxResources(hc.Resources)
	l.Resources.Memory, l.Resources.CPU = res.Memory, res.CPU
	l.Resources.Pids, l.Resources.BlockIO = res.Pids, res.BlockIO
	for k, v := range hc.Sysctls {
		l.Sysctl[k] = v
	}
	if err := m.addDevices(s, hc); err != nil {
		return nil, err
	}
	l.MaskedPaths = hc.MaskedPaths
	l.ReadonlyPaths = hc.ReadonlyPaths

	// Mounts.
	if err := m.addMounts(s, rec); err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init && !hc.PidMode.IsHost() {
		if m.cfg.InitPath == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("--init requested but no init binary is configured")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: inContainerInitPath, Type: "bind", Source: m.cfg.InitPath, Options: []string{"bind", "ro"}})
	}

	// Seccomp.
	if !hc.Privileged && !sec.unconfined && m.runtimeSeccomp(rec.Runtime) {
		var prof *specs.LinuxSeccomp
		if sec.profile != "" {
			prof, err = seccomp.LoadProfile(sec.profile, s)
		} else {
			prof, err = seccomp.GetDefaultProfile(s)
		}
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("seccomp profile: %v", err))
		}
		l.Seccomp = prof
	}
	if len(hc.Annotations) > 0 {
		s.Annotations = hc.Annotations
	}
	return s, nil
}

func sysctlExists(name string) bool {
	_, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	return err == nil
}

// makeWorkdir creates the working directory in the rootfs if missing, as
// Docker does.
func makeWorkdir(rootfs, cwd string) error {
	p, err := securejoin.SecureJoin(rootfs, cwd)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err == nil {
		if !st.IsDir() {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Cannot mkdir: %s is not a directory", cwd))
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.MkdirAll(p, 0o755)
}

// linuxResources maps a container's resources to the runtime's, for a
// create's spec and for an update alike: unset fields stay nil (an
// update leaves them as they are), and a pids limit of 0 or less is -1,
// no limit.
func linuxResources(r container.Resources) *specs.LinuxResources {
	res := &specs.LinuxResources{
		Memory: memoryResources(r),
		CPU:    cpuResources(r),
	}
	if r.PidsLimit != nil {
		lim := *r.PidsLimit
		if lim <= 0 {
			lim = -1
		}
		res.Pids = &specs.LinuxPids{Limit: &lim}
	}
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return res
}

func memoryResources(r container.Resources) *specs.LinuxMemory {
	var mem specs.LinuxMemory
	if r.Memory > 0 {
		mem.Limit = i64(r.Memory)
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = i64(r.MemoryReservation)
	}
	if r.MemorySwap > 0 || r.MemorySwap == -1 && r.Memory > 0 {
		mem.Swap = i64(r.MemorySwap)
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		sw := uint64(*r.MemorySwappiness)
		mem.Swappiness = &sw
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		mem.DisableOOMKiller = r.OomKillDisable
	}
	if mem == (specs.LinuxMemory{}) {
		return nil
	}
	return &mem
}

func cpuResources(r container.Resources) *specs.LinuxCPU {
	var cpu specs.LinuxCPU
	if r.CPUShares > 0 {
		sh := uint64(r.CPUShares)
		cpu.Shares = &sh
	}
	cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
	if r.NanoCPUs > 0 {
		period := uint64(100000)
		cpu.Period = &period
		cpu.Quota = i64(r.NanoCPUs * int64(period) / 1e9)
	}
	if r.CPUPeriod != 0 {
		period := uint64(r.CPUPeriod)
		cpu.Period = &period
	}
	if r.CPUQuota != 0 {
		cpu.Quota = i64(r.CPUQuota)
	}
	if r.CPURealtimePeriod != 0 {
		rp := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod = &rp
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime = i64(r.CPURealtimeRuntime)
	}
	if cpu == (specs.LinuxCPU{}) {
		return nil
	}
	return &cpu
}

// namespaceOf is the namespace file of another running container
// (--network/--pid/--ipc container:X).
func (m *Manager) namespaceOf(ref, ns string) (string, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return "", err
	}
	r := c.view()
	if !r.State.running() || r.State.Pid == 0 {
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join %s namespace of a non running container: %s", ns, ref))
	}
	return fmt.Sprintf("/proc/%d/ns/%s", r.State.Pid, ns), nil
}

// addDevices gives privileged containers the host's devices and others
// the devices they map.
func (m *Manager) addDevices(s *specs.Spec, hc *container.HostConfig) error {
	l := s.Linux
	if hc.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return err
		}
		l.Devices = append(l.Devices, devs...)
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	for _, d := range hc.Devices {
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		dst := d.PathInContainer
		if dst == "" {
			dst = d.PathOnHost
		}
		dev, err := deviceFromPath(d.PathOnHost, dst)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("error gathering device information while adding custom device %q: %v", d.PathOnHost, err))
		}
		l.Devices = append(l.Devices, dev)
		l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: i64(dev.Major), Minor: i64(dev.Minor), Access: perms})
	}
	return nil
}

func deviceFromPath(host, ctr string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errors.New("not a device node")
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: ctr, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// hostDevices lists the device nodes under /dev for privileged
// containers, skipping what the runtime mounts itself.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	skip := map[string]bool{"/dev/pts": true, "/dev/shm": true, "/dev/fd": true, "/dev/mqueue": true, "/dev/.lxc": true, "/dev/.udev": true}
	err := filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if skip[p] {
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		dev, err := deviceFromPath(p, p)
		if err == nil {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}

// addMounts puts Docker's default mounts, the network files and the
// container's own mounts into the spec.
func (m *Manager) addMounts(s *specs.Spec, rec *record) error {
	hc := rec.HostConfig
	user := map[string]bool{}
	for _, mp := range rec.Mounts {
		user[mp.Destination] = true
	}
	var mounts []specs.Mount
	for _, mt := range s.Mounts {
		if user[mt.Destination] || (user["/dev"] && strings.HasPrefix(mt.Destination, "/dev/")) {
			continue
		}
		if mt.Destination == "/dev/shm" {
			if hc.IpcMode.IsNone() {
				continue
			}
			mt.Options = append(mt.Options, "size="+strconv.FormatInt(hc.ShmSize, 10))
		}
		if hc.ReadonlyRootfs {
			switch mt.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
			default:
				if !hasOpt(mt.Options, "ro") {
					mt.Options = append(mt.Options, "ro")
				}
			}
		}
		if hc.Privileged && (mt.Destination == "/sys" || mt.Type == "cgroup") {
			mt.Options = withoutOpt(mt.Options, "ro")
		}
		mounts = append(mounts, mt)
	}
	// The container's own mounts and its network files, shallowest first.
	var own []specs.Mount
	netFiles := []struct{ dst, src string }{
		{"/etc/resolv.conf", rec.ResolvConfPath},
		{"/etc/hostname", rec.HostnamePath},
		{"/etc/hosts", rec.HostsPath},
	}
	for _, f := range netFiles {
		if user[f.dst] || f.src == "" {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if hc.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		own = append(own, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	for _, mp := range rec.Mounts {
		switch mp.Type {
		case mountTypeTmpfs:
			opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
			if mp.TmpfsData != "" {
				opts = mergeTmpfsOptions(opts, strings.Split(mp.TmpfsData, ","))
			}
			own = append(own, specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			opts := []string{"rbind"}
			if mp.NonRecursive {
				opts[0] = "bind"
			}
			if !mp.RW {
				opts = append(opts, "ro")
			}
			prop := mp.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			opts = append(opts, string(prop))
			own = append(own, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: opts})
		}
	}
	sort.SliceStable(own, func(i, j int) bool {
		return strings.Count(filepath.Clean(own[i].Destination), "/") < strings.Count(filepath.Clean(own[j].Destination), "/")
	})
	s.Mounts = append(mounts, own...)
	return nil
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func withoutOpt(opts []string, o string) []string {
	var out []string
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

// mergeTmpfsOptions lets user options override the defaults they
// contradict (exec over noexec and so on).
func mergeTmpfsOptions(defaults, user []string) []string {
	opposite := map[string]string{"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid", "dev": "nodev", "nodev": "dev", "rw": "ro", "ro": "rw"}
	set := map[string]bool{}
	for _, u := range user {
		k, _, _ := strings.Cut(u, "=")
		set[k] = true
	}
	var out []string
	for _, d := range defaults {
		if o, ok := opposite[d]; ok && set[o] {
			continue
		}
		if propagationModes[d] {
			skip := false
			for _, u := range user {
				skip = skip || propagationModes[u]
			}
			if skip {
				continue
			}
		}
		out = append(out, d)
	}
	seen := map[string]bool{}
	for _, u := range user {
		if u == "" {
			continue
		}
		k, _, _ := strings.Cut(u, "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, u)
	}
	return out
}

// securityOpts are the parsed --security-opt values.
type securityOpts struct {
	noNewPrivileges bool
	unconfined      bool
	profile         string // a custom seccomp profile (JSON)
}

func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, o := range opts {
		if o == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		if o == "disable" {
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok {
			return s, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt 1: %q", o))
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt 2: %q", o))
			}
			s.noNewPrivileges = b
		case "seccomp":
			if v == "unconfined" {
				s.unconfined = true
			} else if v != "builtin" && v != "" {
				s.profile = v
			}
		case "label", "apparmor", "systempaths", "writable-cgroups":
			// No SELinux or AppArmor here; accepted as dockerd accepts
			// them on hosts without those modules.
		default:
			return s, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt 2: %q", o))
		}
	}
	return s, nil
}

// runtimeSeccomp reports whether a runtime can apply seccomp filters
// (runc built without libseccomp cannot), asking it once.
func (m *Manager) runtimeSeccomp(name string) bool {
	path := m.cfg.Runtimes[name]
	m.seccompMu.Lock()
	defer m.seccompMu.Unlock()
	if v, ok := m.seccomp[path]; ok {
		return v
	}
	v := true
	if out, err := exec.Command(path, "features").Output(); err == nil {
		var f struct {
			Linux struct {
				Seccomp *struct {
					Enabled *bool `json:"enabled"`
				} `json:"seccomp"`
			} `json:"linux"`
		}
		if json.Unmarshal(out, &f) == nil && f.Linux.Seccomp != nil && f.Linux.Seccomp.Enabled != nil {
			v = *f.Linux.Seccomp.Enabled
		}
	}
	m.seccomp[path] = v
	return v
}
