package run

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// counterScript writes an ever-growing counter to /tmp/c and leaves on
// SIGTERM (pid 1 ignores signals it has no handler for).
var counterScript = []string{"sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.02; done"}

// counter reads /tmp/c through the container's layer (0 until written).
func (e *testEnv) counter(id string) int {
	e.t.Helper()
	d := e.inspect(id).GraphDriver.Data
	for _, k := range []string{"MergedDir", "UpperDir", "Dir"} {
		if d[k] == "" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d[k], "tmp", "c")); err == nil {
			n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return n
		}
	}
	return 0
}

// cgroupFile reads a file of the container's cgroup for controller (v1)
// or of its unified cgroup (v2), from the host's hierarchy.
func (e *testEnv) cgroupFile(id, controller, file string) string {
	e.t.Helper()
	p := filepath.Join("/sys/fs/cgroup", controller, e.cgroupParent, id, file)
	if cgroupV2() {
		p = filepath.Join("/sys/fs/cgroup", e.cgroupParent, id, file)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func wantConflict(t *testing.T, err error, msg string) {
	t.Helper()
	if !errdefs.IsConflict(err) || err.Error() != msg {
		t.Fatalf("got %v (conflict %v), want conflict %q", err, errdefs.IsConflict(err), msg)
	}
}

func TestPauseFreezesAndUnpauseResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached(counterScript, func(r *CreateRequest) { r.Name = "ticker" })
	waitFor(t, 10*time.Second, "counter", func() bool { return e.counter(id) > 0 })

	if err := e.m.Pause(ctx, "ticker"); err != nil {
		t.Fatal(err)
	}
	ins := e.inspect(id)
	if ins.State.Status != container.StatePaused || !ins.State.Paused || !ins.State.Running {
		t.Fatalf("state after pause: %+v", ins.State)
	}
	if !cgroupV2() {
		if s := e.cgroupFile(id, "freezer", "freezer.state"); s != "FROZEN" {
			t.Fatalf("freezer.state %q", s)
		}
	}
	before := e.counter(id)
	time.Sleep(300 * time.Millisecond)
	if after := e.counter(id); after != before {
		t.Fatalf("counter moved while paused: %d then %d", before, after)
	}
	// ps lists a paused container (it runs) with dockerd's status.
	list, err := e.m.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != container.StatePaused || !strings.HasPrefix(list[0].Status, "Up ") || !strings.HasSuffix(list[0].Status, " (Paused)") {
		t.Fatalf("ps: %+v", list)
	}
	list, _ = e.m.List(ctx, ListOptions{Filters: map[string][]string{"status": {"paused"}}})
	if len(list) != 1 {
		t.Fatalf("status=paused lists %d", len(list))
	}
	wantConflict(t, e.m.Pause(ctx, id), "Container "+id+" is already paused")
	wantConflict(t, e.m.Start(ctx, id), "cannot start a paused container, try unpause instead")

	if err := e.m.Unpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	ins = e.inspect(id)
	if ins.State.Status != container.StateRunning || ins.State.Paused {
		t.Fatalf("state after unpause: %+v", ins.State)
	}
	waitFor(t, 5*time.Second, "counter to move again", func() bool { return e.counter(id) > before+3 })
	wantConflict(t, e.m.Unpause(ctx, id), "Container "+id+" is not paused")
	if got := strings.Join(e.actions(id), ","); got != "create,start,pause,unpause" {
		t.Errorf("events: %s", got)
	}

	// Not running: both refuse.
	stopped := e.create([]string{"true"})
	wantConflict(t, e.m.Pause(ctx, stopped), "Container "+stopped+" is not running")
	wantConflict(t, e.m.Unpause(ctx, stopped), "Container "+stopped+" is not paused")
	if err := e.m.Pause(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("pause of a missing container: %v", err)
	}
}

// Stop, kill and rm -f work on a paused container: it is thawed after the
// signal so it can act on it.
func TestStopKillRemoveOfPausedContainer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	id := e.startDetached(counterScript)
	waitFor(t, 10*time.Second, "counter", func() bool { return e.counter(id) > 0 })
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	timeout := 20
	t0 := time.Now()
	if err := e.m.Stop(ctx, id, &timeout); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("stop of a paused container took %v: SIGTERM was not acted on", took)
	}
	ins := e.inspect(id)
	if ins.State.Running || ins.State.Paused || ins.State.ExitCode != 0 || ins.State.Status != container.StateExited {
		t.Fatalf("state after stop: %+v", ins.State)
	}
	// The thaw lets the signal through: the exit's die and the thaw's
	// unpause race, as they do in dockerd (containerd reports both).
	if got := strings.Join(e.actions(id), ","); got != "create,start,pause,kill,unpause,die,stop" &&
		got != "create,start,pause,kill,die,unpause,stop" {
		t.Errorf("events: %s", got)
	}

	id = e.startDetached([]string{"sleep", "100"})
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Kill(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "exit after kill", func() bool { return !e.inspect(id).State.Running })
	if ins := e.inspect(id); ins.State.ExitCode != 137 || ins.State.Paused {
		t.Fatalf("state after kill: %+v", ins.State)
	}

	id = e.startDetached([]string{"sleep", "100"})
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantConflict(t, e.m.Remove(ctx, id, RemoveOptions{}),
		"You cannot remove a paused container "+id+". Unpause and then stop the container before attempting removal or force remove")
	if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if e.m.Exists(id) {
		t.Fatal("rm -f left the paused container")
	}
}

// A restarted berthd takes the paused flag from the freezer: a pause it
// recorded stays, a thaw made behind its back is seen.
func TestPausedStateSurvivesRestart(t *testing.T) {
	e := newEnv(t, withLiveRestore())
	ctx := context.Background()
	id := e.startDetached(counterScript)
	waitFor(t, 10*time.Second, "counter", func() bool { return e.counter(id) > 0 })
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if ins := e.inspect(id); !ins.State.Paused || ins.State.Status != container.StatePaused {
		t.Fatalf("after restart: %+v", ins.State)
	}
	// Thaw it with the runtime directly, behind berthd's back.
	rec := e.m.byID[id].view()
	if err := e.m.runRuntime(ctx, rec, nil, "resume", id); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if ins := e.inspect(id); ins.State.Paused || ins.State.Status != container.StateRunning {
		t.Fatalf("after a thaw behind berthd's back: %+v", ins.State)
	}
	// And the other way: frozen behind its back.
	if err := e.m.runRuntime(ctx, rec, nil, "pause", id); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if ins := e.inspect(id); !ins.State.Paused {
		t.Fatalf("after a freeze behind berthd's back: %+v", ins.State)
	}
	one := 1
	if err := e.m.Stop(ctx, id, &one); err != nil {
		t.Fatal(err)
	}
}

func TestTopListsContainerProcesses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "sleep 101 & sleep 102 & wait"})
	waitFor(t, 10*time.Second, "children", func() bool {
		top, err := e.m.Top(ctx, id, "")
		return err == nil && len(top.Processes) == 3
	})
	top, err := e.m.Top(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}; !slices.Equal(top.Titles, want) {
		t.Fatalf("titles %v", top.Titles)
	}
	var cmds []string
	for _, p := range top.Processes {
		if len(p) != len(top.Titles) {
			t.Fatalf("row %v does not match the titles", p)
		}
		cmds = append(cmds, p[7])
	}
	slices.Sort(cmds)
	if want := []string{"sh -c sleep 101 & sleep 102 & wait", "sleep 101", "sleep 102"}; !slices.Equal(cmds, want) {
		t.Fatalf("commands %q", cmds)
	}
	// The init's host pid is among them.
	pid := strconv.Itoa(e.inspect(id).State.Pid)
	if !slices.ContainsFunc(top.Processes, func(p []string) bool { return p[1] == pid }) {
		t.Fatalf("init pid %s not listed: %v", pid, top.Processes)
	}
	top, err = e.m.Top(ctx, id, "-o pid,comm")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top.Titles, []string{"PID", "COMMAND"}) || len(top.Processes) != 3 {
		t.Fatalf("ps -o pid,comm: %+v", top)
	}
	// A paused container is listed too.
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if top, err = e.m.Top(ctx, id, ""); err != nil || len(top.Processes) != 3 {
		t.Fatalf("top of a paused container: %v %+v", err, top)
	}
	if _, err := e.m.Top(ctx, id, "-o user=PID"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("renamed PID column: %v", err)
	}
	stopped := e.create([]string{"true"})
	_, err = e.m.Top(ctx, stopped, "")
	wantConflict(t, err, "Container "+stopped+" is not running")
	if got := e.actions(id); !slices.Contains(got, "top") {
		t.Errorf("no top event: %v", got)
	}
}

func TestStatsOfBusyContainer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "while true; do :; done"}, func(r *CreateRequest) {
		r.Name = "busy"
		r.HostConfig.Memory = 64 << 20
		pids := int64(100)
		r.HostConfig.PidsLimit = &pids
	})
	one := func(opts StatsOptions) *container.StatsResponse {
		t.Helper()
		var got []*container.StatsResponse
		if err := e.m.Stats(ctx, id, opts, func(s *container.StatsResponse) error { got = append(got, s); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%d samples", len(got))
		}
		return got[0]
	}
	time.Sleep(200 * time.Millisecond)
	s := one(StatsOptions{OneShot: true})
	if s.Name != "/busy" || s.ID != id || s.Read.IsZero() || !s.PreRead.IsZero() {
		t.Fatalf("one-shot header: %q %q %v %v", s.Name, s.ID, s.Read, s.PreRead)
	}
	if s.CPUStats.CPUUsage.TotalUsage == 0 || s.CPUStats.SystemUsage == 0 || s.CPUStats.OnlineCPUs == 0 {
		t.Fatalf("cpu stats: %+v", s.CPUStats)
	}
	if s.MemoryStats.Usage == 0 || s.MemoryStats.Limit != 64<<20 || len(s.MemoryStats.Stats) == 0 {
		t.Fatalf("memory stats: usage %d limit %d stats %d", s.MemoryStats.Usage, s.MemoryStats.Limit, len(s.MemoryStats.Stats))
	}
	if s.PidsStats.Current == 0 || s.PidsStats.Limit != 100 {
		t.Fatalf("pids stats: %+v", s.PidsStats)
	}
	if s.PreCPUStats.CPUUsage.TotalUsage != 0 {
		t.Fatalf("one-shot has precpu: %+v", s.PreCPUStats)
	}

	// Not streamed: two samples a second apart, the first as precpu.
	t0 := time.Now()
	s = one(StatsOptions{})
	if took := time.Since(t0); took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("stream=false took %v", took)
	}
	pre, cur := s.PreCPUStats, s.CPUStats
	if pre.CPUUsage.TotalUsage == 0 || cur.CPUUsage.TotalUsage <= pre.CPUUsage.TotalUsage || cur.SystemUsage <= pre.SystemUsage || s.PreRead.IsZero() {
		t.Fatalf("precpu %+v cpu %+v", pre, cur)
	}
	// The CLI's formula: a busy loop uses about one CPU of the host.
	pct := float64(cur.CPUUsage.TotalUsage-pre.CPUUsage.TotalUsage) / float64(cur.SystemUsage-pre.SystemUsage) * float64(cur.OnlineCPUs) * 100
	if pct < 30 || pct > 250 {
		t.Fatalf("CPU %% of a busy loop: %.1f", pct)
	}

	// Streamed: one per second until the caller goes.
	sctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var n int
	err := e.m.Stats(sctx, id, StatsOptions{Stream: true}, func(s *container.StatsResponse) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n > 1 && s.PreCPUStats.CPUUsage.TotalUsage == 0 {
			t.Errorf("streamed sample %d without precpu", n)
		}
		if n == 3 {
			cancel()
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("stream: %v after %d samples", err, n)
	}
	if err := e.m.Stats(ctx, id, StatsOptions{Stream: true, OneShot: true}, nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("stream and one-shot: %v", err)
	}

	// A stream ends when its container is removed.
	ended := make(chan error, 1)
	go func() {
		ended <- e.m.Stats(ctx, id, StatsOptions{Stream: true}, func(*container.StatsResponse) error { return nil })
	}()
	time.Sleep(300 * time.Millisecond)
	if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("stream of a removed container: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end when its container was removed")
	}

	// A stopped container: one empty sample with its name and ID.
	stopped := e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "idle" })
	var got []*container.StatsResponse
	if err := e.m.Stats(ctx, stopped, StatsOptions{}, func(s *container.StatsResponse) error { got = append(got, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "/idle" || got[0].ID != stopped || !got[0].Read.IsZero() || got[0].MemoryStats.Usage != 0 {
		t.Fatalf("stats of a stopped container: %+v", got)
	}
}

func TestUpdateResources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.HostConfig.Memory = 32 << 20 })
	if got := e.cgroupMemoryLimit(id); got != 32<<20 {
		t.Fatalf("limit at start: %d", got)
	}
	resp, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 48 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Warnings == nil || len(resp.Warnings) != 0 {
		t.Fatalf("warnings: %#v", resp.Warnings)
	}
	if got := e.cgroupMemoryLimit(id); got != 48<<20 {
		t.Fatalf("limit after update: %d", got)
	}
	if hc := e.inspect(id).HostConfig; hc.Memory != 48<<20 || hc.MemorySwap != 64<<20 {
		t.Fatalf("recorded: memory %d swap %d", hc.Memory, hc.MemorySwap)
	}
	// Above the swap limit set at create: dockerd asks for both.
	_, err = e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 100 << 20}})
	wantConflict(t, err, "Cannot update container "+id+": Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 100 << 20, MemorySwap: 200 << 20}}); err != nil {
		t.Fatal(err)
	}
	if got := e.cgroupMemoryLimit(id); got != 100<<20 {
		t.Fatalf("limit after update with swap: %d", got)
	}
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 1 << 20}}); !errdefs.IsInvalidArgument(err) || err.Error() != "Minimum memory limit allowed is 6MB" {
		t.Fatalf("tiny memory: %v", err)
	}

	pids := int64(50)
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{
		PidsLimit: &pids, CPUShares: 512, NanoCPUs: 500_000_000, CpusetCpus: "0",
	}}); err != nil {
		t.Fatal(err)
	}
	if got := e.cgroupFile(id, "pids", "pids.max"); got != "50" {
		t.Errorf("pids.max %s", got)
	}
	if !cgroupV2() {
		if got := e.cgroupFile(id, "cpu", "cpu.shares"); got != "512" {
			t.Errorf("cpu.shares %s", got)
		}
		if got := e.cgroupFile(id, "cpu", "cpu.cfs_quota_us"); got != "50000" {
			t.Errorf("cpu.cfs_quota_us %s", got)
		}
		if got := e.cgroupFile(id, "cpuset", "cpuset.cpus"); got != "0" {
			t.Errorf("cpuset.cpus %s", got)
		}
	}
	_, err = e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{CPUQuota: 20000}})
	wantConflict(t, err, "Cannot update container "+id+": Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	zero := int64(0)
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{PidsLimit: &zero}}); err != nil {
		t.Fatal(err)
	}
	if got := e.cgroupFile(id, "pids", "pids.max"); got != "max" {
		t.Errorf("pids.max after unset %s", got)
	}
	if !slices.Contains(e.actions(id), "update") {
		t.Errorf("no update event: %v", e.actions(id))
	}

	// A paused container is updated and stays paused.
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 90 << 20}}); err != nil {
		t.Fatal(err)
	}
	if got := e.cgroupMemoryLimit(id); got != 90<<20 {
		t.Fatalf("limit after update of a paused container: %d", got)
	}
	if !cgroupV2() {
		if s := e.cgroupFile(id, "freezer", "freezer.state"); s != "FROZEN" {
			t.Fatalf("update thawed the container: %s", s)
		}
	}

	// Restart policy: stored; refused with AutoRemove.
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}}); err != nil {
		t.Fatal(err)
	}
	if p := e.inspect(id).HostConfig.RestartPolicy; p.Name != "on-failure" || p.MaximumRetryCount != 3 {
		t.Fatalf("restart policy: %+v", p)
	}
	if _, err := e.m.Update(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad restart policy: %v", err)
	}
	rm := e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.HostConfig.AutoRemove = true })
	_, err = e.m.Update(ctx, rm, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "always"}})
	wantConflict(t, err, "Cannot update container "+rm+": Restart policy cannot be updated because AutoRemove is enabled for the container")

	// A stopped container takes its update at the next start, and the
	// update is on disk.
	stopped := e.create([]string{"sleep", "100"}, func(r *CreateRequest) { r.HostConfig.Memory = 32 << 20 })
	if _, err := e.m.Update(ctx, stopped, container.UpdateConfig{Resources: container.Resources{Memory: 40 << 20}}); err != nil {
		t.Fatal(err)
	}
	// (Killed first: sleep as pid 1 would sit out the stop timeout.)
	for _, c := range []string{id, rm} {
		if err := e.m.Kill(ctx, c, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.reopen()
	if hc := e.inspect(stopped).HostConfig; hc.Memory != 40<<20 {
		t.Fatalf("update lost by a restart: %d", hc.Memory)
	}
	if err := e.m.Start(ctx, stopped); err != nil {
		t.Fatal(err)
	}
	if got := e.cgroupMemoryLimit(stopped); got != 40<<20 {
		t.Fatalf("limit of the updated stopped container at start: %d", got)
	}
}

func (e *testEnv) cgroupMemoryLimit(id string) int64 {
	e.t.Helper()
	f := "memory.limit_in_bytes"
	if cgroupV2() {
		f = "memory.max"
	}
	n, err := strconv.ParseInt(e.cgroupFile(id, "memory", f), 10, 64)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
