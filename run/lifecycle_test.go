package run

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

func (e *testEnv) startDetached(cmd []string, edit ...func(*CreateRequest)) string {
	e.t.Helper()
	id := e.create(cmd, edit...)
	if err := e.m.Start(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func TestStopWaitsTimeoutThenKills(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"})
	waitFor(t, 10*time.Second, "ready", func() bool { return e.logs(id, LogsOptions{Stdout: true, Tail: -1}) == "ready\n" })
	if err := e.m.Start(ctx, id); !errdefs.IsNotModified(err) {
		t.Fatalf("second start: %v", err)
	}
	one := 1
	t0 := time.Now()
	if err := e.m.Stop(ctx, id, &one); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if took < time.Second || took > 8*time.Second {
		t.Fatalf("stop took %v, want the 1s timeout then a kill", took)
	}
	ins := e.inspect(id)
	if ins.State.Running || ins.State.ExitCode != 137 {
		t.Fatalf("state after stop: %+v", ins.State)
	}
	acts := strings.Join(e.actions(id), ",")
	if acts != "create,start,kill,kill,die,stop" {
		t.Errorf("events: %s", acts)
	}
	if err := e.m.Stop(ctx, id, &one); !errdefs.IsNotModified(err) {
		t.Fatalf("stop of a stopped container: %v", err)
	}
	// A container that honours SIGTERM stops at once.
	id = e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.Config.StopSignal = "SIGKILL" })
	t0 = time.Now()
	if err := e.m.Stop(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if time.Since(t0) > 5*time.Second {
		t.Fatalf("stop with StopSignal SIGKILL took %v", time.Since(t0))
	}
}

func TestKillAndRemoveRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created := e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "idle" })
	err := e.m.Kill(ctx, "idle", "")
	want := "Cannot kill container: idle: Container " + created + " is not running"
	if !errdefs.IsConflict(err) || err.Error() != want {
		t.Fatalf("kill of a created container: %v", err)
	}
	id := e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.Name = "sleeper" })
	err = e.m.Remove(ctx, "sleeper", RemoveOptions{})
	want = "You cannot remove a running container " + id + ". Stop the container before attempting removal or force remove"
	if !errdefs.IsConflict(err) || err.Error() != want {
		t.Fatalf("remove running: %v", err)
	}
	if _, err := ParseSignal("NOPE"); err == nil {
		t.Fatal("bad signal parsed")
	}
	if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// The init of a pid namespace only gets signals it handles.
	id = e.startDetached([]string{"sh", "-c", "trap 'exit 9' USR1; echo ready; while true; do sleep 0.1; done"})
	waitFor(t, 10*time.Second, "trap set", func() bool { return e.logs(id, LogsOptions{Stdout: true, Tail: -1}) == "ready\n" })
	w, _ := e.m.Wait(ctx, id, "")
	if err := e.m.Kill(ctx, id[:8], "USR1"); err != nil {
		t.Fatalf("kill USR1 by prefix: %v", err)
	}
	select {
	case res := <-w:
		if res.StatusCode != 9 {
			t.Fatalf("exit after USR1: %d", res.StatusCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after USR1")
	}
	id = e.startDetached([]string{"sleep", "100"})
	if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatalf("force remove: %v", err)
	}
	if e.m.Exists(id) {
		t.Fatal("force-removed container still there")
	}
	acts := strings.Join(e.actions(id), ",")
	if acts != "create,start,kill,die,destroy" {
		t.Errorf("events: %s", acts)
	}
	if err := e.m.Remove(ctx, created, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Remove(ctx, created, RemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestListFiltersAndStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exited, code, _ := e.run([]string{"sh", "-c", "exit 2"}, func(r *CreateRequest) {
		r.Name = "exited-one"
		r.Config.Labels = map[string]string{"tier": "batch"}
	})
	if code != 2 {
		t.Fatal(code)
	}
	time.Sleep(10 * time.Millisecond)
	created := e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "just-created" })
	time.Sleep(10 * time.Millisecond)
	running := e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) {
		r.Name = "web"
		r.Config.Labels = map[string]string{"tier": "front"}
	})
	names := func(opts ListOptions) string {
		t.Helper()
		l, err := e.m.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range l {
			out = append(out, s.Names[0])
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		opts ListOptions
		want string
	}{
		{ListOptions{}, "/web"},
		{ListOptions{All: true}, "/web,/just-created,/exited-one"},
		{ListOptions{Limit: 2}, "/web,/just-created"},
		{ListOptions{Filters: map[string][]string{"status": {"exited"}}}, "/exited-one"},
		{ListOptions{Filters: map[string][]string{"status": {"created", "running"}}}, "/web,/just-created"},
		{ListOptions{All: true, Filters: map[string][]string{"name": {"web"}}}, "/web"},
		{ListOptions{All: true, Filters: map[string][]string{"name": {"^/just"}}}, "/just-created"},
		{ListOptions{All: true, Filters: map[string][]string{"id": {created[:10]}}}, "/just-created"},
		{ListOptions{All: true, Filters: map[string][]string{"label": {"tier"}}}, "/web,/exited-one"},
		{ListOptions{All: true, Filters: map[string][]string{"label": {"tier=batch"}}}, "/exited-one"},
		{ListOptions{All: true, Filters: map[string][]string{"ancestor": {"busybox"}}}, "/web,/just-created,/exited-one"},
		{ListOptions{All: true, Filters: map[string][]string{"ancestor": {"nosuch"}}}, ""},
		{ListOptions{All: true, Filters: map[string][]string{"exited": {"2"}}}, "/exited-one"},
		{ListOptions{All: true, Filters: map[string][]string{"exited": {"0"}}}, ""},
		{ListOptions{All: true, Filters: map[string][]string{"before": {"web"}}}, "/just-created,/exited-one"},
		{ListOptions{All: true, Filters: map[string][]string{"since": {"exited-one"}}}, "/web,/just-created"},
	}
	for _, tc := range cases {
		if got := names(tc.opts); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.opts, got, tc.want)
		}
	}
	if _, err := e.m.List(ctx, ListOptions{Filters: map[string][]string{"status": {"bogus"}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad status filter: %v", err)
	}
	if _, err := e.m.List(ctx, ListOptions{Filters: map[string][]string{"colour": {"x"}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown filter: %v", err)
	}
	l, _ := e.m.List(ctx, ListOptions{All: true, Size: true})
	status := map[string]string{}
	for _, s := range l {
		status[s.ID] = s.Status
		if s.ImageID == "" || s.Image != "busybox" || s.HostConfig.NetworkMode != "default" || s.NetworkSettings.Networks["bridge"] == nil {
			t.Errorf("summary %+v", s)
		}
		if s.SizeRootFs <= s.SizeRw {
			t.Errorf("sizes %d %d", s.SizeRw, s.SizeRootFs)
		}
	}
	if !strings.HasPrefix(status[running], "Up ") || status[created] != "Created" || !strings.HasPrefix(status[exited], "Exited (2) ") {
		t.Errorf("status texts %v", status)
	}
	// Reads do not wait behind an operation holding the container.
	c, _ := e.m.lookup(running)
	c.op.Lock()
	done := make(chan struct{})
	go func() {
		e.m.List(ctx, ListOptions{All: true})
		e.m.Inspect(ctx, running, false)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("List/Inspect blocked behind a container operation")
	}
	c.op.Unlock()
}

func TestLogsFollowTailTimestamps(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "for i in 1 2 3; do echo line$i; done; echo err >&2; read x; for i in 4 5; do echo line$i; done"},
		func(r *CreateRequest) { r.Config.OpenStdin = true; r.Config.StdinOnce = true })
	waitFor(t, 10*time.Second, "first lines", func() bool {
		return strings.Count(e.logs(id, LogsOptions{Stdout: true, Stderr: true, Tail: -1}), "\n") == 4
	})
	if got := e.logs(id, LogsOptions{Stdout: true, Tail: 2}); got != "line2\nline3\n" {
		t.Fatalf("tail 2: %q", got)
	}
	// stdout and stderr are read concurrently, so only the order within
	// a stream is fixed.
	if got := e.logs(id, LogsOptions{Stderr: true, Tail: 1}); got != "err\n" {
		t.Fatalf("tail 1 of stderr: %q", got)
	}
	if got := e.logs(id, LogsOptions{Stdout: true, Tail: 0}); got != "" {
		t.Fatalf("tail 0: %q", got)
	}
	ts := e.logs(id, LogsOptions{Stdout: true, Tail: 1, Timestamps: true})
	stamp, rest, _ := strings.Cut(ts, " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || rest != "line3\n" || len(stamp) != len("2006-01-02T15:04:05.000000000Z") {
		t.Fatalf("timestamps: %q", ts)
	}
	if got := e.logs(id, LogsOptions{Stdout: true, Tail: -1, Since: time.Now().Add(time.Hour)}); got != "" {
		t.Fatalf("since the future: %q", got)
	}
	// Follow from the last line; the rest arrives when stdin says so,
	// and the stream ends with the container.
	rc, err := e.m.Logs(ctx, id, LogsOptions{Stdout: true, Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var mu sync.Mutex
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() {
		pr, pw := io.Pipe()
		go func() {
			so, _, err := demux(pr)
			mu.Lock()
			buf.WriteString(so)
			mu.Unlock()
			done <- err
		}()
		io.Copy(pw, rc)
		pw.Close()
	}()
	// Feed stdin through an attach.
	att, err := e.m.Attach(ctx, id, AttachOptions{Stdin: strings.NewReader("go\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("follow did not end with the container")
	}
	mu.Lock()
	defer mu.Unlock()
	if buf.String() != "line3\nline4\nline5\n" {
		t.Fatalf("followed: %q", buf.String())
	}
}

func TestAttachBeforeStartGetsAllOutput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"sh", "-c", "echo out1; echo err1 >&2; echo out2"})
	att, err := e.m.Attach(ctx, id, AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	only, err := e.m.Attach(ctx, id, AttachOptions{Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	wait, _ := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	var all, errOnly bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); att.Stream(ctx, &all) }()
	go func() { defer wg.Done(); only.Stream(ctx, &errOnly) }()
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if res := <-wait; res.StatusCode != 0 {
		t.Fatalf("exit %d", res.StatusCode)
	}
	so, se, err := demux(&all)
	if err != nil || so != "out1\nout2\n" || se != "err1\n" {
		t.Fatalf("attached: %q %q %v", so, se, err)
	}
	so, se, _ = demux(&errOnly)
	if so != "" || se != "err1\n" {
		t.Fatalf("stderr-only attach: %q %q", so, se)
	}
}

func TestWaitConditions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"sh", "-c", "exit 4"})
	// not-running answers at once for a created container.
	w, err := e.m.Wait(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-w:
		if res.StatusCode != 0 {
			t.Fatal(res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not-running wait on a created container blocked")
	}
	next, _ := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	removed, _ := e.m.Wait(ctx, id, container.WaitConditionRemoved)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-next:
		if res.StatusCode != 4 {
			t.Fatalf("next-exit: %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("next-exit never came")
	}
	select {
	case <-removed:
		t.Fatal("removed resolved before removal")
	default:
	}
	if err := e.m.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-removed:
		if res.StatusCode != 4 {
			t.Fatalf("removed: %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("removed never came")
	}
	if _, err := e.m.Wait(ctx, id, "bogus"); err == nil {
		t.Fatal("wait on a removed container succeeded")
	}
	// Cancelling the context ends a wait without a result.
	id = e.create([]string{"true"})
	cctx, cancel := context.WithCancel(ctx)
	w, _ = e.m.Wait(cctx, id, container.WaitConditionNextExit)
	cancel()
	select {
	case res := <-w:
		t.Fatalf("cancelled wait answered %+v", res)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestLiveRestoreReconnects(t *testing.T) {
	e := newEnv(t, withLiveRestore())
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done"})
	exited := e.startDetached([]string{"sh", "-c", "sleep 0.5; exit 7"})
	waitFor(t, 10*time.Second, "ticks", func() bool { return strings.Contains(e.logs(id, LogsOptions{Stdout: true, Tail: -1}), "tick2\n") })
	pid := e.inspect(id).State.Pid
	if err := e.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// While no berthd is there, the second container exits.
	time.Sleep(time.Second)
	e.reopen()
	ins := e.inspect(id)
	if !ins.State.Running || ins.State.Pid != pid {
		t.Fatalf("after restart: %+v (pid before %d)", ins.State, pid)
	}
	ex := e.inspect(exited)
	if ex.State.Running || ex.State.ExitCode != 7 || ex.State.Status != container.StateExited {
		t.Fatalf("container that exited while away: %+v", ex.State)
	}
	before := strings.Count(e.logs(id, LogsOptions{Stdout: true, Tail: -1}), "\n")
	waitFor(t, 10*time.Second, "logs growing", func() bool {
		return strings.Count(e.logs(id, LogsOptions{Stdout: true, Tail: -1}), "\n") > before+2
	})
	one := 1
	if err := e.m.Stop(ctx, id, &one); err != nil {
		t.Fatal(err)
	}
	if ins := e.inspect(id); ins.State.Running {
		t.Fatalf("still running after stop: %+v", ins.State)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Fatalf("mounts after stop: %v", mnts)
	}
}

// A start is recorded in the background, and berthd may die before the
// record is written: the run's shim, or the exit file it leaves, tells a
// restarted berthd what became of the run.
func TestUnrecordedRunsAreRecovered(t *testing.T) {
	e := newEnv(t, withLiveRestore())
	ctx := context.Background()
	running := e.startDetached([]string{"sleep", "100"})
	ended := e.startDetached([]string{"sleep", "100"})
	pid := e.inspect(running).State.Pid
	endedState := e.inspect(ended).State
	c, _ := e.m.lookup(ended)
	endedShim := c.view().State.ShimPid
	for _, id := range []string{running, ended} {
		c, _ := e.m.lookup(id)
		if err := e.m.save(ctx, c); err != nil {
			t.Fatal(err)
		}
		r := *c.view()
		r.State = containerState{Status: container.StateCreated}
		if err := e.m.persist(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// While no berthd is there, one of them is killed.
	if err := syscall.Kill(endedState.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "shim of the killed container gone", func() bool { return syscall.Kill(endedShim, 0) != nil })
	e.reopen()
	if ins := e.inspect(running); !ins.State.Running || ins.State.Pid != pid || ins.State.StartedAt == "0001-01-01T00:00:00Z" {
		t.Fatalf("unrecorded run still going: %+v (pid %d)", ins.State, pid)
	}
	if ins := e.inspect(ended); ins.State.Running || ins.State.Status != container.StateExited || ins.State.ExitCode != 137 {
		t.Fatalf("unrecorded run that ended: %+v", ins.State)
	}
	if _, err := os.Stat(e.m.bundleDir(ended)); !os.IsNotExist(err) {
		t.Fatalf("bundle of the ended run kept: %v", err)
	}
	// The adopted run is a run like any other.
	w, _ := e.m.Wait(ctx, running, container.WaitConditionNextExit)
	if err := e.m.Kill(ctx, running, "KILL"); err != nil {
		t.Fatal(err)
	}
	if res := <-w; res.StatusCode != 137 {
		t.Fatalf("adopted run's exit: %d", res.StatusCode)
	}
}

// An --rm container is gone for callers before its removal is written;
// a crash before the write leaves its record, and the next start finishes
// the removal without taking the name from a newer container.
func TestInterruptedAutoRemoveIsFinished(t *testing.T) {
	e := newEnv(t, withLiveRestore())
	ctx := context.Background()
	a := e.create([]string{"sleep", "100"}, func(r *CreateRequest) { r.Name = "reused"; r.HostConfig.AutoRemove = true })
	removed, _ := e.m.Wait(ctx, a, container.WaitConditionRemoved)
	if err := e.m.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	c, _ := e.m.lookup(a)
	if err := e.m.save(ctx, c); err != nil {
		t.Fatal(err)
	}
	stale := *c.view()
	if err := e.m.Kill(ctx, a, "KILL"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-removed:
		if res.StatusCode != 137 {
			t.Fatalf("removed with %d", res.StatusCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not removed")
	}
	if e.m.Exists(a) || e.m.Exists("reused") {
		t.Fatal("--rm container still there")
	}
	// The name is free at once. (Records load in ID order and the stale
	// one must come last to matter: a new container gets the name only
	// with a smaller ID.)
	b := e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "reused" })
	for i := 0; b > a && i < 300; i++ {
		if err := e.m.Remove(ctx, b, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
		b = e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "reused" })
	}
	// As if berthd had died before the record of the first was deleted.
	if err := e.m.persist(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if e.m.Exists(a) {
		t.Fatal("interrupted removal not finished")
	}
	if ins := e.inspect("reused"); ins.ID != b {
		t.Fatalf("name reused is %s, want %s", ins.ID, b)
	}
	if _, err := e.store.RWLayerOf(ctx, a); !errdefs.IsNotFound(err) {
		t.Fatalf("layer of the removed container: %v", err)
	}
	if _, err := os.Stat(e.m.containerDir(a)); !os.IsNotExist(err) {
		t.Fatalf("directory of the removed container: %v", err)
	}
}

func TestRestartWithoutLiveRestoreStopsSurvivors(t *testing.T) {
	e := newEnv(t, withLiveRestore())
	ctx := context.Background()
	id := e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.Config.StopSignal = "KILL" })
	// berthd "crashes" (its monitors go, the shim stays), then comes back
	// without live restore: the survivor is stopped.
	if err := e.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e.cfg.LiveRestore = false
	e.reopen()
	ins := e.inspect(id)
	if ins.State.Running || ins.State.ExitCode != 137 {
		t.Fatalf("survivor after restart without live restore: %+v", ins.State)
	}
	// Shutdown without live restore stops running containers.
	id = e.startDetached([]string{"sleep", "100"}, func(r *CreateRequest) { r.Config.StopSignal = "KILL" })
	if err := e.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ins := e.inspect(id); ins.State.Running {
		t.Fatalf("running after shutdown: %+v", ins.State)
	}
	e.reopen()
	if ins := e.inspect(id); ins.State.Running || ins.State.ExitCode != 137 {
		t.Fatalf("after shutdown and restart: %+v", ins.State)
	}
}

func TestRestartPolicyAndRename(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sh", "-c", "echo run; exit 1"}, func(r *CreateRequest) {
		r.Name = "flaky"
		r.HostConfig.RestartPolicy = container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	})
	waitFor(t, 20*time.Second, "two restarts", func() bool {
		ins := e.inspect(id)
		return ins.RestartCount == 2 && !ins.State.Running && !ins.State.Restarting
	})
	if out := e.logs(id, LogsOptions{Stdout: true, Tail: -1}); out != "run\nrun\nrun\n" {
		t.Fatalf("runs: %q", out)
	}
	time.Sleep(500 * time.Millisecond)
	if n := e.inspect(id).RestartCount; n != 2 {
		t.Fatalf("restarted beyond the maximum: %d", n)
	}
	if err := e.m.Rename(ctx, "flaky", "steady"); err != nil {
		t.Fatal(err)
	}
	if ins := e.inspect("steady"); ins.ID != id || ins.Name != "/steady" {
		t.Fatalf("renamed: %s %s", ins.ID, ins.Name)
	}
	if e.m.Exists("flaky") {
		t.Fatal("old name still resolves")
	}
	other := e.create([]string{"true"}, func(r *CreateRequest) { r.Name = "other" })
	if err := e.m.Rename(ctx, other, "steady"); !errdefs.IsConflict(err) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	rep, err := e.m.Prune(ctx, nil)
	if err != nil || len(rep.ContainersDeleted) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
}

func TestHundredContainersListed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 100
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := e.m.Create(ctx, CreateRequest{Name: fmt.Sprintf("c%03d", i), Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("100 creates: %v", time.Since(t0))
	t0 = time.Now()
	l, err := e.m.List(ctx, ListOptions{All: true})
	if err != nil || len(l) != n {
		t.Fatalf("list: %d %v", len(l), err)
	}
	const rounds = 200
	for i := 0; i < rounds; i++ {
		e.m.List(ctx, ListOptions{All: true})
	}
	t.Logf("list of 100: %v each", time.Since(t0)/rounds)
	seen := map[string]bool{}
	for _, s := range l {
		seen[s.Names[0]] = true
		if s.Status != "Created" {
			t.Errorf("%s: %q", s.Names[0], s.Status)
		}
	}
	if len(seen) != n {
		t.Fatalf("distinct names %d", len(seen))
	}
	// Random names are docker-style.
	resp, err := e.m.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	name := e.inspect(resp.ID).Name
	if parts := strings.Split(strings.TrimPrefix(name, "/"), "_"); len(parts) != 2 {
		t.Fatalf("random name %q", name)
	}
	// A new Manager sees them all.
	e.reopen()
	if l, _ := e.m.List(ctx, ListOptions{All: true}); len(l) != n+1 {
		t.Fatalf("after reopen: %d", len(l))
	}
}

func TestShimDeathEndsTheContainer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sleep", "100"})
	c, _ := e.m.lookup(id)
	rec := c.view()
	if rec.State.ShimPid <= 0 || rec.State.Pid <= 0 {
		t.Fatalf("pids not recorded: %+v", rec.State)
	}
	exited := c.exitChan()
	if err := syscall.Kill(rec.State.ShimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("shim death not noticed")
	}
	if ins := e.inspect(id); ins.State.Running || ins.State.ExitCode != 255 {
		t.Fatalf("state: %+v", ins.State)
	}
	// The container's init went with it.
	waitFor(t, 10*time.Second, "container init gone", func() bool {
		return syscall.Kill(rec.State.Pid, 0) != nil
	})
	for _, d := range cgroupDirs(e.cgroupParent) {
		if _, err := os.Stat(filepath.Join(d, id)); err == nil {
			t.Fatalf("cgroup left: %s", filepath.Join(d, id))
		}
	}
	// It can run again.
	w, _ := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Kill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	if res := <-w; res.StatusCode != 137 {
		t.Fatalf("exit after SIGKILL: %d", res.StatusCode)
	}
}

// TestGenerationFollowsEveryChange: whatever List would show differently
// (a new container, a rename, a run, a removal) moves Generation, which is
// what lets the API keep an encoded listing until then.
func TestGenerationFollowsEveryChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	last := e.m.Generation()
	moved := func(what string) {
		t.Helper()
		g := e.m.Generation()
		if g == last {
			t.Fatalf("%s: generation stayed %d", what, g)
		}
		last = g
	}
	id := e.create([]string{"true"})
	moved("create")
	if err := e.m.Rename(ctx, id, "renamed"); err != nil {
		t.Fatal(err)
	}
	moved("rename")
	if code, _ := e.startAndWait(id); code != 0 {
		t.Fatalf("exit %d", code)
	}
	moved("run")
	if _, err := e.m.List(ctx, ListOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if g := e.m.Generation(); g != last {
		t.Fatalf("a List moved the generation %d → %d", last, g)
	}
	if err := e.m.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	moved("remove")
}
