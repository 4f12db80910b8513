package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// opsDaemon is a berthd with busybox:latest in its store.
func opsDaemon(t *testing.T) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	seedImages(t, filepath.Join(dir, "data"), map[string]v1.Image{"busybox:latest": busybox(t)})
	return startDaemon(t, dir)
}

// mustDocker runs the docker CLI and fails the test unless it succeeds.
func (d *daemonProc) mustDocker(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(args...)
	if code != 0 {
		d.t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// wantDockerError runs the docker CLI and wants exit 1 with msg on stderr.
func (d *daemonProc) wantDockerError(msg string, args ...string) {
	d.t.Helper()
	_, errOut, code := d.docker(args...)
	if code != 1 || !strings.Contains(errOut, msg) {
		d.t.Fatalf("docker %s: exit %d, stderr %q; want %q", strings.Join(args, " "), code, errOut, msg)
	}
}

func TestDockerPauseUnpause(t *testing.T) {
	d := opsDaemon(t)
	t0 := time.Now()
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "ticker", "busybox",
		"sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done"))
	lines := func() int { return strings.Count(d.mustDocker("logs", "ticker"), "\n") }
	waitUntil(t, 10*time.Second, "output", func() bool { return lines() > 0 })

	if out := d.mustDocker("pause", "ticker"); out != "ticker\n" {
		t.Fatalf("pause printed %q", out)
	}
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "ticker"); out != "paused true true\n" {
		t.Fatalf("inspect after pause: %q", out)
	}
	if out := d.mustDocker("ps", "--format", "{{.Names}}|{{.State}}|{{.Status}}"); !regexp.MustCompile(`^ticker\|paused\|Up .* \(Paused\)\n$`).MatchString(out) {
		t.Fatalf("ps after pause: %q", out)
	}
	before := lines()
	time.Sleep(400 * time.Millisecond)
	if after := lines(); after != before {
		t.Fatalf("output went on while paused: %d then %d lines", before, after)
	}
	d.wantDockerError("Error response from daemon: Container "+id+" is already paused", "pause", "ticker")
	d.wantDockerError("Error response from daemon: No such container: nope", "pause", "nope")

	if out := d.mustDocker("unpause", "ticker"); out != "ticker\n" {
		t.Fatalf("unpause printed %q", out)
	}
	waitUntil(t, 5*time.Second, "output after unpause", func() bool { return lines() > before+3 })
	d.wantDockerError("Error response from daemon: Container "+id+" is not paused", "unpause", "ticker")

	// docker stop of a paused container: thawed after the signal, so
	// it acts on SIGTERM at once.
	d.mustDocker("pause", "ticker")
	start := time.Now()
	d.mustDocker("stop", "-t", "20", "ticker")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("stop of a paused container took %v", took)
	}
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}", "ticker"); out != "exited 0 false\n" {
		t.Fatalf("after stop: %q", out)
	}
	d.wantDockerError("Error response from daemon: Container "+id+" is not running", "pause", "ticker")
	out := d.mustDocker("events", "--since", fmt.Sprint(t0.Unix()), "--until", fmt.Sprint(time.Now().Unix()+1),
		"--filter", "container=ticker", "--filter", "event=pause", "--filter", "event=unpause", "--format", "{{.Action}}")
	if got := strings.Fields(out); strings.Join(got, ",") != "pause,unpause,pause,unpause" {
		t.Errorf("events: %q", out)
	}

	// rm -f of a paused container; rm without -f refuses.
	sid := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "frozen", "busybox", "sleep", "1000"))
	d.mustDocker("pause", "frozen")
	d.wantDockerError("You cannot remove a paused container "+sid+". Unpause and then stop the container before attempting removal or force remove", "rm", "frozen")
	d.mustDocker("rm", "-f", "frozen")
	if out := d.mustDocker("ps", "-aq", "--filter", "name=frozen"); out != "" {
		t.Fatalf("rm -f left %q", out)
	}
}

func TestDockerTop(t *testing.T) {
	d := opsDaemon(t)
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "sleeper", "busybox", "sh", "-c", "sleep 1001 & exec sleep 1002"))
	var out string
	waitUntil(t, 10*time.Second, "both sleeps", func() bool {
		out = d.mustDocker("top", "sleeper")
		return strings.Count(out, "\n") == 3
	})
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if f := strings.Fields(rows[0]); strings.Join(f, " ") != "UID PID PPID C STIME TTY TIME CMD" {
		t.Fatalf("header: %q", rows[0])
	}
	// Columns are aligned as docker's tabwriter does: every row starts
	// its CMD column where the header does.
	col := strings.Index(rows[0], "CMD")
	var cmds []string
	for _, r := range rows[1:] {
		if len(r) < col || r[col-1] != ' ' {
			t.Fatalf("row not aligned with the header:\n%s", out)
		}
		cmds = append(cmds, strings.TrimSpace(r[col:]))
	}
	if strings.Join(cmds, ",") != "sleep 1002,sleep 1001" && strings.Join(cmds, ",") != "sleep 1001,sleep 1002" {
		t.Fatalf("commands: %q\n%s", cmds, out)
	}
	pid := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Pid}}", "sleeper"))
	if !strings.Contains(out, " "+pid+" ") {
		t.Fatalf("init pid %s not in:\n%s", pid, out)
	}
	out = d.mustDocker("top", "sleeper", "-o", "pid,comm")
	if rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(rows) != 3 || strings.Join(strings.Fields(rows[0]), " ") != "PID COMMAND" {
		t.Fatalf("top -o pid,comm:\n%s", out)
	}
	d.mustDocker("kill", "sleeper")
	d.wantDockerError("Error response from daemon: Container "+id+" is not running", "top", "sleeper")
}

func TestDockerStatsAndUpdate(t *testing.T) {
	d := opsDaemon(t)
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "busy", "-m", "32m", "busybox", "sh", "-c", "while true; do :; done"))
	d.mustDocker("run", "-d", "--name", "idle", "busybox", "sleep", "1000")
	time.Sleep(500 * time.Millisecond)

	out := d.mustDocker("stats", "--no-stream", "busy")
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 2 {
		t.Fatalf("stats --no-stream busy:\n%s", out)
	}
	head := regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`)
	if !head.MatchString(rows[0]) {
		t.Fatalf("header: %q", rows[0])
	}
	row := regexp.MustCompile(`^([0-9a-f]{12}) +busy +([0-9.]+)% +([0-9.]+[KMG]?i?B) / 32MiB +([0-9.]+)% +\S+ / \S+ +\S+ / \S+ +([0-9]+)$`)
	m := row.FindStringSubmatch(rows[1])
	if m == nil || m[1] != id[:12] {
		t.Fatalf("row: %q", rows[1])
	}
	if cpu, _ := strconv.ParseFloat(m[2], 64); cpu < 30 || cpu > 250 {
		t.Errorf("CPU %% of a busy loop: %s", m[2])
	}
	if m[3] == "0B" || m[5] == "0" {
		t.Errorf("memory %s, pids %s", m[3], m[5])
	}

	// All running containers, with a format.
	out = d.mustDocker("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.MemUsage}} {{.PIDs}}")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(out, id+" busy ") || !strings.Contains(out, " idle ") {
		t.Fatalf("stats --no-stream (all running):\n%s", out)
	}
	// A stopped container with --all shows zeros.
	d.mustDocker("create", "--name", "never", "busybox", "true")
	out = d.mustDocker("stats", "--no-stream", "--all", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}")
	if !strings.Contains(out, "never 0.00% 0B / 0B\n") {
		t.Fatalf("stats --all with a created container:\n%s", out)
	}

	// docker update --memory: recorded and applied to the running cgroup.
	if out := d.mustDocker("update", "--memory", "48m", "busy"); out != "busy\n" {
		t.Fatalf("update printed %q", out)
	}
	if out := d.mustDocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", "busy"); out != fmt.Sprintf("%d %d\n", 48<<20, 64<<20) {
		t.Fatalf("inspect after update: %q", out)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Pid}}", "busy")))
	if got := memoryLimitOf(t, pid); got != 48<<20 {
		t.Fatalf("cgroup memory limit after update: %d", got)
	}
	if out := d.mustDocker("stats", "--no-stream", "--format", "{{.MemUsage}}", "busy"); !strings.HasSuffix(out, " / 48MiB\n") {
		t.Fatalf("stats after update: %q", out)
	}
	d.wantDockerError("Error response from daemon: Cannot update container "+id+": Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
		"update", "--memory", "200m", "busy")
	d.mustDocker("update", "--memory", "200m", "--memory-swap", "400m", "--cpus", "0.5", "--pids-limit", "20", "--restart", "on-failure:2", "busy")
	if got := memoryLimitOf(t, pid); got != 200<<20 {
		t.Fatalf("cgroup memory limit after second update: %d", got)
	}
	if out := d.mustDocker("inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "busy"); out != "500000000 20 on-failure:2\n" {
		t.Fatalf("inspect after second update: %q", out)
	}
	d.wantDockerError("Minimum memory limit allowed is 6MB", "update", "--memory", "1m", "busy")
	d.wantDockerError("you must provide one or more flags when using this command", "update", "busy")
	rid := strings.TrimSpace(d.mustDocker("run", "-d", "--rm", "busybox", "sleep", "1000"))
	d.wantDockerError("Error response from daemon: Cannot update container "+rid+": Restart policy cannot be updated because AutoRemove is enabled for the container",
		"update", "--restart", "always", rid)
}

// memoryLimitOf reads memory.limit_in_bytes (v1) or memory.max (v2) of
// the cgroup process pid is in, straight from the host's hierarchy.
func memoryLimitOf(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v1Path, v2Path string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1Path = parts[2]
			}
		}
		if parts[0] == "0" {
			v2Path = parts[2]
		}
	}
	p := filepath.Join("/sys/fs/cgroup/memory", v1Path, "memory.limit_in_bytes")
	if v1Path == "" {
		p = filepath.Join("/sys/fs/cgroup", v2Path, "memory.max")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The berth CLI drives the same endpoints as docker and prints the same.
func TestBerthCLIOps(t *testing.T) {
	d := opsDaemon(t)
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "web", "-m", "32m", "busybox", "sh", "-c", "sleep 1001 & exec sleep 1002"))
	waitUntil(t, 10*time.Second, "both sleeps", func() bool { return strings.Count(d.mustDocker("top", "web"), "\n") == 3 })
	// (ps -ef's C column changes from one second to the next.)
	sameAsDocker(t, d, "top", "web", "-o", "user,pid,ppid,stat,args")
	sameAsDocker(t, d, "top", "web", "-o", "pid,args")
	sameAsDocker(t, d, "top", "nope")

	if out, errOut, code := d.berth("pause", "web", "nope"); out != "web\n" || code != 1 || errOut != "Error response from daemon: No such container: nope\n" {
		t.Fatalf("berth pause: %d %q %q", code, out, errOut)
	}
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}}", "web"); out != "paused\n" {
		t.Fatalf("after berth pause: %q", out)
	}
	sameAsDocker(t, d, "pause", "web")
	if out, _, code := d.berth("unpause", "web"); out != "web\n" || code != 0 {
		t.Fatalf("berth unpause: %d %q", code, out)
	}
	sameAsDocker(t, d, "unpause", "web")

	out, errOut, code := d.berth("stats", "--no-stream", "--format", "{{.ID}} {{.Name}} {{.MemUsage}} {{.PIDs}}")
	if code != 0 || !regexp.MustCompile(`^`+id[:12]+` web [0-9.]+[KM]iB / 32MiB 2\n$`).MatchString(out) {
		t.Fatalf("berth stats: %d %q %q", code, out, errOut)
	}
	out, _, _ = d.berth("stats", "--no-stream", "web")
	if !strings.HasPrefix(out, "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n"+id[:12]+"   web       0.00%") {
		t.Fatalf("berth stats table:\n%s", out)
	}

	if out, errOut, code := d.berth("update", "--memory", "48m", "--pids-limit", "30", "web"); out != "web\n" || code != 0 {
		t.Fatalf("berth update: %d %q %q", code, out, errOut)
	}
	if out := d.mustDocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "web"); out != fmt.Sprintf("%d 30\n", 48<<20) {
		t.Fatalf("after berth update: %q", out)
	}
	sameAsDocker(t, d, "update", "--memory", "300m", "web")
	sameAsDocker(t, d, "update", "web")
}
