package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be the shim: `<test binary> shim …`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// fakeRuntime is a runc stand-in: `run --detach` starts <bundle>/cmd.sh
// in the background with the runtime's stdio and writes its pid, as runc
// leaves a container's init behind; a <bundle>/fail file makes it fail
// the way runc does (a JSON error in its log); `delete` succeeds.
const fakeRuntime = `#!/bin/sh
log= bundle= pidfile= op=
while [ $# -gt 0 ]; do
  case "$1" in
  --log) log=$2; shift ;;
  --bundle) bundle=$2; shift ;;
  --pid-file) pidfile=$2; shift ;;
  --root|--log-format) shift ;;
  run|delete) op=$1 ;;
  esac
  shift
done
[ "$op" = delete ] && exit 0
if [ -e "$bundle/fail" ]; then
  echo '{"level":"error","msg":"exec: \"nope\": executable file not found in $PATH"}' >> "$log"
  echo "runtime complaint" >&2
  exit 1
fi
# The container's init starts once this script has exited, as runc's
# does: dash reaps a background child that ends before it does, and the
# shim would never see that exit. The init waits for the end of a FIFO
# this script holds open. An asynchronous command's stdin would be
# /dev/null without the explicit redirection.
fifo="$bundle/start.fifo"
rm -f "$fifo"
mkfifo "$fifo"
exec 3<&0
sh -c 'cat "$1" >/dev/null; exec sh "$2"' sh "$fifo" "$bundle/cmd.sh" <&3 3<&- &
echo $! > "$pidfile"
exec 4>"$fifo"
`

type env struct {
	t       testing.TB
	dir     string
	runtime string
	l       *Launcher
}

func newTestEnv(t testing.TB, spare bool) *env {
	t.Helper()
	dir := t.TempDir()
	rt := filepath.Join(dir, "fake-runc")
	if err := os.WriteFile(rt, []byte(fakeRuntime), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, runtime: rt, l: NewLauncher([]string{os.Args[0], "shim"}, dir, spare)}
	t.Cleanup(e.l.Close)
	return e
}

// bundle makes a bundle whose container runs script.
func (e *env) bundle(name, script string, edit func(*Config)) string {
	e.t.Helper()
	b := filepath.Join(e.dir, name)
	if err := os.MkdirAll(b, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "cmd.sh"), []byte(script), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cfg := Config{ID: name, Runtime: e.runtime, RuntimeRoot: filepath.Join(e.dir, "state"), LogPath: filepath.Join(b, "json.log")}
	if edit != nil {
		edit(&cfg)
	}
	if err := WriteConfig(b, cfg); err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) launch(bundle string) *Process {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := e.l.Launch(ctx, bundle)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		p.proc.Kill()
		<-p.exited
	})
	return p
}

// demux reads stdcopy frames until EOF.
func demux(t *testing.T, r io.Reader) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return o.String(), e.String()
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		w := &o
		if hdr[0] == 2 {
			w = &e
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			t.Fatalf("frame: %v", err)
		}
	}
}

func waitExited(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("shim did not exit after its container")
	}
}

func TestRunAttachWaitAndLog(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.bundle("c1", "echo hello; echo oops >&2; printf partial; exit 3\n", nil)
	p := e.launch(b)
	ctx := context.Background()
	wait, err := p.Open(ctx, Request{Op: OpWait})
	if err != nil {
		t.Fatal(err)
	}
	defer wait.Close()
	att, err := p.Open(ctx, Request{Op: OpAttach, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Call(ctx, Request{Op: OpStart})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Pid <= 0 || resp.ShimPid != p.Pid || resp.Status != StatusRunning || resp.StartedAt.IsZero() {
		t.Fatalf("start answer %+v (shim %d)", resp, p.Pid)
	}
	stdout, stderr := demux(t, att)
	att.Close()
	if stdout != "hello\npartial" || stderr != "oops\n" {
		t.Fatalf("attach stdout %q stderr %q", stdout, stderr)
	}
	ex, err := wait.WaitExit()
	if err != nil {
		t.Fatal(err)
	}
	if ex.ExitCode != 3 || ex.StartError != "" || ex.ExitedAt.IsZero() {
		t.Fatalf("exit %+v", ex)
	}
	if fe, err := ReadExitFile(b); err != nil || fe.ExitCode != 3 {
		t.Fatalf("exit file %+v %v", fe, err)
	}
	// The json-file log has one message per line, the last one partial.
	f, err := os.Open(filepath.Join(b, "json.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ Log, Stream, Time string }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Time); err != nil {
			t.Fatalf("log time %q", m.Time)
		}
		got = append(got, m.Stream+":"+m.Log)
	}
	want := map[string]bool{"stdout:hello\n": true, "stderr:oops\n": true, "stdout:partial": true}
	if len(got) != 3 || !want[got[0]] || !want[got[1]] || !want[got[2]] {
		t.Fatalf("log %q", got)
	}
	waitExited(t, p)
	// A second start is refused; the shim is gone by now anyway.
	if _, err := p.Call(ctx, Request{Op: OpStart}); !errors.Is(err, ErrGone) {
		t.Fatalf("call after exit: %v", err)
	}
}

func TestKillStateAndStdin(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.bundle("c2", "read line; echo \"got $line\"; exec sleep 100\n", func(c *Config) { c.Stdin, c.StdinOnce = true, true })
	p := e.launch(b)
	ctx := context.Background()
	if st, err := p.Call(ctx, Request{Op: OpState}); err != nil || st.Status != StatusCreated {
		t.Fatalf("state before start: %+v %v", st, err)
	}
	if _, err := p.Call(ctx, Request{Op: OpKill, Signal: int(syscall.SIGTERM)}); err == nil {
		t.Fatal("kill before start succeeded")
	}
	wait, err := p.Open(ctx, Request{Op: OpWait})
	if err != nil {
		t.Fatal(err)
	}
	defer wait.Close()
	att, err := p.Open(ctx, Request{Op: OpAttach, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	resp, err := p.Call(ctx, Request{Op: OpStart})
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.Open(ctx, Request{Op: OpStdin})
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("abc\n"))
	in.CloseWrite()
	var hdr [8]byte
	if _, err := io.ReadFull(att, hdr[:]); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
	io.ReadFull(att, line)
	if string(line) != "got abc\n" {
		t.Fatalf("stdin echoed %q", line)
	}
	st, err := p.Call(ctx, Request{Op: OpState})
	if err != nil || st.Status != StatusRunning || st.Pid != resp.Pid || st.ShimPid != p.Pid {
		t.Fatalf("state while running: %+v %v", st, err)
	}
	if _, err := p.Call(ctx, Request{Op: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := p.Call(ctx, Request{Op: OpKill, Signal: int(syscall.SIGTERM)}); err != nil {
		t.Fatal(err)
	}
	ex, err := wait.WaitExit()
	if err != nil || ex.ExitCode != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit after SIGTERM: %+v %v", ex, err)
	}
	waitExited(t, p)
	// The init was the shim's to reap: nothing is left of it.
	if err := syscall.Kill(resp.Pid, 0); err == nil {
		t.Fatalf("init %d still there", resp.Pid)
	}
}

func TestRuntimeFailureIsTheStartError(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.bundle("c3", "true\n", nil)
	os.WriteFile(filepath.Join(b, "fail"), nil, 0o644)
	p := e.launch(b)
	ctx := context.Background()
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
	t0 := time.Now()
	_, err = p.Call(ctx, Request{Op: OpStart})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "executable file not found") {
		t.Fatalf("start error %v", err)
	}
	ex, err := wait.WaitExit()
	if err != nil || ex.StartError != re.Msg || ex.ExitCode != 128 {
		t.Fatalf("exit %+v %v", ex, err)
	}
	// The attach stream ends with the failed start, and the shim goes
	// (without waiting out its grace period for a client that stays).
	if out, _ := io.ReadAll(att); len(out) != 0 {
		t.Fatalf("attach got %q", out)
	}
	waitExited(t, p)
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("shim of a failed start took %v to go", d)
	}
}

func TestBadConfigFailsLaunch(t *testing.T) {
	e := newTestEnv(t, true)
	b := filepath.Join(e.dir, "empty")
	os.MkdirAll(b, 0o700)
	os.WriteFile(filepath.Join(b, ConfigFile), []byte(`{"id":"x"}`), 0o600)
	if _, err := e.l.Launch(context.Background(), b); err == nil || !strings.Contains(err.Error(), "lacks id, runtime or runtime root") {
		t.Fatalf("launch with a bad config: %v", err)
	}
	if _, err := e.l.Launch(context.Background(), filepath.Join(e.dir, "missing")); err == nil {
		t.Fatal("launch without a bundle succeeded")
	}
	if code := Main(nil); code != 2 {
		t.Fatalf("usage exit %d", code)
	}
}

// cmdline reads a process's arguments.
func cmdline(pid int) []string {
	b, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "cmdline"))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSpareIsUsedRefilledAndEnded(t *testing.T) {
	e := newTestEnv(t, true)
	e.l.Refill()
	spare := waitSpare(t, e.l)
	if args := cmdline(spare.proc.Pid); len(args) < 4 || args[2] != IdleFlag || args[3] != e.dir {
		t.Fatalf("spare's command line %q", args)
	}
	b := e.bundle("c4", "echo from-spare\n", nil)
	p := e.launch(b)
	if p.Pid != spare.proc.Pid {
		t.Fatalf("launched %d, spare was %d", p.Pid, spare.proc.Pid)
	}
	// It works in its bundle, which is how berthd knows it later.
	if cwd, _ := os.Readlink(filepath.Join("/proc", itoa(p.Pid), "cwd")); cwd != b {
		t.Fatalf("shim works in %q", cwd)
	}
	ctx := context.Background()
	wait, _ := p.Open(ctx, Request{Op: OpWait})
	if _, err := p.Call(ctx, Request{Op: OpStart}); err != nil {
		t.Fatal(err)
	}
	if ex, err := wait.WaitExit(); err != nil || ex.ExitCode != 0 {
		t.Fatalf("exit %+v %v", ex, err)
	}
	wait.Close()
	if b, _ := os.ReadFile(filepath.Join(b, "json.log")); !bytes.Contains(b, []byte("from-spare")) {
		t.Fatalf("log %q", b)
	}
	waitExited(t, p)

	// Another spare comes on Refill; Close ends it.
	e.l.Refill()
	next := waitSpare(t, e.l)
	if next == spare {
		t.Fatal("spare not replaced")
	}
	e.l.Close()
	select {
	case <-next.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("spare outlived Close")
	}
	// A closed launcher still launches, without a spare.
	e.l.Refill()
	if p := e.launch(e.bundle("c5", "true\n", nil)); p.Pid == next.proc.Pid {
		t.Fatal("closed launcher used a spare")
	}
}

func waitSpare(t testing.TB, l *Launcher) *idleShim {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		sp := l.idle
		l.mu.Unlock()
		if sp != nil {
			return sp
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no spare")
	return nil
}

// A spare whose launcher goes away (its stdin reaches EOF) exits, and one
// that died while idle is replaced by an ordinary launch.
func TestSpareEndsWithItsLauncher(t *testing.T) {
	e := newTestEnv(t, true)
	e.l.Refill()
	sp := waitSpare(t, e.l)
	sp.stdin.Close()
	select {
	case <-sp.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("idle shim did not exit at EOF")
	}
	p := e.launch(e.bundle("c6", "true\n", nil))
	if p.Pid == sp.proc.Pid {
		t.Fatal("dead spare used")
	}
}

// The shim is started for every container: it must stay a small, static
// program. Outside the standard library only x/sys; and no net (or
// anything else that links cgo when berthd's build enables it).
func TestShimImportsStayLean(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, std, _ := strings.Cut(line, " ")
		n++
		switch {
		case pkg == "net" || pkg == "runtime/cgo" || pkg == "os/user":
			t.Errorf("package shim depends on %s", pkg)
		case std == "true", pkg == "github.com/berth-dev/berth/run/shim", pkg == "golang.org/x/sys/unix":
		default:
			t.Errorf("package shim depends on %s", pkg)
		}
	}
	if n < 10 {
		t.Fatalf("go list found only %d packages", n)
	}
}
