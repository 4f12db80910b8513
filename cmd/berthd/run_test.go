package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
)

// mirrorDaemon starts Debian's docker-registry holding library/busybox and
// a berthd that uses it as its docker.io mirror, so `docker run busybox`
// auto-pulls offline as it would from Docker Hub.
func mirrorDaemon(t *testing.T, dir string, extra ...string) *daemonProc {
	t.Helper()
	reg, err := fixtures.StartDockerRegistry(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.PushImage(context.Background(), reg.Host, "library/busybox", "latest", busybox(t)); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, dir, append([]string{"--registry-mirror", "http://" + reg.Host}, extra...)...)
}

func TestDockerRunBasics(t *testing.T) {
	d := mirrorDaemon(t, "")
	out, errOut, code := d.docker("run", "--rm", "busybox", "echo", "hi")
	if code != 0 || out != "hi\n" {
		t.Fatalf("run echo hi: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "Unable to find image 'busybox:latest' locally") || !strings.Contains(errOut, "Pull complete") {
		t.Errorf("no auto-pull on stderr: %q", errOut)
	}
	if _, _, code = d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exit 3: got %d", code)
	}
	if _, errOut, code = d.docker("run", "--rm", "busybox", "nope"); code != 127 || !strings.Contains(errOut, "executable file not found") {
		t.Errorf("missing command: %d %q", code, errOut)
	}
	if _, _, code = d.docker("run", "--rm", "busybox", "/etc"); code != 126 {
		t.Errorf("a directory as the command: %d", code)
	}
	out, _, code = d.docker("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "--hostname", "box1", "busybox",
		"sh", "-c", `echo "$FOO $(pwd) $(id -u) $(hostname)"`)
	if code != 0 || out != "bar /tmp 65534 box1\n" {
		t.Errorf("env/workdir/user/hostname: %d %q", code, out)
	}
	out, _, _ = d.docker("run", "--rm", "busybox", "sh", "-c", "echo err >&2; echo out")
	if out != "out\n" {
		t.Errorf("stdout only on stdout: %q", out)
	}
	out, _, _ = runDockerStdin(t, d.host, "piped in\n", "run", "-i", "--rm", "busybox", "cat")
	if out != "piped in\n" {
		t.Errorf("run -i with piped stdin: %q", out)
	}
}

func TestDockerRunVolumesAndLimits(t *testing.T) {
	d := mirrorDaemon(t, "")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644)
	out, errOut, code := d.docker("run", "--rm", "-v", host+":/data", "busybox", "sh", "-c", "cat /data/in.txt; echo written > /data/out.txt")
	if code != 0 || out != "from host\n" {
		t.Fatalf("bind rw: %d %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out.txt")); string(b) != "written\n" {
		t.Fatalf("bind rw did not write through: %q", b)
	}
	if _, errOut, code = d.docker("run", "--rm", "-v", host+":/data:ro", "busybox", "sh", "-c", "echo x > /data/ro.txt"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("bind ro: %d %q", code, errOut)
	}
	if _, _, code = d.docker("run", "--rm", "-v", "named1:/v", "busybox", "sh", "-c", "echo kept > /v/f"); code != 0 {
		t.Fatal("named volume write")
	}
	out, _, _ = d.docker("run", "--rm", "-v", "named1:/v", "busybox", "cat", "/v/f")
	if out != "kept\n" {
		t.Errorf("named volume did not persist: %q", out)
	}
	out, _, _ = d.docker("volume", "ls", "--format", "{{.Name}}")
	if !strings.Contains(out, "named1") {
		t.Errorf("volume ls: %q", out)
	}
	d.docker("create", "--name", "keeper", "-v", "named1:/v", "busybox", "true")
	out, _, _ = d.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
	for _, want := range []string{"Images 1 1", "Containers 1 0", "Local Volumes 1 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("system df lacks %q:\n%s", want, out)
		}
	}
	d.docker("rm", "keeper")
	if _, errOut, code = d.docker("run", "--rm", "--read-only", "busybox", "touch", "/x"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("--read-only: %d %q", code, errOut)
	}
	out, _, code = d.docker("run", "--rm", "-m", "64m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	if code != 0 || strings.TrimSpace(out) != fmt.Sprint(64<<20) {
		t.Errorf("-m 64m inside: %d %q", code, out)
	}
	if _, errOut, code = d.docker("run", "--rm", "--cap-add", "NOPE", "busybox", "true"); code != 125 || !strings.Contains(errOut, "NOPE") {
		t.Errorf("unknown capability: %d %q", code, errOut)
	}
}

func TestDockerDetachedLifecycle(t *testing.T) {
	d := mirrorDaemon(t, "")
	out, errOut, code := d.docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("run -d: %d %q %q", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	out, _, _ = d.docker("ps", "--format", "{{.Names}} {{.Status}}")
	if !strings.HasPrefix(out, "ticker Up ") {
		t.Fatalf("ps: %q", out)
	}
	time.Sleep(700 * time.Millisecond)
	out, _, _ = d.docker("logs", "--tail", "1", "ticker")
	if !strings.HasPrefix(out, "tick ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("logs --tail 1: %q", out)
	}
	// logs -f follows until the container stops.
	follow := make(chan string, 1)
	go func() {
		o, _, _ := runDocker(t, d.host, nil, "logs", "-f", "ticker")
		follow <- o
	}()
	time.Sleep(500 * time.Millisecond)
	_, errOut, code = d.docker("rm", "ticker")
	if code != 1 || !strings.Contains(errOut, "You cannot remove a running container "+id) {
		t.Fatalf("rm running: %d %q", code, errOut)
	}
	if _, errOut, code = d.docker("stop", "-t", "1", "ticker"); code != 0 {
		t.Fatalf("stop: %s", errOut)
	}
	select {
	case o := <-follow:
		if strings.Count(o, "tick") < 3 {
			t.Fatalf("logs -f saw %q", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end when the container stopped")
	}
	out, _, _ = d.docker("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}")
	if !strings.HasPrefix(out, "ticker Exited (") {
		t.Fatalf("ps -a exited: %q", out)
	}
	_, errOut, code = d.docker("kill", "ticker")
	if code != 1 || !strings.Contains(errOut, "is not running") {
		t.Fatalf("kill stopped: %d %q", code, errOut)
	}
	if _, errOut, code = d.docker("rm", "ticker"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	d.docker("run", "-d", "--name", "forced", "busybox", "sleep", "100")
	if _, errOut, code = d.docker("rm", "-f", "forced"); code != 0 {
		t.Fatalf("rm -f: %s", errOut)
	}
	if out, _, _ = d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	_, errOut, code = d.docker("inspect", "--type", "container", "nope")
	if code != 1 || !strings.Contains(errOut, "No such container: nope") {
		t.Fatalf("inspect missing: %d %q", code, errOut)
	}
}

func TestHundredContainersAreListed(t *testing.T) {
	d := mirrorDaemon(t, "")
	d.docker("pull", "busybox")
	for i := range 100 {
		if _, errOut, code := d.docker("create", "--name", fmt.Sprintf("c%03d", i), "busybox", "true"); code != 0 {
			t.Fatalf("create %d: %s", i, errOut)
		}
	}
	out, _, _ := d.docker("ps", "-a", "--format", "{{.Names}}")
	if n := len(strings.Fields(out)); n != 100 {
		t.Fatalf("ps -a lists %d containers", n)
	}
	if out, _, _ := d.docker("container", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("prune: %q", out)
	}
	if out, _, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatal("prune left containers")
	}
}

// kill -9 of a berthd with --live-restore: the container keeps running,
// the restarted berthd reports it running, its logs keep growing, and
// docker stop stops it.
func TestLiveRestoreSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	d := mirrorDaemon(t, dir, "--live-restore")
	out, errOut, code := d.docker("run", "-d", "--name", "alive", "busybox", "sh", "-c", "while true; do echo beat; sleep 0.2; done")
	if code != 0 {
		t.Fatalf("run -d: %s", errOut)
	}
	id := strings.TrimSpace(out)
	pidOut, _, _ := d.docker("inspect", "--format", "{{.State.Pid}}", id)
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited

	var pid int
	fmt.Sscan(pidOut, &pid)
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("container process %d died with berthd", pid)
	}
	d2 := startDaemon(t, dir, "--live-restore", "--registry-mirror", "http://127.0.0.1:1")
	out, _, _ = d2.docker("inspect", "--format", "{{.State.Status}} {{.State.Pid}}", id)
	if strings.TrimSpace(out) != fmt.Sprintf("running %d", pid) {
		t.Fatalf("after restart: %q", out)
	}
	before, _, _ := d2.docker("logs", id)
	time.Sleep(600 * time.Millisecond)
	after, _, _ := d2.docker("logs", id)
	if strings.Count(after, "beat") <= strings.Count(before, "beat") {
		t.Fatalf("logs stopped growing: %d then %d lines", strings.Count(before, "beat"), strings.Count(after, "beat"))
	}
	if _, errOut, code := d2.docker("stop", "-t", "1", id); code != 0 {
		t.Fatalf("stop after restart: %s", errOut)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("container process %d still alive after stop", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d2.docker("rm", id)
}
