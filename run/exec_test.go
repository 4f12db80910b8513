package run

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// execRun creates and starts an exec attached to out (and stdin), and
// returns once its output has ended, with its inspect.
func (e *testEnv) execRun(id string, req container.ExecCreateRequest, stdin io.Reader) (string, container.ExecInspectResponse, error) {
	e.t.Helper()
	ctx := context.Background()
	req.AttachStdout, req.AttachStderr = true, true
	req.AttachStdin = stdin != nil
	xid, err := e.m.ExecCreate(ctx, id, req)
	if err != nil {
		e.t.Fatal(err)
	}
	var out syncBuffer
	err = e.m.ExecStart(ctx, xid, ExecStartOptions{}, func(tty bool) (ExecStreams, error) {
		if tty != req.Tty {
			e.t.Errorf("attach told tty=%v", tty)
		}
		return ExecStreams{Stdin: stdin, Output: &out}, nil
	})
	ins, ierr := e.m.ExecInspect(ctx, xid)
	if ierr != nil {
		e.t.Fatal(ierr)
	}
	return out.String(), ins, err
}

func demuxed(t testing.TB, s string) (string, string) {
	t.Helper()
	so, se, err := demux(strings.NewReader(s))
	if err != nil {
		t.Fatalf("demux %q: %v", s, err)
	}
	return so, se
}

func TestExecEnvWorkdirUserAndExitCode(t *testing.T) {
	e := newEnv(t)
	id := e.startDetached([]string{"sleep", "1000"}, func(r *CreateRequest) {
		r.Config.Env = []string{"FROM_CTR=ctr", "OVERRIDDEN=ctr"}
		r.Config.WorkingDir = "/etc"
	})
	out, ins, err := e.execRun(id, container.ExecCreateRequest{
		Cmd: []string{"sh", "-c", `echo "$FROM_CTR $OVERRIDDEN $ADDED $(pwd) $(id -u) $HOSTNAME ${TERM:-noterm}"; echo oops >&2; exit 3`},
		Env: []string{"OVERRIDDEN=exec", "ADDED=1"}, WorkingDir: "/tmp", User: "nobody",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	so, se := demuxed(t, out)
	if so != "ctr exec 1 /tmp 65534 "+id[:12]+" noterm\n" || se != "oops\n" {
		t.Errorf("exec output %q %q", so, se)
	}
	if ins.ExitCode == nil || *ins.ExitCode != 3 || ins.Running || ins.ContainerID != id || ins.Pid <= 0 || ins.ProcessConfig.Entrypoint != "sh" || ins.ProcessConfig.User != "nobody" {
		t.Errorf("inspect: %+v (exit %v)", ins, ins.ExitCode)
	}
	// Defaults: the container's working directory and user.
	out, _, _ = e.execRun(id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "pwd; id -u"}}, nil)
	if so, _ := demuxed(t, out); so != "/etc\n0\n" {
		t.Errorf("defaults: %q", so)
	}
	// Events: create, start and die (with the code), as dockerd words them.
	waitFor(t, 5*time.Second, "exec_die", func() bool { return strings.Contains(strings.Join(e.actions(id), ","), "exec_die") })
	acts := strings.Join(e.actions(id), ",")
	for _, want := range []string{"exec_create: sh -c pwd; id -u", "exec_start: sh -c pwd; id -u", "exec_die"} {
		if !strings.Contains(acts, want) {
			t.Errorf("events lack %q: %s", want, acts)
		}
	}
	e.evMu.Lock()
	found := false
	for _, ev := range e.events {
		if ev.Action == "exec_die" && ev.Actor.Attributes["exitCode"] == "3" && ev.Actor.Attributes["execID"] != "" {
			found = true
		}
	}
	e.evMu.Unlock()
	if !found {
		t.Error("no exec_die with exitCode 3")
	}
}

func TestExecStdinAndMissingCommand(t *testing.T) {
	e := newEnv(t)
	id := e.startDetached([]string{"sleep", "1000"})
	out, ins, err := e.execRun(id, container.ExecCreateRequest{Cmd: []string{"cat"}}, strings.NewReader("through stdin\n"))
	if err != nil {
		t.Fatal(err)
	}
	if so, _ := demuxed(t, out); so != "through stdin\n" || *ins.ExitCode != 0 {
		t.Errorf("cat: %q exit %d", so, *ins.ExitCode)
	}
	_, ins, err = e.execRun(id, container.ExecCreateRequest{Cmd: []string{"nope"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "executable file not found") || !strings.HasPrefix(err.Error(), "OCI runtime exec failed: ") {
		t.Errorf("missing command: %v", err)
	}
	if ins.ExitCode == nil || *ins.ExitCode != 127 || ins.Running {
		t.Errorf("missing command inspect: %+v", ins)
	}
	_, ins, err = e.execRun(id, container.ExecCreateRequest{Cmd: []string{"/etc"}}, nil)
	if err == nil || *ins.ExitCode != 126 {
		t.Errorf("a directory: %v %d", err, *ins.ExitCode)
	}
	// The execs' files go with them (the shim's a moment after it
	// answered).
	waitFor(t, 5*time.Second, "exec files gone from the bundle", func() bool {
		matches, _ := filepath.Glob(filepath.Join(e.m.bundleDir(id), "exec-*"))
		return len(matches) == 0
	})
}

func TestExecPrivilegedGetsAllCapabilities(t *testing.T) {
	e := newEnv(t)
	id := e.startDetached([]string{"sleep", "1000"})
	capEff := func(priv bool) string {
		out, _, err := e.execRun(id, container.ExecCreateRequest{Cmd: []string{"grep", "CapEff", "/proc/self/status"}, Privileged: priv}, nil)
		if err != nil {
			t.Fatal(err)
		}
		so, _ := demuxed(t, out)
		return strings.TrimSpace(strings.TrimPrefix(so, "CapEff:"))
	}
	plain, priv := capEff(false), capEff(true)
	if plain != "00000000a80425fb" || priv == plain || !strings.HasPrefix(priv, "000001ff") && !strings.HasPrefix(priv, "0000003f") {
		t.Errorf("CapEff plain %q privileged %q", plain, priv)
	}
}

func TestExecRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created := e.create([]string{"sleep", "1000"})
	_, err := e.m.ExecCreate(ctx, created, container.ExecCreateRequest{Cmd: []string{"ls"}})
	if !errdefs.IsConflict(err) || err.Error() != "Container "+created+" is not running" {
		t.Errorf("exec in a created container: %v", err)
	}
	if _, err := e.m.ExecCreate(ctx, "nope", container.ExecCreateRequest{Cmd: []string{"ls"}}); !errdefs.IsNotFound(err) || err.Error() != "No such container: nope" {
		t.Errorf("exec in no container: %v", err)
	}
	if _, err := e.m.ExecInspect(ctx, "nope"); !errdefs.IsNotFound(err) || err.Error() != "No such exec instance 'nope' found in daemon" {
		t.Errorf("inspect no exec: %v", err)
	}
	id := e.startDetached([]string{"sleep", "1000"})
	if _, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"ls"}, User: "nosuchuser"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no command: %v", err)
	}

	// Detached: ExecStart returns once it runs; the exit is known later.
	xid, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "sleep 0.3; touch /tmp/done"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.ExecStart(ctx, xid, ExecStartOptions{Detach: true}, nil); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.m.ExecInspect(ctx, xid); !ins.Running || ins.ExitCode != nil || ins.Pid <= 0 {
		t.Errorf("detached exec while running: %+v", ins)
	}
	if err := e.m.ExecStart(ctx, xid, ExecStartOptions{Detach: true}, nil); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is already running") {
		t.Errorf("second start: %v", err)
	}
	waitFor(t, 10*time.Second, "detached exec exit", func() bool {
		ins, _ := e.m.ExecInspect(ctx, xid)
		return ins.ExitCode != nil && *ins.ExitCode == 0 && !ins.Running
	})
	if err := e.m.ExecStart(ctx, xid, ExecStartOptions{Detach: true}, nil); !errdefs.IsConflict(err) || err.Error() != "exec command "+xid+" has already run" {
		t.Errorf("start after the end: %v", err)
	}
	out, _, _ := e.execRun(id, container.ExecCreateRequest{Cmd: []string{"ls", "/tmp/done"}}, nil)
	if so, _ := demuxed(t, out); so != "/tmp/done\n" {
		t.Errorf("the detached exec did not run: %q", so)
	}

	// A paused container refuses, worded as dockerd.
	c, _ := e.m.lookup(id)
	c.update(func(r *record) { r.State.Paused = true })
	if _, err := e.m.ExecCreate(ctx, "/"+c.view().Name, container.ExecCreateRequest{Cmd: []string{"ls"}}); !errdefs.IsConflict(err) ||
		err.Error() != "Container /"+c.view().Name+" is paused, unpause the container before exec" {
		t.Errorf("paused: %v", err)
	}
	c.update(func(r *record) { r.State.Paused = false })

	// An exec still running when its container stops ends with it.
	xid, _ = e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sleep", "1000"}})
	if err := e.m.ExecStart(ctx, xid, ExecStartOptions{Detach: true}, nil); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.m.Inspect(ctx, id, false); len(ins.ExecIDs) != 1 || ins.ExecIDs[0] != xid {
		t.Errorf("ExecIDs: %v", ins.ExecIDs)
	}
	zero := 0
	if err := e.m.Stop(ctx, id, &zero); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "exec ended with its container", func() bool {
		ins, _ := e.m.ExecInspect(ctx, xid)
		return ins.ExitCode != nil && !ins.Running
	})
	if _, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"ls"}}); !errdefs.IsConflict(err) {
		t.Errorf("exec after stop: %v", err)
	}
	// Removing the container forgets its execs.
	if err := e.m.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ExecInspect(ctx, xid); !errdefs.IsNotFound(err) {
		t.Errorf("exec of a removed container: %v", err)
	}
}

func TestExecClientGoneExecRunsOn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sleep", "1000"})
	xid, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo first; sleep 0.5; echo second; exit 4"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	// The client's writes fail after the first frame: it went away.
	w := &failingWriter{after: 1}
	if err := e.m.ExecStart(ctx, xid, ExecStartOptions{}, func(bool) (ExecStreams, error) {
		return ExecStreams{Output: w}, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "exec exit", func() bool {
		ins, _ := e.m.ExecInspect(ctx, xid)
		return ins.ExitCode != nil
	})
	if ins, _ := e.m.ExecInspect(ctx, xid); *ins.ExitCode != 4 {
		t.Errorf("exit code without a client: %d", *ins.ExitCode)
	}
}

type failingWriter struct {
	mu    sync.Mutex
	after int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.after <= 0 {
		return 0, os.ErrClosed
	}
	w.after--
	return len(p), nil
}
