package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// berthStdin runs the berth CLI with stdin from a string.
func (d *daemonProc) berthStdin(stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(berthBinary(d.t), append([]string{"-H", d.host}, args...)...)
	cmd.Env = []string{"HOME=" + d.t.TempDir(), "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// cliLogLine is a logger line of either CLI ("Error waiting for
// container: ..."): whether it appears races with the start error, and
// its timestamp differs.
var cliLogLine = regexp.MustCompile(`(?m)^time="[^"]*" level=\w+ msg=.*\n`)

// sameAsDocker runs args with both CLIs and reports any difference in
// stdout, stderr ("docker" read as "berth") or exit status. Listings
// that show ages ("3 seconds ago") may straddle a second: a berth run
// on either side of docker's must match it.
func sameAsDocker(t *testing.T, d *daemonProc, args ...string) {
	t.Helper()
	var bo, be, do, de string
	var bc, dc int
	for range 3 {
		bo, be, bc = d.berth(args...)
		do, de, dc = d.docker(args...)
		de = cliLogLine.ReplaceAllString(strings.ReplaceAll(de, "docker", "berth"), "")
		be = cliLogLine.ReplaceAllString(be, "")
		if bo == do && be == de && bc == dc {
			return
		}
		bo2, be2, bc2 := d.berth(args...)
		be2 = cliLogLine.ReplaceAllString(be2, "")
		if bo2 == do && be2 == de && bc2 == dc {
			return
		}
	}
	t.Errorf("berth %s differs from docker\n--- docker (%d):\n%s%s\n--- berth (%d):\n%s%s", strings.Join(args, " "), dc, do, de, bc, bo, be)
}

// TestBerthCLIRun drives berthd with the berth CLI the way the docker
// CLI drives it in run_test.go, and compares the two CLIs' output on
// the same daemon.
func TestBerthCLIRun(t *testing.T) {
	d := mirrorDaemon(t, "")

	t.Run("auto-pull and echo", func(t *testing.T) {
		out, errOut, code := d.berth("run", "--rm", "busybox", "echo", "hi")
		if code != 0 || out != "hi\n" {
			t.Fatalf("run echo hi: %d %q %q", code, out, errOut)
		}
		for _, want := range []string{"Unable to find image 'busybox:latest' locally\n", "Pull complete", "Status: Downloaded newer image for busybox:latest"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q: %q", want, errOut)
			}
		}
		if out, _, _ := d.berth("ps", "-aq"); out != "" {
			t.Errorf("--rm left a container: %q", out)
		}
	})

	t.Run("exit codes like docker", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"sh", "-c", "exit 3"}, 3},
			{[]string{"nope"}, 127},
			{[]string{"/etc"}, 126},
		} {
			args := append([]string{"run", "--rm", "busybox"}, c.args...)
			if _, errOut, code := d.berth(args...); code != c.code {
				t.Errorf("berth %v: exit %d, want %d (%s)", args, code, c.code, errOut)
			}
			sameAsDocker(t, d, args...)
		}
		_, errOut, _ := d.berth("run", "--rm", "busybox", "nope")
		if !strings.Contains(errOut, "berth: Error response from daemon: ") || !strings.Contains(errOut, "executable file not found") ||
			!strings.HasSuffix(errOut, "\n\nRun 'berth run --help' for more information\n") {
			t.Errorf("missing command message: %q", errOut)
		}
		sameAsDocker(t, d, "run", "--rm", "--cap-add", "NOPE", "busybox", "true")
		sameAsDocker(t, d, "run", "--rm", "-m", "-5", "busybox", "true")
	})

	t.Run("env workdir user hostname", func(t *testing.T) {
		envFile := filepath.Join(t.TempDir(), "env")
		os.WriteFile(envFile, []byte("FROM_FILE=yes\n"), 0o644)
		out, errOut, code := d.berth("run", "--rm", "-e", "FOO=bar", "--env-file", envFile, "-w", "/tmp", "-u", "nobody",
			"--hostname", "box1", "busybox", "sh", "-c", `echo "$FOO $FROM_FILE $(pwd) $(id -u) $(hostname)"`)
		if code != 0 || out != "bar yes /tmp 65534 box1\n" {
			t.Errorf("env/workdir/user/hostname: %d %q %q", code, out, errOut)
		}
		out, _, _ = d.berth("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
		if out != "from entrypoint\n" {
			t.Errorf("--entrypoint: %q", out)
		}
	})

	t.Run("stdin and stderr", func(t *testing.T) {
		out, errOut, code := d.berthStdin("piped in\nand more\n", "run", "-i", "--rm", "busybox", "cat")
		if code != 0 || out != "piped in\nand more\n" {
			t.Errorf("run -i: %d %q %q", code, out, errOut)
		}
		out, errOut, _ = d.berth("run", "--rm", "busybox", "sh", "-c", "echo err >&2; echo out")
		if out != "out\n" || errOut != "err\n" {
			t.Errorf("streams: stdout %q stderr %q", out, errOut)
		}
		out, errOut, _ = d.berth("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo err >&2; echo out")
		if out != "" || errOut != "err\n" {
			t.Errorf("-a stderr: stdout %q stderr %q", out, errOut)
		}
	})

	t.Run("binds and volumes", func(t *testing.T) {
		host := t.TempDir()
		os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644)
		out, errOut, code := d.berth("run", "--rm", "-v", host+":/data", "busybox", "sh", "-c", "cat /data/in.txt; echo written > /data/out.txt")
		if code != 0 || out != "from host\n" {
			t.Fatalf("bind rw: %d %q %q", code, out, errOut)
		}
		if b, _ := os.ReadFile(filepath.Join(host, "out.txt")); string(b) != "written\n" {
			t.Errorf("bind rw did not write through: %q", b)
		}
		if _, errOut, code = d.berth("run", "--rm", "-v", host+":/data:ro", "busybox", "sh", "-c", "echo x > /data/ro.txt"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("bind ro: %d %q", code, errOut)
		}
		if _, errOut, code = d.berth("run", "--rm", "--mount", "type=bind,source="+host+",target=/m,readonly", "busybox", "cat", "/m/in.txt"); code != 0 {
			t.Errorf("--mount: %d %q", code, errOut)
		}
		if out, _, _ := d.berth("volume", "create", "--label", "team=cli", "vol1"); out != "vol1\n" {
			t.Errorf("volume create: %q", out)
		}
		if _, errOut, code = d.berth("run", "--rm", "-v", "vol1:/v", "busybox", "sh", "-c", "echo kept > /v/f"); code != 0 {
			t.Fatalf("named volume write: %s", errOut)
		}
		if out, _, _ := d.berth("run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/f"); out != "kept\n" {
			t.Errorf("named volume did not persist: %q", out)
		}
		if _, _, code = d.berth("run", "--rm", "-v", "auto1:/v", "busybox", "true"); code != 0 {
			t.Error("a named volume is created on demand")
		}
		if out, _, _ := d.berth("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Labels.team}}", "vol1"); out != "vol1 local cli\n" {
			t.Errorf("volume inspect: %q", out)
		}
		sameAsDocker(t, d, "volume", "ls")
		sameAsDocker(t, d, "volume", "ls", "-q", "--filter", "name=vol")
		sameAsDocker(t, d, "volume", "ls", "--format", "json")
		sameAsDocker(t, d, "volume", "inspect", "vol1", "nope")
		d.berth("create", "--name", "keeper", "-v", "vol1:/v", "busybox", "true")
		if _, errOut, code := d.berth("volume", "rm", "vol1"); code != 1 || !strings.Contains(errOut, "vol1") {
			t.Errorf("volume rm of a used volume: %d %q", code, errOut)
		}
		if out, _, code := d.berth("rm", "-v", "keeper"); code != 0 || out != "keeper\n" {
			t.Errorf("rm keeper: %d %q", code, out)
		}
		if out, errOut, code := d.berth("volume", "rm", "vol1", "nope"); code != 1 || out != "vol1\n" || !strings.Contains(errOut, "nope") {
			t.Errorf("volume rm vol1 nope: %d %q %q", code, out, errOut)
		}
		out, _, code = d.berth("volume", "prune", "-f")
		if code != 0 || !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("volume prune: %d %q", code, out)
		}
		if out, _, _ := d.berth("volume", "ls", "-q"); strings.Contains(out, "auto1") {
			t.Errorf("prune left an unused volume: %q", out)
		}
	})

	t.Run("detached lifecycle", func(t *testing.T) {
		out, errOut, code := d.berth("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
		if code != 0 || len(strings.TrimSpace(out)) != 64 {
			t.Fatalf("run -d: %d %q %q", code, out, errOut)
		}
		id := strings.TrimSpace(out)
		if out, _, _ := d.berth("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "ticker Up ") {
			t.Fatalf("ps: %q", out)
		}
		sameAsDocker(t, d, "ps")
		time.Sleep(700 * time.Millisecond)
		out, _, _ = d.berth("logs", "--tail", "1", "ticker")
		if !strings.HasPrefix(out, "tick ") || strings.Count(out, "\n") != 1 {
			t.Fatalf("logs --tail 1: %q", out)
		}
		if out, _, _ := d.berth("logs", "-t", "--tail", "1", "ticker"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z tick \d+\n$`).MatchString(out) {
			t.Errorf("logs -t: %q", out)
		}
		follow := make(chan string, 1)
		go func() {
			o, _, _ := d.berth("logs", "-f", "ticker")
			follow <- o
		}()
		time.Sleep(500 * time.Millisecond)
		_, errOut, code = d.berth("rm", "ticker")
		if code != 1 || !strings.Contains(errOut, "You cannot remove a running container "+id) {
			t.Fatalf("rm running: %d %q", code, errOut)
		}
		sameAsDocker(t, d, "rm", "ticker")
		if out, errOut, code := d.berth("stop", "-t", "1", "ticker"); code != 0 || out != "ticker\n" {
			t.Fatalf("stop: %d %q %q", code, out, errOut)
		}
		select {
		case o := <-follow:
			if strings.Count(o, "tick") < 3 {
				t.Fatalf("logs -f saw %q", o)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("logs -f did not end when the container stopped")
		}
		if out, _, _ := d.berth("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "ticker Exited (") {
			t.Fatalf("ps -a exited: %q", out)
		}
		sameAsDocker(t, d, "kill", "ticker")
		if out, _, code := d.berth("start", "ticker"); code != 0 || out != "ticker\n" {
			t.Fatalf("start: %d %q", code, out)
		}
		if out, _, code := d.berth("kill", "-s", "KILL", "ticker"); code != 0 || out != "ticker\n" {
			t.Fatalf("kill: %d %q", code, out)
		}
		if out, _, _ := d.berth("wait", "ticker"); out != "137\n" {
			t.Errorf("wait after kill: %q", out)
		}
		if _, errOut, code := d.berth("rename", "ticker", "tocker"); code != 0 {
			t.Errorf("rename: %s", errOut)
		}
		if out, _, code := d.berth("rm", "tocker"); code != 0 || out != "tocker\n" {
			t.Fatalf("rm: %d %q", code, out)
		}
		d.berth("run", "-d", "--name", "forced", "busybox", "sleep", "100")
		if out, errOut, code := d.berth("rm", "-f", "forced", "nope"); code != 0 || out != "forced\n" || !strings.Contains(errOut, "No such container: nope") {
			t.Fatalf("rm -f: %d %q %q", code, out, errOut)
		}
		if out, _, _ := d.berth("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers left: %q", out)
		}
	})

	t.Run("start attached", func(t *testing.T) {
		if _, errOut, code := d.berth("create", "--name", "once", "busybox", "sh", "-c", "echo started; exit 4"); code != 0 {
			t.Fatalf("create: %s", errOut)
		}
		out, errOut, code := d.berth("start", "-a", "once")
		if code != 4 || out != "started\n" {
			t.Errorf("start -a: %d %q %q", code, out, errOut)
		}
		d.berth("rm", "once")
	})

	t.Run("ps -a like docker", func(t *testing.T) {
		d.berth("create", "--name", "pc1", "busybox", "true")
		d.berth("run", "--name", "pc2", "busybox", "sh", "-c", "exit 2")
		d.berth("run", "-d", "--name", "pc3", "busybox", "sleep", "100")
		d.berth("run", "-d", "--name", "pc4", "-l", "b=2", "-l", "a=1", "-v", "psvol:/v", "busybox", "sh", "-c", "echo a fairly long command line; sleep 100")
		for _, args := range [][]string{
			{"ps", "-a"},
			{"ps"},
			{"ps", "-a", "--no-trunc"},
			{"ps", "-aq"},
			{"ps", "-a", "-s"},
			{"ps", "-a", "--format", "json"},
			{"ps", "-a", "--format", `table {{.Names}}\t{{.Mounts}}\t{{.Labels}}\t{{.Label "a"}}\t{{.State}}\t{{.Networks}}`},
			{"ps", "-a", "--filter", "status=exited"},
			{"ps", "-n", "2"},
			{"container", "ls", "-l"},
			{"ps", "-a", "--filter", "label=a=1", "--format", "{{.Names}} {{.Size}}"},
		} {
			sameAsDocker(t, d, args...)
		}
		if out, _, _ := d.berth("container", "rm", "-f", "pc3", "pc4"); out != "pc3\npc4\n" {
			t.Errorf("container rm -f: %q", out)
		}
		out, errOut, code := d.berthStdin("y\n", "container", "prune")
		if code != 0 || !strings.Contains(out, "Deleted Containers:\n") || !strings.Contains(out, "Total reclaimed space: ") {
			t.Errorf("container prune: %d %q %q", code, out, errOut)
		}
		if out, _, _ := d.berth("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Errorf("prune left %q", out)
		}
		sameAsDocker(t, d, "container", "prune", "-f")
	})

	t.Run("limits", func(t *testing.T) {
		out, errOut, code := d.berth("run", "--rm", "-m", "64m", "--pids-limit", "50", "--ulimit", "nofile=512:1024",
			"busybox", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ulimit -n")
		if code != 0 || out != fmt.Sprintf("%d\n512\n", 64<<20) {
			t.Errorf("-m/--ulimit: %d %q %q", code, out, errOut)
		}
		if _, errOut, code := d.berth("run", "--rm", "--read-only", "busybox", "touch", "/x"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("--read-only: %d %q", code, errOut)
		}
	})
}
