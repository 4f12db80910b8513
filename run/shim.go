package run

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ShimMain is the per-container shim: `berthd shim <bundle-dir>` calls it
// with the arguments after "shim". It listens on <bundle>/shim.sock, runs
// the container through the OCI runtime when berthd asks, owns the
// container's stdio (writing the json-file log and serving attach
// streams), reaps the container's init as a child subreaper, records the
// exit in <bundle>/exit, and outlives berthd. It returns the process exit
// code.
//
// It tells berthd it is ready by writing "ok\n" (or an error line) on its
// stdout, which berthd reads from a pipe, and then detaches stdout.
func ShimMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: shim <bundle-dir>")
		return 2
	}
	bundle := args[0]
	// fd 1 is the readiness pipe; written with raw syscalls so no
	// *os.File (and its finalizer) owns it.
	fail := func(err error) int {
		unix.Write(1, []byte(err.Error()+"\n"))
		return 1
	}
	if err := redirectStderr(filepath.Join(bundle, shimLogName)); err != nil {
		return fail(err)
	}
	cfg, err := readShimConfig(bundle)
	if err != nil {
		return fail(err)
	}
	// Terminal signals never reach a session leader without a terminal,
	// but a stray one must not kill the keeper of a running container.
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become subreaper: %w", err))
	}
	s := &shim{
		cfg:    cfg,
		bundle: bundle,
		reaper: newReaper(),
		status: "created",
		exited: make(chan struct{}),
		subs:   map[*subscriber]struct{}{},
	}
	ln, err := s.listen()
	if err != nil {
		return fail(err)
	}
	if _, err := unix.Write(1, []byte("ok\n")); err != nil {
		ln.Close()
		return 1
	}
	// Replacing fd 1 closes the pipe: berthd reads "ok" and EOF.
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
	ln.Close()
	return 0
}

func redirectStderr(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	defer f.Close()
	return unix.Dup2(int(f.Fd()), 2)
}

func readShimConfig(bundle string) (shimConfig, error) {
	var cfg shimConfig
	b, err := os.ReadFile(filepath.Join(bundle, shimConfigName))
	if err != nil {
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	if cfg.ID == "" || cfg.Runtime == "" || cfg.RuntimeRoot == "" {
		return cfg, errors.New("shim config lacks id, runtime or runtime root")
	}
	return cfg, nil
}

type shim struct {
	cfg    shimConfig
	bundle string
	reaper *reaper
	log    *jsonLogWriter
	conns  sync.WaitGroup // connections being served

	mu          sync.Mutex
	started     bool
	status      string // created, running, exited
	pid         int
	exit        *exitInfo
	exited      chan struct{} // closed once exit is set
	cgroupPaths map[string]string
	stdin       *os.File // write end of the container's stdin

	subsMu     sync.Mutex
	subs       map[*subscriber]struct{}
	outputDone bool
}

// subscriber is an attach connection: it gets stdcopy frames of the
// streams it asked for until the container's output ends.
type subscriber struct {
	conn           net.Conn
	stdout, stderr bool
	done           chan struct{}
	closeOnce      sync.Once
}

func (sub *subscriber) close() { sub.closeOnce.Do(func() { close(sub.done) }) }

func (s *shim) listen() (net.Listener, error) {
	path := filepath.Join(s.bundle, shimSocketName)
	os.Remove(path)
	addr, release, err := socketAddr(path)
	if err != nil {
		return nil, err
	}
	defer release()
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// Do not unlink on Close: the address may be a /proc/self/fd path
	// that means nothing by then; berthd removes the bundle.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

func (s *shim) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
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

func (s *shim) respond(conn net.Conn, resp shimResponse) error {
	b, _ := json.Marshal(resp)
	_, err := conn.Write(append(b, '\n'))
	return err
}

func (s *shim) handle(conn net.Conn) {
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return
	}
	var req shimRequest
	if err := json.Unmarshal(line, &req); err != nil {
		s.respond(conn, shimResponse{Error: "bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case opStart:
		pid, err := s.start()
		if err != nil {
			s.respond(conn, shimResponse{Error: err.Error()})
			return
		}
		s.respond(conn, shimResponse{Pid: pid, Status: "running", ShimPid: os.Getpid()})
	case opWait:
		// Acknowledged at once, answered again at the exit: a client
		// knows its wait is registered before it asks for a start.
		if err := s.respond(conn, shimResponse{}); err != nil {
			return
		}
		<-s.exited
		s.mu.Lock()
		e := *s.exit
		s.mu.Unlock()
		s.respond(conn, shimResponse{Exit: &e, Status: "exited"})
	case opState:
		s.mu.Lock()
		resp := shimResponse{Status: s.status, Pid: s.pid, Exit: s.exit, ShimPid: os.Getpid()}
		s.mu.Unlock()
		s.respond(conn, resp)
	case opKill:
		s.mu.Lock()
		status, pid := s.status, s.pid
		s.mu.Unlock()
		if status != "running" {
			s.respond(conn, shimResponse{Error: "container is not running"})
			return
		}
		// The init is the shim's child until the shim reaps it, so its pid
		// cannot have been reused.
		if err := unix.Kill(pid, unix.Signal(req.Signal)); err != nil && !errors.Is(err, unix.ESRCH) {
			s.respond(conn, shimResponse{Error: fmt.Sprintf("kill: %v", err)})
			return
		}
		s.respond(conn, shimResponse{})
	case opAttach:
		sub := &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr, done: make(chan struct{})}
		s.subsMu.Lock()
		if err := s.respond(conn, shimResponse{}); err != nil {
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
	case opStdin:
		s.mu.Lock()
		w := s.stdin
		s.mu.Unlock()
		if w == nil {
			s.respond(conn, shimResponse{Error: "container has no stdin"})
			return
		}
		s.respond(conn, shimResponse{})
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
		if s.cfg.StdinOnce {
			s.mu.Lock()
			if s.stdin != nil {
				s.stdin.Close()
				s.stdin = nil
			}
			s.mu.Unlock()
		}
	default:
		s.respond(conn, shimResponse{Error: "unknown op " + strconv.Quote(req.Op)})
	}
}

// runtimeEnv is the environment the OCI runtime runs with: nothing of
// berthd's leaks into it.
var runtimeEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// start runs the container with `<runtime> run --detach`. The container's
// stdout and stderr are pipes the shim reads; its stdin is a pipe when the
// container has one, /dev/null otherwise.
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
		s.finish(exitInfo{ExitCode: 128, ExitedAt: time.Now().UTC(), StartError: err.Error()})
		return 0, err
	}
	return pid, nil
}

func (s *shim) runContainer() (int, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	in := devnull
	var stdinW *os.File
	if s.cfg.Stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		defer inR.Close()
		in, stdinW = inR, inW
	}
	if s.cfg.LogPath != "" {
		lw, err := openJSONLog(s.cfg.LogPath, s.cfg.LogMaxSize, s.cfg.LogMaxFile)
		if err != nil {
			return 0, err
		}
		s.log = lw
	}
	runtimeLog := filepath.Join(s.bundle, runtimeLogName)
	os.Remove(runtimeLog)
	argv := []string{s.cfg.Runtime, "--root", s.cfg.RuntimeRoot, "--log", runtimeLog, "--log-format", "json",
		"run", "--detach", "--bundle", s.bundle, "--pid-file", filepath.Join(s.bundle, initPidName), s.cfg.ID}
	_, ch, err := s.reaper.start(argv, []*os.File{in, outW, errW}, runtimeEnv)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if stdinW != nil {
			stdinW.Close()
		}
		s.closeLog()
		return 0, fmt.Errorf("run %s: %w", s.cfg.Runtime, err)
	}
	ws := <-ch
	if code := exitCode(ws); code != 0 {
		// The runtime's own complaint went to the container's stderr
		// pipe and to its log; the log is the structured one.
		errR.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		stderr, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
		outR.Close()
		errR.Close()
		if stdinW != nil {
			stdinW.Close()
		}
		s.closeLog()
		return 0, errors.New(runtimeError(runtimeLog, stderr, code))
	}
	b, err := os.ReadFile(filepath.Join(s.bundle, initPidName))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil || pid <= 0 {
		outR.Close()
		errR.Close()
		s.closeLog()
		return 0, fmt.Errorf("read init pid: %v %v", err, perr)
	}
	initExit := s.reaper.watch(pid)
	cg := s.readCgroupPaths()
	s.mu.Lock()
	s.status = "running"
	s.pid = pid
	s.stdin = stdinW
	s.cgroupPaths = cg
	s.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go s.pump(outR, 1, "stdout", &pumps)
	go s.pump(errR, 2, "stderr", &pumps)
	go s.waitInit(initExit, &pumps, outR, errR)
	return pid, nil
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
		for _, line := range bytes.Split(b, []byte("\n")) {
			var e struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
				msg = e.Msg
			}
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(stderr))
	}
	if msg == "" {
		msg = fmt.Sprintf("runtime exited with status %d", code)
	}
	return msg
}

// pump copies one output stream of the container to the log and to the
// attached clients, until every writer of the pipe is gone.
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
			buf[0] = stream
			buf[1], buf[2], buf[3] = 0, 0, 0
			binary.BigEndian.PutUint32(buf[4:8], uint32(n))
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
// cleans up the runtime's state and records the exit.
func (s *shim) waitInit(initExit <-chan unix.WaitStatus, pumps *sync.WaitGroup, outR, errR *os.File) {
	ws := <-initExit
	exitedAt := time.Now().UTC()
	drained := make(chan struct{})
	go func() { pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		// Something outside the container's pid namespace still holds
		// the pipes; stop reading.
		outR.SetReadDeadline(time.Now())
		errR.SetReadDeadline(time.Now())
		<-drained
	}
	outR.Close()
	errR.Close()
	s.closeLog()
	s.subsMu.Lock()
	s.outputDone = true
	for sub := range s.subs {
		sub.close()
	}
	s.subsMu.Unlock()
	s.mu.Lock()
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	s.mu.Unlock()
	oom := s.oomKilled()
	if err := s.deleteRuntimeState(); err != nil {
		fmt.Fprintf(os.Stderr, "delete runtime state: %v\n", err)
	}
	s.finish(exitInfo{ExitCode: exitCode(ws), ExitedAt: exitedAt, OOMKilled: oom})
}

// finish records the exit: the file first, so a berthd that reconnects
// after the shim is gone still learns it.
func (s *shim) finish(e exitInfo) {
	if err := writeExitFile(s.bundle, e); err != nil {
		fmt.Fprintf(os.Stderr, "write exit file: %v\n", err)
	}
	s.mu.Lock()
	s.status = "exited"
	s.exit = &e
	s.mu.Unlock()
	close(s.exited)
}

// runcState is the part of runc's state.json the shim needs.
type runcState struct {
	CgroupPaths map[string]string `json:"cgroup_paths"`
}

func (s *shim) readCgroupPaths() map[string]string {
	b, err := os.ReadFile(filepath.Join(s.cfg.RuntimeRoot, s.cfg.ID, "state.json"))
	if err != nil {
		return nil
	}
	var st runcState
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return st.CgroupPaths
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
			if !errors.Is(err, unix.EBUSY) || i >= 50 {
				last = fmt.Errorf("remove cgroup %s: %w", p, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return last
}
