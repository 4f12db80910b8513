package run

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// osPipe is a pipe with a kernel buffer: what a test writes before the
// container reads waits there, as it would in a client's socket.
func osPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func ttyShell(r *CreateRequest) {
	r.Config.Tty, r.Config.OpenStdin, r.Config.StdinOnce = true, true, true
	r.Config.AttachStdin, r.Config.AttachStdout, r.Config.AttachStderr = true, true, true
}

// TestTTYRunAttachedShell is `docker run -it busybox sh` at the run
// level: attach with stdin before the start, raw output, resize, the
// exit code of the shell.
func TestTTYRunAttachedShell(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"sh"}, ttyShell)
	pr, pw := osPipe(t)
	att, err := e.m.Attach(ctx, id, AttachOptions{Stdout: true, Stderr: true, Stdin: pr})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if !att.sub.tty {
		t.Fatal("attachment of a TTY container says no TTY")
	}
	var out syncBuffer
	streamed := make(chan error, 1)
	go func() { streamed <- att.Stream(ctx, &out) }()
	wait, _ := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	// Typed before the start: delivered once it runs.
	io.WriteString(pw, "echo $((6*7))\n")
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "42", func() bool { return strings.Contains(out.String(), "\n42\r\n") })
	if err := e.m.Resize(ctx, id, 33, 111); err != nil {
		t.Fatal(err)
	}
	io.WriteString(pw, "stty size\n")
	waitFor(t, 10*time.Second, "stty size", func() bool { return strings.Contains(out.String(), "33 111\r\n") })
	io.WriteString(pw, "ls /nope\n")
	waitFor(t, 10*time.Second, "stderr on the terminal", func() bool { return strings.Contains(out.String(), "No such file or directory") })
	io.WriteString(pw, "exit 5\n")
	select {
	case res := <-wait:
		if res.StatusCode != 5 {
			t.Errorf("exit %d", res.StatusCode)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shell did not exit")
	}
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.ContainsRune(s, 0) || strings.Contains(s, "\x01\x00\x00\x00") {
		t.Errorf("stdcopy headers in a TTY stream: %q", s)
	}
	// The terminal's output is logged as stdout.
	rc, err := e.m.Logs(ctx, id, LogsOptions{Stdout: true, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(logs), "42\r\n") {
		t.Errorf("logs: %q", logs)
	}
	if err := e.m.Resize(ctx, id, 10, 10); !errdefs.IsConflict(err) || err.Error() != "Container "+id+" is not running" {
		t.Errorf("resize after exit: %v", err)
	}
}

// TestTTYDetachKeys: the detach keys end the attach, the container and
// its terminal go on, and another attach finds the shell.
func TestTTYDetachKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"sh"}, ttyShell, func(r *CreateRequest) { r.Config.StdinOnce = false })
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	attach := func(keys string) (*Attachment, *os.File, *syncBuffer, chan error) {
		pr, pw := osPipe(t)
		att, err := e.m.Attach(ctx, id, AttachOptions{Stdout: true, Stdin: pr, DetachKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- att.Stream(ctx, out) }()
		return att, pw, out, done
	}
	att, pw, out, done := attach("")
	io.WriteString(pw, "echo one $((1+1))\n")
	waitFor(t, 10*time.Second, "first answer", func() bool { return strings.Contains(out.String(), "one 2") })
	pw.Write([]byte{16, 17})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ctrl-p ctrl-q did not end the attach")
	}
	att.Close()
	pw.Close()
	if !e.inspect(id).State.Running {
		t.Fatal("the container stopped on detach")
	}
	if !strings.Contains(strings.Join(e.actions(id), ","), "detach") {
		t.Errorf("no detach event: %v", e.actions(id))
	}
	// Custom keys; the shell is still there.
	att, pw, out, done = attach("ctrl-x,x")
	defer att.Close()
	io.WriteString(pw, "echo two $((2+2))\n")
	waitFor(t, 10*time.Second, "second answer", func() bool { return strings.Contains(out.String(), "two 4") })
	pw.Write([]byte{24, 'x'})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("custom detach keys did not end the attach")
	}
	if _, err := e.m.Attach(ctx, id, AttachOptions{DetachKeys: "ctrl-"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad detach keys: %v", err)
	}
}

// TestTTYExec is `docker exec -it` at the run level.
func TestTTYExec(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.startDetached([]string{"sleep", "1000"})
	xid, err := e.m.ExecCreate(ctx, id, container.ExecCreateRequest{
		Cmd: []string{"sh"}, Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, ConsoleSize: &[2]uint{20, 70},
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := osPipe(t)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.m.ExecStart(ctx, xid, ExecStartOptions{}, func(tty bool) (ExecStreams, error) {
			if !tty {
				t.Error("exec attach says no tty")
			}
			return ExecStreams{Stdin: pr, Output: &out}, nil
		})
	}()
	io.WriteString(pw, "stty size; echo $TERM $((6*7))\n")
	waitFor(t, 10*time.Second, "initial size and answer", func() bool {
		return strings.Contains(out.String(), "20 70\r\n") && strings.Contains(out.String(), "xterm 42\r\n")
	})
	if err := e.m.ExecResize(ctx, xid, 44, 99); err != nil {
		t.Fatal(err)
	}
	io.WriteString(pw, "stty size\n")
	waitFor(t, 10*time.Second, "resized", func() bool { return strings.Contains(out.String(), "44 99\r\n") })
	io.WriteString(pw, "exit 6\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec session did not end")
	}
	// Final before ExecStart returned.
	if ins, _ := e.m.ExecInspect(ctx, xid); ins.ExitCode == nil || *ins.ExitCode != 6 || ins.Running || !ins.ProcessConfig.Tty {
		t.Errorf("inspect: %+v", ins)
	}
	// A resize after the end is no error (the CLI may race it).
	if err := e.m.ExecResize(ctx, xid, 1, 1); err != nil {
		t.Errorf("resize after exit: %v", err)
	}

	// Detaching from an exec leaves it running.
	xid, _ = e.m.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sh"}, Tty: true, AttachStdin: true, AttachStdout: true})
	pr2, pw2 := osPipe(t)
	go func() {
		done <- e.m.ExecStart(ctx, xid, ExecStartOptions{}, func(bool) (ExecStreams, error) {
			return ExecStreams{Stdin: pr2, Output: io.Discard}, nil
		})
	}()
	pw2.Write([]byte{16, 17})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("detach keys did not end the exec session")
	}
	if ins, _ := e.m.ExecInspect(ctx, xid); !ins.Running {
		t.Errorf("detached exec stopped: %+v", ins)
	}
}
