package run

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
)

// StatsOptions are the query of GET /containers/{id}/stats.
type StatsOptions struct {
	// Stream sends a sample every second until ctx ends.
	Stream bool
	// OneShot answers the first sample at once; without it a single
	// answer waits for a second sample so its precpu_stats are filled.
	OneShot bool
}

// statsInterval is dockerd's sampling period.
const statsInterval = time.Second

// Stats samples a container's resource usage from its cgroups and gives
// each sample to send, as dockerd does: every sample carries the one
// before it (precpu_stats, preread) so a client can compute the CPU
// percentage from one object. A container that is not running gives
// samples with only its name and ID; one that is not running and not
// streamed gives one such sample at once. A stream ends with ctx or when
// the container is removed.
func (m *Manager) Stats(ctx context.Context, ref string, opts StatsOptions, send func(*container.StatsResponse) error) error {
	if opts.Stream && opts.OneShot {
		return invalid("cannot have stream=true and one-shot=true")
	}
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	rec := c.view()
	if !opts.Stream && (!rec.State.running() || rec.State.Restarting) {
		return send(&container.StatsResponse{Name: "/" + rec.Name, ID: rec.ID})
	}
	var prev container.StatsResponse
	var cg cgroupCache
	first := true
	ticker := time.NewTicker(statsInterval)
	defer ticker.Stop()
	for {
		s := m.sample(c, &cg)
		s.PreCPUStats, s.PreRead = prev.CPUStats, prev.Read
		prev = *s
		// Not streamed and not one-shot: the first sample only primes
		// precpu_stats.
		if !(first && !opts.Stream && !opts.OneShot) {
			if err := send(s); err != nil {
				return err
			}
			if !opts.Stream {
				return nil
			}
		}
		first = false
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil
		case <-c.removed:
			// dockerd ends a stream when its container goes.
			return nil
		}
	}
}

// cgroupCache keeps a stream's cgroup directories between samples: they
// only move when the container's init does (a restart), so the runtime's
// state is read again only then.
type cgroupCache struct {
	pid int
	cg  ctrCgroups
}

// get is the cgroups of rec's init, resolved once per pid; a failure is
// not kept, so the next sample tries again.
func (cc *cgroupCache) get(m *Manager, rec *record) (ctrCgroups, error) {
	if cc.pid != 0 && cc.pid == rec.State.Pid {
		return cc.cg, nil
	}
	cg, err := m.cgroupOf(rec)
	if err != nil {
		*cc = cgroupCache{}
		return ctrCgroups{}, err
	}
	*cc = cgroupCache{pid: rec.State.Pid, cg: cg}
	return cg, nil
}

// sample reads one sample; a container that is not running (or whose
// cgroups are gone: it just exited) gives the empty one.
func (m *Manager) sample(c *ctr, cc *cgroupCache) *container.StatsResponse {
	rec := c.view()
	empty := &container.StatsResponse{Name: "/" + rec.Name, ID: rec.ID}
	if !rec.State.running() || rec.State.Restarting {
		return empty
	}
	cg, err := cc.get(m, rec)
	if err != nil {
		return empty
	}
	s, err := readCgroupStats(cg)
	if err != nil {
		m.log.Debug("container stats", "container", rec.ID, "err", err)
		return empty
	}
	s.Name, s.ID = empty.Name, empty.ID
	s.Read = time.Now().UTC()
	// The host's figures are read right after the container's, so the
	// CPU percentage compares like with like.
	if sys, ncpu, err := systemCPUUsage(); err == nil {
		s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs = sys, ncpu
	}
	if mem := m.machineMemory(); mem > 0 && s.MemoryStats.Limit > mem {
		// No limit of its own: the host's memory is its limit.
		s.MemoryStats.Limit = mem
	}
	if !rec.HostConfig.NetworkMode.IsHost() && !rec.Config.NetworkDisabled {
		s.Networks = networkStats(rec.State.Pid)
	}
	return s
}

func readCgroupStats(cg ctrCgroups) (*container.StatsResponse, error) {
	if cg.v2 {
		return readCgroupV2Stats(cg.paths[""])
	}
	return readCgroupV1Stats(cg)
}

// clockTicks is USER_HZ, in which cpuacct.stat counts; 100 on Linux.
const clockTicks = 100

// memoryStatKeysV1 are the memory.stat entries dockerd reports on cgroup
// v1 (the ones containerd's metrics carry).
var memoryStatKeysV1 = []string{
	"cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
	"pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
	"hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge",
	"total_mapped_file", "total_dirty", "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault",
	"total_pgmajfault", "total_inactive_anon", "total_active_anon", "total_inactive_file",
	"total_active_file", "total_unevictable",
}

func readCgroupV1Stats(cg ctrCgroups) (*container.StatsResponse, error) {
	s := &container.StatsResponse{}
	// CPU.
	dir := cg.dir("cpuacct")
	total, err := readUint(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return nil, err
	}
	s.CPUStats.CPUUsage.TotalUsage = total
	if b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage_percpu")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, err := strconv.ParseUint(f, 10, 64); err == nil {
				s.CPUStats.CPUUsage.PercpuUsage = append(s.CPUStats.CPUUsage.PercpuUsage, v)
			}
		}
	}
	if kv, err := readKeyValues(filepath.Join(dir, "cpuacct.stat")); err == nil {
		s.CPUStats.CPUUsage.UsageInUsermode = kv["user"] * 1e9 / clockTicks
		s.CPUStats.CPUUsage.UsageInKernelmode = kv["system"] * 1e9 / clockTicks
	}
	if kv, err := readKeyValues(filepath.Join(cg.dir("cpu"), "cpu.stat")); err == nil {
		s.CPUStats.ThrottlingData = container.ThrottlingData{
			Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"],
		}
	}
	// Memory.
	dir = cg.dir("memory")
	raw, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return nil, err
	}
	s.MemoryStats.Stats = make(map[string]uint64, len(memoryStatKeysV1))
	for _, k := range memoryStatKeysV1 {
		s.MemoryStats.Stats[k] = raw[k]
	}
	s.MemoryStats.Usage, _ = readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	s.MemoryStats.MaxUsage, _ = readUint(filepath.Join(dir, "memory.max_usage_in_bytes"))
	s.MemoryStats.Failcnt, _ = readUint(filepath.Join(dir, "memory.failcnt"))
	s.MemoryStats.Limit, _ = readUint(filepath.Join(dir, "memory.limit_in_bytes"))
	// Pids.
	s.PidsStats = readPids(cg.dir("pids"))
	// Block I/O: the CFQ/BFQ files when the kernel has them and they say
	// something, else the throttle files, as containerd reads them.
	s.BlkioStats = readBlkioV1(cg.dir("blkio"))
	return s, nil
}

func readPids(dir string) container.PidsStats {
	if dir == "" {
		return container.PidsStats{}
	}
	var p container.PidsStats
	p.Current, _ = readUint(filepath.Join(dir, "pids.current"))
	if lim, err := readUint(filepath.Join(dir, "pids.max")); err == nil && lim != ^uint64(0) {
		p.Limit = lim
	}
	return p
}

func readBlkioV1(dir string) container.BlkioStats {
	s := container.BlkioStats{
		IoServiceBytesRecursive: []container.BlkioStatEntry{}, IoServicedRecursive: []container.BlkioStatEntry{},
		IoQueuedRecursive: []container.BlkioStatEntry{}, IoServiceTimeRecursive: []container.BlkioStatEntry{},
		IoWaitTimeRecursive: []container.BlkioStatEntry{}, IoMergedRecursive: []container.BlkioStatEntry{},
		IoTimeRecursive: []container.BlkioStatEntry{}, SectorsRecursive: []container.BlkioStatEntry{},
	}
	if dir == "" {
		return s
	}
	files := []struct {
		name  string
		entry *[]container.BlkioStatEntry
	}{
		{"blkio.sectors_recursive", &s.SectorsRecursive},
		{"blkio.io_service_bytes_recursive", &s.IoServiceBytesRecursive},
		{"blkio.io_serviced_recursive", &s.IoServicedRecursive},
		{"blkio.io_queued_recursive", &s.IoQueuedRecursive},
		{"blkio.io_service_time_recursive", &s.IoServiceTimeRecursive},
		{"blkio.io_wait_time_recursive", &s.IoWaitTimeRecursive},
		{"blkio.io_merged_recursive", &s.IoMergedRecursive},
		{"blkio.time_recursive", &s.IoTimeRecursive},
	}
	n := 0
	if _, err := os.Lstat(filepath.Join(dir, "blkio.io_serviced_recursive")); err == nil {
		for _, f := range files {
			*f.entry = readBlkioFile(filepath.Join(dir, f.name))
			n += len(*f.entry)
		}
	}
	if n == 0 {
		s.IoServicedRecursive = readBlkioFile(filepath.Join(dir, "blkio.throttle.io_serviced"))
		s.IoServiceBytesRecursive = readBlkioFile(filepath.Join(dir, "blkio.throttle.io_service_bytes"))
	}
	return s
}

// readBlkioFile reads "MAJ:MIN [Op] value" lines; the "Total" line goes.
func readBlkioFile(path string) []container.BlkioStatEntry {
	out := []container.BlkioStatEntry{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.FieldsFunc(sc.Text(), func(r rune) bool { return r == ' ' || r == ':' })
		if len(fields) < 3 {
			continue
		}
		major, err1 := strconv.ParseUint(fields[0], 10, 64)
		minor, err2 := strconv.ParseUint(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		e := container.BlkioStatEntry{Major: major, Minor: minor}
		vf := fields[2]
		if len(fields) == 4 {
			e.Op, vf = fields[2], fields[3]
		}
		v, err := strconv.ParseUint(vf, 10, 64)
		if err != nil {
			continue
		}
		e.Value = v
		out = append(out, e)
	}
	return out
}

// memoryStatKeysV2 are the memory.stat entries dockerd reports on cgroup
// v2.
var memoryStatKeysV2 = []string{
	"anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
	"anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
	"slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
	"workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
	"pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
}

func readCgroupV2Stats(dir string) (*container.StatsResponse, error) {
	s := &container.StatsResponse{}
	kv, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, err
	}
	s.CPUStats.CPUUsage = container.CPUUsage{
		TotalUsage: kv["usage_usec"] * 1000, UsageInKernelmode: kv["system_usec"] * 1000, UsageInUsermode: kv["user_usec"] * 1000,
	}
	s.CPUStats.ThrottlingData = container.ThrottlingData{
		Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000,
	}
	if raw, err := readKeyValues(filepath.Join(dir, "memory.stat")); err == nil {
		s.MemoryStats.Stats = make(map[string]uint64, len(memoryStatKeysV2))
		for _, k := range memoryStatKeysV2 {
			s.MemoryStats.Stats[k] = raw[k]
		}
	}
	s.MemoryStats.Usage, _ = readUint(filepath.Join(dir, "memory.current"))
	s.MemoryStats.Limit, _ = readUint(filepath.Join(dir, "memory.max"))
	if ev, err := readKeyValues(filepath.Join(dir, "memory.events")); err == nil {
		s.MemoryStats.Failcnt = ev["oom"]
	}
	s.PidsStats = readPids(dir)
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			var major, minor uint64
			if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
				continue
			}
			var rb, wb uint64
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					rb = n
				case "wbytes":
					wb = n
				}
			}
			s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive,
				container.BlkioStatEntry{Major: major, Minor: minor, Op: "read", Value: rb},
				container.BlkioStatEntry{Major: major, Minor: minor, Op: "write", Value: wb})
		}
	}
	return s, nil
}

// systemCPUUsage is the host's CPU time in nanoseconds (the first seven
// fields of /proc/stat's "cpu" line) and its number of online CPUs, as
// dockerd computes them.
func systemCPUUsage() (usage uint64, ncpu uint32, _ error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 4 || line[:3] != "cpu" {
			break
		}
		if line[3] == ' ' {
			parts := strings.Fields(line)
			if len(parts) < 8 {
				return 0, 0, fmt.Errorf("invalid number of cpu fields")
			}
			var ticks uint64
			for _, p := range parts[1:8] {
				v, err := strconv.ParseUint(p, 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/stat: %w", err)
				}
				ticks += v
			}
			usage = ticks * 1e9 / clockTicks
		}
		if '0' <= line[3] && line[3] <= '9' {
			ncpu++
		}
	}
	return usage, ncpu, sc.Err()
}

// readMachineMemory returns the host's total memory in bytes, 0 if unknown.
func readMachineMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// networkStats reads the interface counters of the container's network
// namespace (through its init's /proc) without loopback, as dockerd
// reports its sandbox's interfaces.
func networkStats(pid int) map[string]container.NetworkStats {
	out := map[string]container.NetworkStats{}
	if pid <= 0 {
		return out
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		v := strings.Fields(rest)
		if name == "lo" || len(v) < 12 {
			continue
		}
		n := make([]uint64, 12)
		for i := range n {
			n[i], _ = strconv.ParseUint(v[i], 10, 64)
		}
		out[name] = container.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return out
}
