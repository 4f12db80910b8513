package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --restart always through the docker CLI: a crashing container comes back
// again and again, each time after a longer pause (Docker's back-off), and
// docker stop ends it for good, even between two runs.
func TestDockerRestartAlwaysBacksOffAndStopEndsIt(t *testing.T) {
	d := opsDaemon(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	d.mustDocker("run", "-d", "--name", "crash", "--restart", "always", "busybox", "sh", "-c", "echo up; exit 3")
	restarts := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.RestartCount}}", "crash")))
		return n
	}
	// Five restarts begun: the first four have started (and told so).
	waitUntil(t, 30*time.Second, "five restarts", func() bool { return restarts() >= 5 })

	// The gaps between starts grow: 100 ms, 200 ms, 400 ms, 800 ms of
	// back-off on top of each run's own time.
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := d.mustDocker("events", "--since", since, "--until", until,
		"--filter", "container=crash", "--filter", "event=start", "--format", "{{.TimeNano}}")
	var starts []int64
	for _, f := range strings.Fields(out) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("event time %q: %v", f, err)
		}
		starts = append(starts, n)
	}
	if len(starts) < 5 {
		t.Fatalf("want at least 5 start events, got %d: %q", len(starts), out)
	}
	first := time.Duration(starts[1] - starts[0])
	fourth := time.Duration(starts[4] - starts[3])
	if fourth < first+400*time.Millisecond {
		t.Fatalf("no back-off: gaps %v then %v", first, fourth)
	}
	if logs := d.mustDocker("logs", "crash"); strings.Count(logs, "up\n") < 5 {
		t.Fatalf("each run should have logged: %q", logs)
	}

	// Stop, whether it catches the container running or waiting for its
	// next run, halts it for good.
	d.mustDocker("stop", "crash")
	stopped := restarts()
	time.Sleep(2 * time.Second)
	if n := restarts(); n != stopped {
		t.Fatalf("restarted after docker stop: %d then %d", stopped, n)
	}
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.State.ExitCode}}", "crash"); st != "exited false 3\n" && st != "exited false 143\n" {
		t.Fatalf("state after stop: %q", st)
	}

	// on-failure:2 gives up after two restarts; a clean exit is not
	// restarted at all.
	d.mustDocker("run", "-d", "--name", "twice", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitUntil(t, 20*time.Second, "two restarts then exited", func() bool {
		return d.mustDocker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "twice") == "2 exited\n"
	})
	d.mustDocker("run", "-d", "--name", "clean", "--restart", "on-failure", "busybox", "true")
	waitUntil(t, 10*time.Second, "clean exit", func() bool {
		return d.mustDocker("inspect", "-f", "{{.State.Status}}", "clean") == "exited\n"
	})
	time.Sleep(500 * time.Millisecond)
	if n := d.mustDocker("inspect", "-f", "{{.RestartCount}}", "clean"); n != "0\n" {
		t.Fatalf("a clean exit was restarted: %s", n)
	}
}

// Restart policies apply when berthd starts: an "always" container that
// berthd stopped on shutdown runs again, an "unless-stopped" one that the
// user stopped does not.
func TestRestartPoliciesApplyAtDaemonStart(t *testing.T) {
	d := opsDaemon(t)
	d.mustDocker("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	d.mustDocker("run", "-d", "--name", "kept-down", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.mustDocker("stop", "-t", "0", "kept-down")
	// SIGTERM without removing the containers first (daemonProc.stop
	// would): berthd stops them as dockerd does without --live-restore.
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("berthd did not stop:\n%s", d.logs())
	}
	d2 := startDaemon(t, d.dir)
	waitUntil(t, 15*time.Second, "always running again", func() bool {
		return d2.mustDocker("inspect", "-f", "{{.State.Status}}", "always") == "running\n"
	})
	if st := d2.mustDocker("inspect", "-f", "{{.State.Status}}", "kept-down"); st != "exited\n" {
		t.Fatalf("unless-stopped container stopped by the user: %q", st)
	}
	d2.mustDocker("stop", "-t", "0", "always")
}
