package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IdleFlag as the first argument of Main starts an idle shim: it reads
// its bundle directory as one line from stdin, then goes on as a shim
// started for that bundle. EOF on stdin (the launcher, berthd, is gone or
// no longer needs it) ends it.
const IdleFlag = "--idle"

// Main is the shim's main function, called with the arguments after the
// program name (or after "shim" in berthd): <bundle-dir>, or IdleFlag and
// anything naming the launcher (berthd passes its exec root, so the idle
// process can be told apart). It listens on <bundle>/shim.sock, runs the
// container through the OCI runtime when berthd asks, owns the
// container's stdio (writing the json-file log and serving attach
// streams), reaps the container's init as a child subreaper, records the
// exit in <bundle>/exit, and outlives berthd. It returns the process exit
// code.
//
// It tells its launcher it is ready by writing "ok\n" (or an error line)
// on its stdout, which the launcher reads from a pipe, and then detaches
// stdin and stdout. An idle shim first writes "idle\n".
func Main(args []string) int {
	idle := len(args) >= 1 && args[0] == IdleFlag
	if !idle && (len(args) != 1 || args[0] == "" || args[0][0] == '-') {
		fmt.Fprintln(os.Stderr, "usage: shim <bundle-dir> | shim "+IdleFlag+" [launcher]")
		return 2
	}
	// fd 1 is the readiness pipe; written with raw syscalls so no
	// *os.File (and its finalizer) owns it.
	fail := func(err error) int {
		unix.Write(1, []byte(err.Error()+"\n"))
		return 1
	}
	// What does not depend on the bundle comes first, so a spare has it
	// done before a start waits for it. Terminal signals never reach a
	// session leader without a terminal, but a stray one must not kill
	// the keeper of a running container. Caught, not ignored: an
	// ignored signal stays ignored across exec, and the runtime would
	// hand that on to the container (busybox sh would then not act on
	// ^C); a caught one is reset to the default in the child.
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become subreaper: %w", err))
	}
	reaper := newReaper()
	bundle := args[0]
	if idle {
		warmUp()
		// "idle" tells the launcher this process is up and waiting: only
		// then is it a spare worth handing a start to.
		if _, err := unix.Write(1, []byte("idle\n")); err != nil {
			return 1
		}
		b, ok := readBundleLine()
		if !ok {
			return 0
		}
		bundle = b
	}
	if !filepath.IsAbs(bundle) {
		return fail(fmt.Errorf("bundle %q is not an absolute path", bundle))
	}
	if err := redirectStderr(filepath.Join(bundle, LogFile)); err != nil {
		return fail(err)
	}
	// The working directory names the bundle: berthd checks it before it
	// waits on a pid it recorded, which may have been reused since.
	if err := unix.Chdir(bundle); err != nil {
		return fail(fmt.Errorf("enter bundle: %w", err))
	}
	cfg, err := readConfig(bundle)
	if err != nil {
		return fail(err)
	}
	s := newShim(cfg, bundle, reaper)
	ln, err := s.listen()
	if err != nil {
		return fail(err)
	}
	if _, err := unix.Write(1, []byte("ok\n")); err != nil {
		ln.Close()
		return 1
	}
	// Replacing fds 0 and 1 closes the pipes: the launcher reads "ok"
	// and EOF.
	if devnull, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		unix.Dup2(devnull, 0)
		unix.Dup2(devnull, 1)
		if devnull > 2 {
			unix.Close(devnull)
		}
	} else {
		unix.Close(1)
	}
	go s.serve(ln)
	<-s.exited
	// Let the clients waiting for the exit read it before the process
	// (and with it the socket) goes away; a client that does not read
	// within the grace period will find the exit file.
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	// The runtime's state goes before the shim does: whoever waits for
	// the shim to be gone may run the container again.
	<-s.cleaned
	ln.Close()
	return 0
}

// warmUp has an idle shim answer one request of its own, over an
// abstract socket (nothing on disk), before it reports idle: the code a
// start then waits on (listener, connection, request, answer) has its
// pages mapped already, which on a virtual machine saves milliseconds.
func warmUp() {
	ln, err := listenUnix(fmt.Sprintf("@berth-shim-warmup-%d", os.Getpid()))
	if err != nil {
		return
	}
	defer ln.Close()
	s := newShim(Config{}, "", nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		s.handle(conn)
	}()
	conn, err := dialUnix(context.Background(), ln.addr)
	if err != nil {
		ln.Close()
		<-served
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	b, _ := json.Marshal(Request{Op: OpState})
	conn.Write(append(b, '\n'))
	var resp Response
	if line, err := bufio.NewReader(conn).ReadBytes('\n'); err == nil {
		json.Unmarshal(line, &resp)
	}
	ln.Close()
	<-served
	var cfg Config
	json.Unmarshal([]byte(`{"id":"warmup","runtime":"/","runtimeRoot":"/"}`), &cfg)
}

// readBundleLine reads an idle shim's assignment from fd 0.
func readBundleLine() (string, bool) {
	var line []byte
	buf := make([]byte, 512)
	for {
		n, err := unix.Read(0, buf)
		if err == unix.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return "", false
		}
		line = append(line, buf[:n]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			b := strings.TrimSpace(string(line[:i]))
			return b, b != ""
		}
		if len(line) > 64<<10 {
			return "", false
		}
	}
}

func redirectStderr(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	defer f.Close()
	return unix.Dup2(int(f.Fd()), 2)
}

type shim struct {
	cfg    Config
	bundle string
	reaper *reaper
	log    *jsonLogWriter
	conns  sync.WaitGroup // connections being served

	mu          sync.Mutex
	started     bool
	status      string
	pid         int
	startedAt   time.Time
	exit        *Exit
	exited      chan struct{} // closed once exit is set
	cleaned     chan struct{} // closed once the runtime's state is gone
	cgroupPaths map[string]string
	// stdin is where the container's input goes: its stdin pipe's write
	// end, or its terminal's master.
	stdin   *os.File
	console *os.File             // master of the init's terminal
	execs   map[string]*execProc // by exec id, while they run

	subsMu     sync.Mutex
	subs       map[*subscriber]struct{}
	outputDone bool
}

func newShim(cfg Config, bundle string, r *reaper) *shim {
	return &shim{
		cfg:     cfg,
		bundle:  bundle,
		reaper:  r,
		status:  StatusCreated,
		exited:  make(chan struct{}),
		cleaned: make(chan struct{}),
		execs:   map[string]*execProc{},
		subs:    map[*subscriber]struct{}{},
	}
}

// subscriber is an attach connection: it gets stdcopy frames of the
// streams it asked for until the container's output ends.
type subscriber struct {
	conn           *sockConn
	stdout, stderr bool
	done           chan struct{}
	closeOnce      sync.Once
}

func (sub *subscriber) close() { sub.closeOnce.Do(func() { close(sub.done) }) }

// listen listens on the bundle's socket. Closing it leaves the file
// (berthd removes the bundle).
func (s *shim) listen() (*listener, error) {
	path := filepath.Join(s.bundle, SocketFile)
	os.Remove(path)
	addr, release, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	defer release()
	return listenUnix(addr)
}

func (s *shim) serve(ln *listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer conn.Close()
			s.handle(conn)
		}()
	}
}

func (s *shim) respond(conn *sockConn, resp Response) error {
	b, _ := json.Marshal(resp)
	_, err := conn.Write(append(b, '\n'))
	return err
}

func (s *shim) handle(conn *sockConn) {
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		s.respond(conn, Response{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case OpStart:
		pid, err := s.start()
		if err != nil {
			s.respond(conn, Response{Error: err.Error()})
			return
		}
		s.mu.Lock()
		startedAt := s.startedAt
		s.mu.Unlock()
		s.respond(conn, Response{Pid: pid, Status: StatusRunning, ShimPid: os.Getpid(), StartedAt: startedAt})
	case OpWait:
		// Acknowledged at once, answered again at the exit: a client
		// knows its wait is registered before it asks for a start.
		if err := s.respond(conn, Response{}); err != nil {
			return
		}
		<-s.exited
		s.mu.Lock()
		e := *s.exit
		s.mu.Unlock()
		s.respond(conn, Response{Exit: &e, Status: StatusExited})
	case OpState:
		s.mu.Lock()
		resp := Response{Status: s.status, Pid: s.pid, Exit: s.exit, ShimPid: os.Getpid(), StartedAt: s.startedAt}
		s.mu.Unlock()
		s.respond(conn, resp)
	case OpKill:
		s.mu.Lock()
		status, pid := s.status, s.pid
		s.mu.Unlock()
		if status != StatusRunning {
			s.respond(conn, Response{Error: notRunning})
			return
		}
		// The init is the shim's child until the shim reaps it, so its pid
		// cannot have been reused.
		if err := unix.Kill(pid, unix.Signal(req.Signal)); err != nil && !errors.Is(err, unix.ESRCH) {
			s.respond(conn, Response{Error: fmt.Sprintf("kill: %v", err)})
			return
		}
		s.respond(conn, Response{})
	case OpAttach:
		sub := &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr, done: make(chan struct{})}
		s.subsMu.Lock()
		if err := s.respond(conn, Response{}); err != nil {
			s.subsMu.Unlock()
			return
		}
		if s.outputDone {
			s.subsMu.Unlock()
			return
		}
		s.subs[sub] = struct{}{}
		s.subsMu.Unlock()
		// A client that goes away ends its subscription too.
		go func() {
			io.Copy(io.Discard, r)
			sub.close()
		}()
		<-sub.done
		s.subsMu.Lock()
		delete(s.subs, sub)
		s.subsMu.Unlock()
	case OpStdin:
		s.mu.Lock()
		w := s.stdin
		s.mu.Unlock()
		if w == nil {
			s.respond(conn, Response{Error: "container has no stdin"})
			return
		}
		s.respond(conn, Response{})
		// The container's end ends the copy, even if the client keeps
		// its stdin open.
		copied := make(chan struct{})
		go func() {
			select {
			case <-s.exited:
				conn.SetReadDeadline(time.Now())
			case <-copied:
			}
		}()
		io.Copy(w, r)
		close(copied)
		// Docker closes a container's stdin when the client of a
		// StdinOnce container is done with it, but not a terminal's: the
		// master is the container's output too, and it writes nothing
		// (no ^D) in its place.
		if s.cfg.StdinOnce && !s.cfg.Terminal {
			s.mu.Lock()
			if s.stdin != nil {
				s.stdin.Close()
				s.stdin = nil
			}
			s.mu.Unlock()
		}
	case OpResize:
		if err := s.resize(req); err != nil {
			s.respond(conn, Response{Error: err.Error()})
			return
		}
		s.respond(conn, Response{})
	case OpExec:
		s.exec(conn, r, req)
	default:
		s.respond(conn, Response{Error: "unknown op " + strconv.Quote(req.Op)})
	}
}

// runtimeEnv is the environment the OCI runtime runs with: nothing of
// berthd's leaks into it.
var runtimeEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// start runs the container with `<runtime> run --detach`. The container's
// stdout and stderr are pipes the shim reads, its stdin a pipe when the
// container has one (/dev/null otherwise); or, with a terminal, all three
// are a pseudo-terminal whose master the runtime sends the shim.
func (s *shim) start() (int, error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return 0, errors.New("container already started")
	}
	s.started = true
	s.mu.Unlock()

	pid, err := s.runContainer()
	if err != nil {
		s.endOutput()
		s.finish(Exit{ExitCode: 128, ExitedAt: time.Now().UTC(), StartError: err.Error()})
		// A failed run leaves nothing the runtime has to forget.
		close(s.cleaned)
		return 0, err
	}
	return pid, nil
}

func (s *shim) runContainer() (int, error) {
	pio, err := newProcIO(s.cfg.Terminal, s.cfg.Stdin, filepath.Join(s.bundle, ConsoleSocketFile))
	if err != nil {
		return 0, err
	}
	if s.cfg.LogPath != "" {
		lw, err := openJSONLog(s.cfg.LogPath, s.cfg.LogMaxSize, s.cfg.LogMaxFile)
		if err != nil {
			pio.close()
			return 0, err
		}
		s.log = lw
	}
	fail := func(err error) (int, error) {
		pio.close()
		s.closeLog()
		return 0, err
	}
	runtimeLog := filepath.Join(s.bundle, RuntimeLogFile)
	os.Remove(runtimeLog)
	argv := []string{s.cfg.Runtime, "--root", s.cfg.RuntimeRoot, "--log", runtimeLog, "--log-format", "json",
		"run", "--detach", "--bundle", s.bundle, "--pid-file", filepath.Join(s.bundle, InitPidFile)}
	argv = append(append(argv, pio.runtimeArgs()...), s.cfg.ID)
	mark := s.reaper.mark()
	_, ch, err := s.reaper.start(argv, pio.runtimeFiles, runtimeEnv)
	pio.started()
	if err != nil {
		return fail(fmt.Errorf("run %s: %w", s.cfg.Runtime, err))
	}
	if code := exitCode(<-ch); code != 0 {
		// The runtime's own complaint went to its stderr and to its
		// log; the log is the structured one.
		return fail(errors.New(pio.failure(runtimeLog, code)))
	}
	pid, err := readPidFile(filepath.Join(s.bundle, InitPidFile))
	if err != nil {
		return fail(fmt.Errorf("read init pid: %w", err))
	}
	initExit := s.reaper.watch(pid, mark)
	if err := pio.takeConsole(); err != nil {
		// Nobody could read or write the container's terminal.
		s.forceDelete()
		select {
		case <-initExit:
		case <-time.After(5 * time.Second):
		}
		return fail(err)
	}
	cg := s.readCgroupPaths()
	s.mu.Lock()
	s.status = StatusRunning
	s.pid = pid
	s.startedAt = time.Now().UTC()
	s.stdin = pio.stdin
	if s.cfg.Terminal {
		s.console = pio.stdout
	}
	s.cgroupPaths = cg
	s.mu.Unlock()

	var pumps sync.WaitGroup
	for _, o := range pio.outputs() {
		pumps.Add(1)
		go s.pump(o.f, o.stream, o.name, &pumps)
	}
	go s.waitInit(initExit, &pumps, pio)
	return pid, nil
}

// readPidFile reads the pid the runtime wrote.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid %q in %s", b, path)
	}
	return pid, nil
}

// resize sets the window size of the init's terminal or of an exec's. A
// process without a terminal has nothing to size, which is no error (as
// with containerd's shim).
func (s *shim) resize(req Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.ExecID == "" {
		if s.status != StatusRunning {
			return errors.New(notRunning)
		}
		if s.console == nil {
			return nil
		}
		return setWinsize(s.console, req.Width, req.Height)
	}
	x, ok := s.execs[req.ExecID]
	if !ok {
		return fmt.Errorf("exec %s is not running", req.ExecID)
	}
	if x.console == nil {
		return nil
	}
	return setWinsize(x.console, req.Width, req.Height)
}

func (s *shim) closeLog() {
	if s.log != nil {
		s.log.close()
	}
}

// runtimeError extracts the runtime's last error message.
func runtimeError(logPath string, stderr []byte, code int) string {
	msg := ""
	if b, err := os.ReadFile(logPath); err == nil {
		msg = lastLoggedError(b)
	}
	if msg == "" {
		msg = strings.TrimSpace(string(stderr))
	}
	if msg == "" {
		msg = fmt.Sprintf("runtime exited with status %d", code)
	}
	return msg
}

// RuntimeMessage is the last error a runtime logged in out (runc writes
// JSON lines with --log-format json), or out as it is.
func RuntimeMessage(out []byte) string {
	if msg := lastLoggedError(out); msg != "" {
		return msg
	}
	return strings.TrimSpace(string(out))
}

func lastLoggedError(log []byte) string {
	msg := ""
	for _, line := range bytes.Split(log, []byte("\n")) {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}

// pump copies one output stream of the container to the log and to the
// attached clients, until every writer of the pipe is gone (a terminal's
// master reads EIO once no process has the terminal open any more).
func (s *shim) pump(r *os.File, stream byte, name string, wg *sync.WaitGroup) {
	defer wg.Done()
	var split *lineSplitter
	if s.log != nil {
		split = &lineSplitter{emit: func(msg []byte) {
			if err := s.log.write(name, msg, time.Now()); err != nil {
				fmt.Fprintf(os.Stderr, "write log: %v\n", err)
			}
		}}
	}
	buf := make([]byte, 32<<10+8)
	for {
		n, err := r.Read(buf[8:])
		if n > 0 {
			data := buf[8 : 8+n]
			if split != nil {
				split.write(data)
			}
			putFrameHeader(buf[:8+n], stream)
			s.broadcast(stream, buf[:8+n])
		}
		if err != nil {
			break
		}
	}
	if split != nil {
		split.flush()
	}
}

func (s *shim) broadcast(stream byte, frame []byte) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sub := range s.subs {
		if (stream == 1 && !sub.stdout) || (stream == 2 && !sub.stderr) {
			continue
		}
		// Written synchronously, as Docker's attach does: a slow client
		// slows the container rather than losing its output. A client
		// gone for good errors out and is dropped.
		sub.conn.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := sub.conn.Write(frame); err != nil {
			delete(s.subs, sub)
			sub.close()
		}
	}
}

// waitInit waits for the container's init to exit, lets the output drain,
// records the exit and then cleans up the runtime's state.
func (s *shim) waitInit(initExit <-chan unix.WaitStatus, pumps *sync.WaitGroup, pio *procIO) {
	ws := <-initExit
	exitedAt := time.Now().UTC()
	drain(pumps, pio)
	s.mu.Lock()
	s.stdin = nil
	s.console = nil
	s.mu.Unlock()
	pio.close()
	s.closeLog()
	s.endOutput()
	// The exit is told as soon as it is known (the OOM check reads the
	// cgroup, so it comes first); removing the cgroups and the runtime's
	// state follows while berthd deals with the exit, and the shim stays
	// until it is done.
	oom := s.oomKilled()
	s.finish(Exit{ExitCode: exitCode(ws), ExitedAt: exitedAt, OOMKilled: oom})
	if err := s.deleteRuntimeState(); err != nil {
		fmt.Fprintf(os.Stderr, "delete runtime state: %v\n", err)
	}
	close(s.cleaned)
}

// drain waits for the pumps of a process that exited to reach the end of
// its output, for a while: something outside the container's pid
// namespace may still hold the pipes (or the terminal), and then the
// reading stops.
func drain(pumps *sync.WaitGroup, pio *procIO) {
	drained := make(chan struct{})
	go func() { pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		pio.stopReading()
		<-drained
	}
}

// endOutput ends the attach streams: the container's output is over.
func (s *shim) endOutput() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.outputDone = true
	for sub := range s.subs {
		sub.close()
	}
}

// finish records the exit: the file first, so a berthd that reconnects
// after the shim is gone still learns it.
func (s *shim) finish(e Exit) {
	if err := WriteExitFile(s.bundle, e); err != nil {
		fmt.Fprintf(os.Stderr, "write exit file: %v\n", err)
	}
	s.mu.Lock()
	s.status = StatusExited
	s.exit = &e
	s.mu.Unlock()
	close(s.exited)
}

// runcState is the part of runc's state.json the shim needs.
type runcState struct {
	CgroupPaths map[string]string `json:"cgroup_paths"`
}

func (s *shim) readCgroupPaths() map[string]string {
	paths, _ := ReadCgroupPaths(s.cfg.RuntimeRoot, s.cfg.ID)
	return paths
}

// ReadCgroupPaths reads the cgroup directories runc recorded for container
// id in its state (<runtimeRoot>/<id>/state.json, cgroup_paths: one per
// v1 controller, or "" for the v2 unified one).
func ReadCgroupPaths(runtimeRoot, id string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(runtimeRoot, id, "state.json"))
	if err != nil {
		return nil, err
	}
	var st runcState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return st.CgroupPaths, nil
}

// oomKilled reports whether the kernel's OOM killer acted in the
// container's memory cgroup.
func (s *shim) oomKilled() bool {
	s.mu.Lock()
	cg := s.cgroupPaths
	s.mu.Unlock()
	check := func(file string) bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
				return true
			}
		}
		return false
	}
	if p, ok := cg["memory"]; ok && check(filepath.Join(p, "memory.oom_control")) {
		return true
	}
	if p, ok := cg[""]; ok && check(filepath.Join(p, "memory.events")) {
		return true
	}
	return false
}

// deleteRuntimeState does what `runc delete` does for a stopped container
// (remove its cgroups and state directory) without another runtime
// process on the exit path; when that cannot be done (unknown state
// format, processes left in the cgroup) it runs `<runtime> delete --force`.
func (s *shim) deleteRuntimeState() error {
	s.mu.Lock()
	cg := s.cgroupPaths
	s.mu.Unlock()
	stateDir := filepath.Join(s.cfg.RuntimeRoot, s.cfg.ID)
	if cg != nil && removeCgroups(cg) == nil {
		return os.RemoveAll(stateDir)
	}
	return s.forceDelete()
}

// forceDelete runs `<runtime> delete --force`: it kills what is left of
// the container and removes its cgroups and state.
func (s *shim) forceDelete() error {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	_, ch, err := s.reaper.start([]string{s.cfg.Runtime, "--root", s.cfg.RuntimeRoot, "delete", "--force", s.cfg.ID},
		[]*os.File{devnull, devnull, devnull}, runtimeEnv)
	if err != nil {
		return err
	}
	if ws := <-ch; exitCode(ws) != 0 {
		return fmt.Errorf("%s delete exited with %d", s.cfg.Runtime, exitCode(ws))
	}
	return nil
}

// removeCgroups removes a container's cgroup directories, retrying while
// the last exiting tasks leave them busy.
func removeCgroups(paths map[string]string) error {
	var last error
	for _, p := range paths {
		for i := 0; ; i++ {
			err := unix.Rmdir(p)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || i >= 200 {
				last = fmt.Errorf("remove cgroup %s: %w", p, err)
				break
			}
			// The kernel lets go of a cgroup a moment after its last
			// task is reaped; poll finely, this is on the exit path.
			time.Sleep(2 * time.Millisecond)
		}
	}
	return last
}
