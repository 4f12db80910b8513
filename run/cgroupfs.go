package run

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/run/shim"
)

// ctrCgroups are the cgroup directories of a running container, as its
// runtime created them: one per v1 controller, or the unified directory
// (key "") on a cgroup v2 host. Hybrid hosts list both, and the v1
// controllers are the ones that count there.
type ctrCgroups struct {
	v2    bool
	paths map[string]string
}

// cgroupOf reads the container's cgroup directories from the runtime's
// state (runc keeps them in <root>/<id>/state.json as cgroup_paths, the
// same file the shim reads for OOM kills), so berth never has to
// recompute where the runtime put them.
func (m *Manager) cgroupOf(rec *record) (ctrCgroups, error) {
	paths, err := shim.ReadCgroupPaths(m.runtimeRoot(rec.Runtime), rec.ID)
	if err != nil {
		return ctrCgroups{}, fmt.Errorf("runtime state of %s: %w", rec.ID, err)
	}
	if len(paths) == 0 {
		return ctrCgroups{}, fmt.Errorf("runtime state of %s names no cgroup", rec.ID)
	}
	// The runtime names only the unified directory on a v2 host; a
	// hybrid one also lists the v1 controllers, which count there.
	_, unified := paths[""]
	return ctrCgroups{v2: unified && len(paths) == 1, paths: paths}, nil
}

// dir is the directory of a controller ("" for any on v2).
func (d ctrCgroups) dir(controller string) string {
	if d.v2 {
		return d.paths[""]
	}
	return d.paths[controller]
}

// pids lists every process in the container's cgroup and the cgroups
// below it (a container may make its own).
func (d ctrCgroups) pids() ([]int, error) {
	dir := ""
	for _, c := range []string{"pids", "memory", "cpu", "devices", "freezer"} {
		if dir = d.dir(c); dir != "" {
			break
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("no cgroup to list processes from")
	}
	var out []int
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			// A sub-cgroup removed while walking is no error.
			if os.IsNotExist(err) && p != dir {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if os.IsNotExist(err) && p != dir {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

// frozen tells whether the container's freezer holds it.
func (d ctrCgroups) frozen() (bool, error) {
	if d.v2 {
		b, err := os.ReadFile(filepath.Join(d.paths[""], "cgroup.freeze"))
		if err != nil {
			return false, err
		}
		return strings.TrimSpace(string(b)) == "1", nil
	}
	dir := d.paths["freezer"]
	if dir == "" {
		return false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
	if err != nil {
		return false, err
	}
	s := strings.TrimSpace(string(b))
	return s == "FROZEN" || s == "FREEZING", nil
}

// readUint reads a file holding one number; "max" is math.MaxUint64.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKeyValues reads a flat keyed file ("key value" per line), as
// memory.stat and cpu.stat are.
func readKeyValues(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}
