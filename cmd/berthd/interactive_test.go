package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// These tests type into a real terminal: tmux runs a shell whose
// DOCKER_HOST is the test's berthd, and the unmodified docker CLI (or
// berth) runs in it with its stdin a TTY, raw mode, SIGWINCH and all.
// Each test has its own tmux server on its own socket (-S), killed at
// the end.

// sleepSerial makes each session's "sleep N" a process of its own to find.
var sleepSerial atomic.Int64

type tmuxTerm struct {
	t      *testing.T
	socket string
}

const (
	termRows = 30
	termCols = 100
)

// newTerm starts a tmux server with one termCols×termRows window running
// /bin/sh with a clean environment: DOCKER_HOST, a PATH where "docker"
// and "berth" are the CLIs under test, and the prompt "host$ ".
func newTerm(t *testing.T, d *daemonProc) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed for the terminal tests: %v", err)
	}
	bin := t.TempDir()
	for name, target := range map[string]string{"docker": dockerCLI, "berth": berthBinary(t)} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	// A private server on a socket of our own (-S), not the default one.
	sockDir, err := os.MkdirTemp("", "berth-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	tt := &tmuxTerm{t: t, socket: filepath.Join(sockDir, "tmux.sock")}
	shell := fmt.Sprintf("env -i HOME=%s DOCKER_CONFIG=%s PATH=%s:/usr/bin:/bin DOCKER_HOST=%s PS1='host$ ' TERM=screen /bin/sh",
		home, filepath.Join(home, ".docker"), bin, d.host)
	tt.tmux("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", fmt.Sprint(termCols), "-y", fmt.Sprint(termRows), shell)
	t.Cleanup(func() { exec.Command("tmux", "-S", tt.socket, "kill-server").Run() })
	tt.tmux("set-option", "-t", "main", "history-limit", "5000")
	tt.waitFor("host$", 10*time.Second)
	return tt
}

func (tt *tmuxTerm) tmux(args ...string) string {
	tt.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tt.socket}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// typeLine types text and Enter.
func (tt *tmuxTerm) typeLine(text string) {
	tt.t.Helper()
	tt.tmux("send-keys", "-t", "main", "-l", text)
	tt.tmux("send-keys", "-t", "main", "Enter")
}

// keys sends tmux key names (C-c, C-p...).
func (tt *tmuxTerm) keys(k ...string) {
	tt.t.Helper()
	tt.tmux(append([]string{"send-keys", "-t", "main"}, k...)...)
}

// screen is the whole pane with its history, lines joined and trimmed.
func (tt *tmuxTerm) screen() string {
	tt.t.Helper()
	out := tt.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "main")
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// waitFor waits until the screen shows s; it returns the screen.
func (tt *tmuxTerm) waitFor(s string, d time.Duration) string {
	tt.t.Helper()
	deadline := time.Now().Add(d)
	for {
		scr := tt.screen()
		if strings.Contains(scr, s) {
			return scr
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("terminal did not show %q within %s; it shows:\n%s", s, d, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLine waits for a line that is exactly s (output, not the typed
// command that produced it).
func (tt *tmuxTerm) waitLine(s string, d time.Duration) {
	tt.t.Helper()
	tt.waitFor("\n"+s+"\n", d)
}

// reset clears the screen and its history, so what is waited for next
// is new output. The host shell must be at its prompt.
func (tt *tmuxTerm) reset() {
	tt.t.Helper()
	tt.typeLine("clear")
	deadline := time.Now().Add(10 * time.Second)
	for strings.TrimSpace(tt.tmux("capture-pane", "-p", "-t", "main")) != "host$" {
		if time.Now().After(deadline) {
			tt.t.Fatalf("the host shell did not clear its screen:\n%s", tt.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tt.tmux("clear-history", "-t", "main")
}

func (tt *tmuxTerm) resize(cols, rows int) {
	tt.t.Helper()
	tt.tmux("resize-window", "-t", "main", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows))
}

// waitForegroundProcess waits until a process runs argv as the
// foreground process group of its terminal: only then does a Ctrl-C
// reach it (one typed while its shell is still forking goes to the
// shell).
func waitForegroundProcess(t *testing.T, argv []string) {
	t.Helper()
	want := strings.Join(argv, "\x00") + "\x00"
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || string(b) != want {
				continue
			}
			st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			// Fields after "(comm)": state ppid pgrp session tty_nr tpgid.
			f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
			if len(f) > 5 && f[2] == f[5] {
				// A Ctrl-C cannot reach a process that inherited
				// SIGINT ignored: say so rather than time out later.
				status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
				for _, l := range strings.Split(string(status), "\n") {
					if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
						if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(syscall.SIGINT-1)) != 0 {
							t.Fatalf("%q runs with SIGINT ignored (SigIgn %s), so Ctrl-C cannot interrupt it", argv, strings.TrimSpace(v))
						}
					}
				}
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no foreground process %q", argv)
}

func interactiveDaemon(t *testing.T) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	seedImages(t, filepath.Join(dir, "data"), map[string]v1.Image{"busybox:latest": busybox(t)})
	return startDaemon(t, dir)
}

// shellSession drives an interactive busybox shell on the terminal:
// arithmetic, Ctrl-C of a foreground sleep (the shell lives on), the
// terminal size following the tmux window, and `exit 5` passed through
// as the CLI's exit code. launch is the command line typed in the host
// shell; the window is termCols×termRows when it starts.
func shellSession(t *testing.T, tt *tmuxTerm, launch string) {
	t.Helper()
	tt.reset()
	tt.typeLine(launch + "; echo EXIT=$?")
	tt.waitFor("/ #", 20*time.Second)
	tt.typeLine("echo $((6*7))")
	tt.waitLine("42", 10*time.Second)

	secs := 100 + int(sleepSerial.Add(1))
	tt.typeLine(fmt.Sprintf("sleep %d", secs))
	waitForegroundProcess(t, []string{"sleep", fmt.Sprint(secs)})
	t0 := time.Now()
	tt.keys("C-c")
	tt.typeLine("echo after$((1+1))")
	tt.waitLine("after2", 10*time.Second)
	if time.Since(t0) > 9*time.Second {
		t.Errorf("Ctrl-C did not interrupt the sleep")
	}

	tt.typeLine("stty size")
	tt.waitLine(fmt.Sprintf("%d %d", termRows, termCols), 10*time.Second)
	tt.resize(120, 40)
	// The CLI learns of the new size by SIGWINCH and passes it on.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tt.screen(), "\n40 120\n") {
		if time.Now().After(deadline) {
			t.Fatalf("stty size did not follow the window:\n%s", tt.screen())
		}
		tt.typeLine("stty size")
		time.Sleep(300 * time.Millisecond)
	}
	tt.resize(termCols, termRows)

	tt.typeLine("exit 5")
	tt.waitLine("EXIT=5", 15*time.Second)
	t.Logf("terminal:\n%s", tt.screen())
}

func TestInteractiveDockerRunAndExec(t *testing.T) {
	d := interactiveDaemon(t)
	tt := newTerm(t, d)

	t.Run("run -it", func(t *testing.T) {
		tt.t = t
		shellSession(t, tt, "docker run -it --rm busybox sh")
	})

	out, errOut, code := d.docker("run", "-d", "--name", "box", "-e", "FROM_CTR=ctr", "busybox", "sleep", "1000")
	if code != 0 {
		t.Fatalf("run -d: %s", errOut)
	}
	id := strings.TrimSpace(out)

	t.Run("exec -it", func(t *testing.T) {
		tt.t = t
		shellSession(t, tt, "docker exec -it box sh")
	})

	t.Run("piped stdin and exec env, workdir, exit code", func(t *testing.T) {
		tt.t = t
		tt.reset()
		tt.typeLine("echo hi | docker run -i --rm busybox cat; echo PIPED=$?")
		tt.waitLine("PIPED=0", 20*time.Second)
		if !strings.Contains(tt.screen(), "\nhi\nPIPED=0\n") {
			t.Errorf("piped run:\n%s", tt.screen())
		}
		tt.typeLine(`docker exec -e ADDED=a$((1)) -w /tmp box sh -c 'echo "$FROM_CTR $ADDED $(pwd)"; exit 3'; echo EXECCODE=$?`)
		tt.waitLine("EXECCODE=3", 20*time.Second)
		if !strings.Contains(tt.screen(), "\nctr a1 /tmp\nEXECCODE=3\n") {
			t.Errorf("exec env/workdir/exit:\n%s", tt.screen())
		}
	})

	// The same checks without a terminal, where the exit code comes
	// from the exec's inspect right after its stream closes.
	for i := 0; i < 5; i++ {
		if _, _, code := d.docker("exec", "box", "sh", "-c", fmt.Sprintf("exit %d", 40+i)); code != 40+i {
			t.Errorf("exec exit %d: got %d", 40+i, code)
		}
	}
	if out, errOut, code := d.docker("exec", "box", "nope"); code != 127 || !strings.Contains(out+errOut, "executable file not found") {
		t.Errorf("exec of a missing command: %d %q %q", code, out, errOut)
	}
	if out, _, code := runDockerStdin(t, d.host, "through\n", "exec", "-i", "box", "cat"); code != 0 || out != "through\n" {
		t.Errorf("exec -i with piped stdin: %d %q", code, out)
	}
	if _, errOut, code := d.docker("exec", "-d", "box", "sh", "-c", "echo done > /tmp/detached"); code != 0 {
		t.Errorf("exec -d: %s", errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, _, _ := d.docker("exec", "box", "cat", "/tmp/detached"); out == "done\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exec -d did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, errOut, code := d.docker("exec", "-it", "box", "sh"); code == 0 || !strings.Contains(errOut, "the input device is not a TTY") {
		t.Errorf("exec -it without a terminal: %d %q", code, errOut)
	}
	d.docker("stop", "-t", "0", id)
	if _, errOut, code := d.docker("exec", "box", "ls"); code != 1 || !strings.Contains(errOut, "Container "+id+" is not running") {
		t.Errorf("exec in a stopped container: %d %q", code, errOut)
	}
}

// detachSession attaches to a running TTY shell, detaches with Ctrl-P
// Ctrl-Q (the CLI says "read escape sequence" and exits 1, as docker
// does; the container runs on), attaches again and leaves by ending the
// shell (its code is the CLI's), then detaches from an exec and from a
// run -it the same way. cli is "docker" or "berth".
func detachSession(t *testing.T, tt *tmuxTerm, d *daemonProc, cli string) {
	t.Helper()
	running := func(name string) bool {
		out, _, _ := d.docker("inspect", "-f", "{{.State.Running}}", name)
		return out == "true\n"
	}
	if _, errOut, code := d.docker("run", "-dit", "--name", cli+"1", "busybox", "sh"); code != 0 {
		t.Fatalf("run -dit: %s", errOut)
	}
	tt.reset()
	tt.typeLine(cli + " attach " + cli + "1; echo ATTACH=$?")
	time.Sleep(time.Second)
	tt.typeLine("echo attached$((2+3))")
	tt.waitLine("attached5", 15*time.Second)
	tt.typeLine("stty size")
	tt.waitLine(fmt.Sprintf("%d %d", termRows, termCols), 10*time.Second)
	tt.keys("C-p", "C-q")
	tt.waitFor("read escape sequence\nATTACH=1\n", 10*time.Second)
	if !running(cli + "1") {
		t.Fatal("the container stopped on detach")
	}

	tt.reset()
	tt.typeLine(cli + " attach " + cli + "1; echo AGAIN=$?")
	time.Sleep(time.Second)
	tt.typeLine("exit 9")
	tt.waitLine("AGAIN=9", 15*time.Second)

	if _, errOut, code := d.docker("start", cli+"1"); code != 0 {
		t.Fatalf("start again: %s", errOut)
	}
	tt.reset()
	tt.typeLine(cli + " exec -it " + cli + "1 sh; echo EXECD=$?")
	tt.waitFor("/ #", 20*time.Second)
	tt.keys("C-p", "C-q")
	tt.waitFor("read escape sequence\nEXECD=1\n", 10*time.Second)

	tt.reset()
	tt.typeLine(cli + " run -it --name " + cli + "2 busybox sh; echo RUN=$?")
	tt.waitFor("/ #", 20*time.Second)
	tt.keys("C-p", "C-q")
	// run prints nothing on detach (not even a newline) and exits 0.
	tt.waitFor("RUN=0\n", 10*time.Second)
	if !running(cli + "2") {
		t.Fatal("run -it stopped on detach")
	}
	d.docker("stop", "-t", "0", cli+"2")
	tt.reset()
	tt.typeLine(cli + " attach " + cli + "2; echo STOPPED=$?")
	tt.waitFor("You cannot attach to a stopped container, start it first\nSTOPPED=1\n", 10*time.Second)
	tt.typeLine(cli + " attach nope; echo NOPE=$?")
	tt.waitFor("No such container: nope\nNOPE=1\n", 10*time.Second)
}

func TestInteractiveDockerAttachAndDetach(t *testing.T) {
	d := interactiveDaemon(t)
	detachSession(t, newTerm(t, d), d, "docker")
}

func TestInteractiveBerthRunAndExec(t *testing.T) {
	d := interactiveDaemon(t)
	tt := newTerm(t, d)
	t.Run("run -it", func(t *testing.T) {
		tt.t = t
		shellSession(t, tt, "berth run -it --rm busybox sh")
	})
	if _, errOut, code := d.berth("run", "-d", "--name", "box", "busybox", "sleep", "1000"); code != 0 {
		t.Fatalf("berth run -d: %s", errOut)
	}
	t.Run("exec -it", func(t *testing.T) {
		tt.t = t
		shellSession(t, tt, "berth exec -it box sh")
	})
	t.Run("attach and detach", func(t *testing.T) {
		tt.t = t
		detachSession(t, tt, d, "berth")
	})
	t.Run("piped stdin, env, workdir, exit codes", func(t *testing.T) {
		tt.t = t
		tt.reset()
		tt.typeLine("echo hi | berth run -i --rm busybox cat; echo PIPED=$?")
		tt.waitLine("PIPED=0", 20*time.Second)
		if !strings.Contains(tt.screen(), "\nhi\nPIPED=0\n") {
			t.Errorf("piped run:\n%s", tt.screen())
		}
		tt.typeLine(`berth exec -e ADDED=a$((1)) -w /tmp box sh -c 'echo "$ADDED $(pwd)"; exit 3'; echo EXECCODE=$?`)
		tt.waitLine("EXECCODE=3", 20*time.Second)
		if !strings.Contains(tt.screen(), "\na1 /tmp\nEXECCODE=3\n") {
			t.Errorf("exec env/workdir/exit:\n%s", tt.screen())
		}
	})
}
