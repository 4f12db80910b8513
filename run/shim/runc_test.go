package shim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests run real containers: runc (built by `make build`, found
// through BERTH_BIN) on a read-only busybox rootfs.

func runcBin(t testing.TB) string {
	t.Helper()
	var cands []string
	if b := os.Getenv("BERTH_BIN"); b != "" {
		cands = append(cands, filepath.Join(b, "runc"))
	}
	cands = append(cands, "../../bin/runc")
	for _, c := range cands {
		if p, err := filepath.Abs(c); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("runc not found in %v: run `make build` (it builds bin/runc from go.mod)", cands)
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type runcEnv struct {
	*env
	rootfs string
}

// newRuncEnv is a test environment whose runtime is runc, with a busybox
// rootfs made from the host's static /bin/busybox.
func newRuncEnv(t *testing.T) *runcEnv {
	t.Helper()
	e := &runcEnv{env: newTestEnv(t, false)}
	e.runtime = runcBin(t)
	e.rootfs = filepath.Join(e.dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox (Debian busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			os.Symlink("busybox", filepath.Join(e.rootfs, "bin", a))
		}
	}
	return e
}

// container makes a bundle under dir whose container runs args, launches
// its shim and makes sure the container is gone at the end.
func (e *runcEnv) container(dir, name string, args []string, edit func(*Config)) (*Process, string) {
	t := e.t
	t.Helper()
	b := filepath.Join(dir, name)
	if err := os.MkdirAll(b, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(e.runtime, "spec", "--bundle", b).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	spec := e.spec(b)
	cfg := Config{ID: name, Runtime: e.runtime, RuntimeRoot: filepath.Join(e.dir, "state"), LogPath: filepath.Join(b, "json.log")}
	if edit != nil {
		edit(&cfg)
	}
	spec.Process.Args = args
	spec.Process.Terminal = cfg.Terminal
	spec.Root.Path = e.rootfs
	spec.Linux.CgroupsPath = "/berth-shimtest-" + randHex(6)
	writeJSON(t, filepath.Join(b, "config.json"), spec)
	if err := WriteConfig(b, cfg); err != nil {
		t.Fatal(err)
	}
	p := e.launch(b)
	// Registered after launch's, so it runs first: the shim ends with
	// its container.
	t.Cleanup(func() {
		if st, err := p.Call(context.Background(), Request{Op: OpState}); err == nil && st.Status == StatusCreated {
			p.Kill()
			return
		}
		p.Call(context.Background(), Request{Op: OpKill, Signal: int(syscall.SIGKILL)})
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
		}
		exec.Command(e.runtime, "--root", cfg.RuntimeRoot, "delete", "--force", name).Run()
	})
	return p, b
}

func (e *runcEnv) spec(bundle string) *specs.Spec {
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		e.t.Fatal(err)
	}
	return &spec
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// execRequest writes the process file of an exec running args and returns
// its request.
func (e *runcEnv) execRequest(bundle string, args []string, terminal, stdin bool) Request {
	p := *e.spec(bundle).Process
	p.Args = args
	p.Terminal = terminal
	id := randHex(32)
	file := filepath.Join(bundle, "exec-"+id+".json")
	writeJSON(e.t, file, p)
	return Request{Op: OpExec, ExecID: id, ExecProcess: file, Terminal: terminal, Stdin: stdin}
}

// frames collects a stream of stdcopy frames in the background.
type frames struct {
	mu      sync.Mutex
	streams [3]bytes.Buffer
	other   []byte // stream bytes other than 1 and 2
	exit    *Exit
	done    chan struct{}
}

func collect(r io.Reader) *frames {
	f := &frames{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		var hdr [8]byte
		for {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			b := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			f.mu.Lock()
			switch hdr[0] {
			case 1, 2:
				f.streams[hdr[0]].Write(b)
			case ExitFrame:
				var e Exit
				if json.Unmarshal(b, &e) == nil {
					f.exit = &e
				}
				f.other = append(f.other, hdr[0])
			default:
				f.other = append(f.other, hdr[0])
			}
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *frames) get(stream int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[stream].String()
}

// waitFor waits until stream has shown sub.
func (f *frames) waitFor(t *testing.T, stream int, sub string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(f.get(stream), sub) {
		select {
		case <-f.done:
			if !strings.Contains(f.get(stream), sub) {
				t.Fatalf("stream %d ended without %q: %q", stream, sub, f.get(stream))
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %d has no %q: %q", stream, sub, f.get(stream))
		}
	}
}

// end waits for the stream's end and returns its exit frame (nil for an
// attach stream).
func (f *frames) end(t *testing.T) *Exit {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("stream did not end: stdout %q stderr %q", f.get(1), f.get(2))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exit != nil && (len(f.other) != 1 || f.other[0] != ExitFrame) {
		t.Fatalf("frames after the exit frame: %v", f.other)
	}
	return f.exit
}

// startRunning starts a container and waits for the start's answer.
func startRunning(t *testing.T, p *Process) Response {
	t.Helper()
	resp, err := p.Call(context.Background(), Request{Op: OpStart})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return resp
}

// execFilesGone waits until the shim has removed exec id's files.
func execFilesGone(t *testing.T, bundle, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(bundle, "exec-"+id+"*"))
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec files left: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTerminalInit(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "tty1", []string{"sh"}, func(c *Config) { c.Terminal, c.Stdin, c.StdinOnce = true, true, true })
	ctx := context.Background()
	if _, err := p.Call(ctx, Request{Op: OpResize, Width: 100, Height: 30}); err == nil || err.Error() != notRunning {
		t.Fatalf("resize before start: %v", err)
	}
	wait, err := p.Open(ctx, Request{Op: OpWait})
	if err != nil {
		t.Fatal(err)
	}
	defer wait.Close()
	att, err := p.Open(ctx, Request{Op: OpAttach, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	out := collect(att)
	startRunning(t, p)
	// As the docker CLI does, right after the start.
	if _, err := p.Call(ctx, Request{Op: OpResize, Width: 100, Height: 30}); err != nil {
		t.Fatalf("resize after start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b, ConsoleSocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("console socket left: %v", err)
	}
	in, err := p.Open(ctx, Request{Op: OpStdin})
	if err != nil {
		t.Fatal(err)
	}
	// The shell's prompt: it reads the terminal now.
	out.waitFor(t, 1, "# ")
	in.Write([]byte("tty; stty size\n"))
	out.waitFor(t, 1, "30 100\r\n")
	// A client's EOF leaves a terminal open, StdinOnce or not.
	in.CloseWrite()
	in.Close()
	time.Sleep(100 * time.Millisecond)
	in, err = p.Open(ctx, Request{Op: OpStdin})
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("exit 7\n"))
	defer in.Close()
	if ex := out.end(t); ex != nil {
		t.Fatalf("attach stream had an exit frame")
	}
	// Raw terminal output: one stream, the line discipline's \r\n.
	if got := out.get(1); !strings.Contains(got, "/dev/pts/0\r\n") {
		t.Fatalf("terminal output %q", got)
	}
	if got := out.get(2); got != "" {
		t.Fatalf("stderr frames from a terminal: %q", got)
	}
	ex, err := wait.WaitExit()
	if err != nil || ex.ExitCode != 7 {
		t.Fatalf("exit %+v %v", ex, err)
	}
	log, err := os.ReadFile(filepath.Join(b, "json.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte(`"log":"/dev/pts/0\r\n","stream":"stdout"`)) || bytes.Contains(log, []byte(`"stderr"`)) {
		t.Fatalf("log %s", log)
	}
	waitExited(t, p)
}

func TestExecOutputAndExitCode(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "ex1", []string{"sleep", "1000"}, nil)
	ctx := context.Background()
	startRunning(t, p)
	req := e.execRequest(b, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, false, false)
	conn, err := p.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Response.Pid <= 0 {
		t.Fatalf("exec answer %+v", conn.Response)
	}
	var stdout, stderr bytes.Buffer
	ex, err := execOutput(conn, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if ex.ExitCode != 3 || ex.ExitedAt.IsZero() || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Fatalf("exit %+v stdout %q stderr %q", ex, stdout.String(), stderr.String())
	}
	// The stream ends after the exit frame.
	if rest, _ := io.ReadAll(conn); len(rest) != 0 {
		t.Fatalf("after the exit frame: %q", rest)
	}
	execFilesGone(t, b, req.ExecID)
	if err := syscall.Kill(conn.Response.Pid, 0); err == nil {
		t.Fatalf("exec %d not reaped", conn.Response.Pid)
	}

	// The runtime's complaint is the answer.
	bad := e.execRequest(b, []string{"nope"}, false, false)
	_, err = p.Open(ctx, bad)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "executable file not found") {
		t.Fatalf("exec of a missing program: %v", err)
	}
	execFilesGone(t, b, bad.ExecID)
	// Resizing an exec that is gone, or one without a terminal.
	if _, err := p.Call(ctx, Request{Op: OpResize, ExecID: req.ExecID, Width: 80, Height: 24}); err == nil {
		t.Fatal("resize of a finished exec succeeded")
	}
	if _, err := p.Call(ctx, Request{Op: OpExec, ExecID: "../x", ExecProcess: "/dev/null"}); err == nil {
		t.Fatal("exec id with a slash accepted")
	}
	// The container's init has no terminal: nothing to size.
	if _, err := p.Call(ctx, Request{Op: OpResize, Width: 80, Height: 24}); err != nil {
		t.Fatalf("resize without a terminal: %v", err)
	}
}

func TestExecStdin(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "ex2", []string{"sleep", "1000"}, nil)
	ctx := context.Background()
	startRunning(t, p)
	conn, err := p.Open(ctx, e.execRequest(b, []string{"cat"}, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := collect(conn)
	conn.Write([]byte("hello\n"))
	out.waitFor(t, 1, "hello\n")
	conn.Write([]byte("world"))
	// The half-close is cat's EOF.
	conn.CloseWrite()
	ex := out.end(t)
	if ex == nil || ex.ExitCode != 0 || out.get(1) != "hello\nworld" || out.get(2) != "" {
		t.Fatalf("exit %+v stdout %q stderr %q", ex, out.get(1), out.get(2))
	}
	// Without Stdin the exec reads /dev/null.
	conn2, err := p.Open(ctx, e.execRequest(b, []string{"cat"}, false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	out2 := collect(conn2)
	if ex := out2.end(t); ex == nil || ex.ExitCode != 0 || out2.get(1) != "" {
		t.Fatalf("cat of /dev/null: %+v %q", ex, out2.get(1))
	}
}

// The bundle's path is too long for a socket address: the console
// socket is reached through /proc.
func TestExecTerminalResize(t *testing.T) {
	e := newRuncEnv(t)
	dir := filepath.Join(e.dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	p, b := e.container(dir, "ex3", []string{"sleep", "1000"}, nil)
	ctx := context.Background()
	startRunning(t, p)
	req := e.execRequest(b, []string{"sh", "-c", "read x; stty size; tty; echo \"got $x\"; exit 2"}, true, true)
	conn, err := p.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := collect(conn)
	if _, err := p.Call(ctx, Request{Op: OpResize, ExecID: req.ExecID, Width: 120, Height: 40}); err != nil {
		t.Fatalf("resize: %v", err)
	}
	conn.Write([]byte("go\n"))
	ex := out.end(t)
	got := out.get(1)
	if ex == nil || ex.ExitCode != 2 || !strings.Contains(got, "40 120\r\n") || !strings.Contains(got, "/dev/pts/") ||
		!strings.Contains(got, "got go\r\n") || out.get(2) != "" {
		t.Fatalf("exit %+v output %q stderr %q", ex, got, out.get(2))
	}
	execFilesGone(t, b, req.ExecID)
}

func TestExecRefusedWhenNotRunning(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "ex4", []string{"sleep", "1000"}, nil)
	_, err := p.Open(context.Background(), e.execRequest(b, []string{"true"}, false, false))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != notRunning {
		t.Fatalf("exec before start: %v", err)
	}
}

func TestConcurrentExecs(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "ex5", []string{"sleep", "1000"}, nil)
	ctx := context.Background()
	startRunning(t, p)
	a, err := p.Open(ctx, e.execRequest(b, []string{"sh", "-c", "echo ready; read x; echo A$x"}, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	outA := collect(a)
	outA.waitFor(t, 1, "ready\n")
	// Another exec comes and goes while the first waits.
	bc, err := p.Open(ctx, e.execRequest(b, []string{"sh", "-c", "echo B; exit 5"}, false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	outB := collect(bc)
	if ex := outB.end(t); ex == nil || ex.ExitCode != 5 || outB.get(1) != "B\n" {
		t.Fatalf("exec B: %+v %q", ex, outB.get(1))
	}
	a.Write([]byte("1\n"))
	if ex := outA.end(t); ex == nil || ex.ExitCode != 0 || outA.get(1) != "ready\nA1\n" {
		t.Fatalf("exec A: %+v %q", ex, outA.get(1))
	}
}

// A client that goes away leaves its exec running; its output is dropped
// without holding it up.
func TestExecOutlivesItsClient(t *testing.T) {
	e := newRuncEnv(t)
	p, b := e.container(e.dir, "ex6", []string{"sleep", "1000"}, nil)
	ctx := context.Background()
	startRunning(t, p)
	script := "sleep 0.3; i=0; while [ $i -lt 3000 ]; do echo line $i of output nobody reads; i=$((i+1)); done; touch /dev/shm/done"
	conn, err := p.Open(ctx, e.execRequest(b, []string{"sh", "-c", script}, false, false))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := p.Open(ctx, e.execRequest(b, []string{"test", "-e", "/dev/shm/done"}, false, false))
		if err != nil {
			t.Fatal(err)
		}
		ex, err := execOutput(c, nil, nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ex.ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exec of a gone client did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execOutput reads an exec's stream (what follows OpExec's answer):
// stdout and stderr get the payloads of stream 1 and 2 (either may be
// nil to drop it), and the ExitFrame that ends it is returned. A stream
// that ends without one (the shim went away) is an error wrapping
// ErrGone.
func execOutput(r io.Reader, stdout, stderr io.Writer) (Exit, error) {
	var buf []byte
	for {
		frame, err := ReadFrame(r, buf)
		if err != nil {
			return Exit{}, fmt.Errorf("exec stream: %w: %w", ErrGone, err)
		}
		buf = frame
		var w io.Writer
		switch frame[0] {
		case ExitFrame:
			var e Exit
			if err := json.Unmarshal(frame[8:], &e); err != nil {
				return Exit{}, fmt.Errorf("exec stream: bad exit: %w", err)
			}
			return e, nil
		case 1:
			w = stdout
		case 2:
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(frame[8:]); err != nil {
				return Exit{}, fmt.Errorf("exec stream: %w", err)
			}
		}
	}
}
