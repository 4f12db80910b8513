package shim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// execProc is an exec while it runs.
type execProc struct {
	console *os.File // master of its terminal, or nil
}

// exec serves OpExec on conn; r reads what the client sends after the
// request line. It runs `<runtime> exec --detach`, answers the pid (or
// the runtime's error), then streams the exec's output as stdcopy frames
// and copies the client's bytes to its stdin until it exits, and ends the
// stream with an ExitFrame.
//
// The exec is reparented to the shim (a child subreaper) when the
// runtime's intermediate processes exit, so the shim reaps it. A client
// that goes away does not end it: its output is read and dropped.
func (s *shim) exec(conn *sockConn, r *bufio.Reader, req Request) {
	id := req.ExecID
	if !validExecID(id) {
		s.respond(conn, Response{Error: fmt.Sprintf("bad exec id %q", id)})
		return
	}
	if req.ExecProcess == "" {
		s.respond(conn, Response{Error: "exec " + id + " has no process"})
		return
	}
	x := &execProc{}
	s.mu.Lock()
	if s.status != StatusRunning {
		s.mu.Unlock()
		s.respond(conn, Response{Error: notRunning})
		return
	}
	if s.execs[id] != nil {
		s.mu.Unlock()
		s.respond(conn, Response{Error: "exec " + id + " is already running"})
		return
	}
	s.execs[id] = x
	s.mu.Unlock()

	prefix := filepath.Join(s.bundle, "exec-"+id)
	logPath, pidPath := prefix+".log", prefix+".pid"
	pio, err := newProcIO(req.Terminal, req.Stdin, prefix+".sock")
	defer func() {
		s.mu.Lock()
		delete(s.execs, id)
		s.mu.Unlock()
		if pio != nil {
			pio.close()
		}
		os.Remove(logPath)
		os.Remove(pidPath)
		// The process file is berthd's, written for this exec into the
		// bundle; the runtime read it long ago.
		if filepath.Dir(filepath.Clean(req.ExecProcess)) == s.bundle {
			os.Remove(req.ExecProcess)
		}
	}()
	if err != nil {
		s.respond(conn, Response{Error: err.Error()})
		return
	}

	pid, exited, err := s.runExec(req, pio, logPath, pidPath)
	if err != nil {
		s.respond(conn, Response{Error: err.Error()})
		return
	}
	if req.Terminal {
		s.mu.Lock()
		x.console = pio.stdout
		s.mu.Unlock()
	}
	// A client gone by now leaves the exec running all the same.
	s.respond(conn, Response{Pid: pid})

	fw := &frameWriter{conn: conn}
	var pumps sync.WaitGroup
	for _, o := range pio.outputs() {
		pumps.Add(1)
		go fw.copy(o.f, o.stream, &pumps)
	}
	go func() {
		if pio.stdin == nil {
			io.Copy(io.Discard, r)
			return
		}
		io.Copy(pio.stdin, r)
		// The client's half-close (or its going away) closes a pipe;
		// a terminal stays open and gets no ^D, as Docker does: its
		// master is the exec's output too.
		pio.closeStdin()
	}()
	ws := <-exited
	e := Exit{ExitCode: exitCode(ws), ExitedAt: time.Now().UTC()}
	drain(&pumps, pio)
	s.mu.Lock()
	x.console = nil
	s.mu.Unlock()
	b, _ := json.Marshal(e)
	fw.write(ExitFrame, append(make([]byte, 8, 8+len(b)), b...))
	// Returning closes the connection, which ends the stdin copy.
}

// runExec runs the runtime's exec and returns the exec's pid and a
// channel for its exit.
func (s *shim) runExec(req Request, pio *procIO, logPath, pidPath string) (int, <-chan unix.WaitStatus, error) {
	os.Remove(logPath)
	os.Remove(pidPath)
	argv := []string{s.cfg.Runtime, "--root", s.cfg.RuntimeRoot, "--log", logPath, "--log-format", "json",
		"exec", "--detach", "--pid-file", pidPath, "--process", req.ExecProcess}
	argv = append(append(argv, pio.runtimeArgs()...), s.cfg.ID)
	mark := s.reaper.mark()
	_, ch, err := s.reaper.start(argv, pio.runtimeFiles, runtimeEnv)
	pio.started()
	if err != nil {
		return 0, nil, fmt.Errorf("run %s: %w", s.cfg.Runtime, err)
	}
	if code := exitCode(<-ch); code != 0 {
		return 0, nil, fmt.Errorf("%s", pio.failure(logPath, code))
	}
	pid, err := readPidFile(pidPath)
	if err != nil {
		return 0, nil, fmt.Errorf("read exec pid: %w", err)
	}
	// The exec may have exited already: watch finds its exit then.
	exited := s.reaper.watch(pid, mark)
	if err := pio.takeConsole(); err != nil {
		// Nobody could read or write its terminal. Until the shim reaps
		// it, the pid is the exec's.
		unix.Kill(pid, unix.SIGKILL)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		return 0, nil, err
	}
	return pid, exited, nil
}

// validExecID accepts ids that make plain file names in the bundle.
func validExecID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' || id[0] == '-' {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// frameWriter writes stdcopy frames to an exec's client. After a failed
// write the client is taken to be gone and the rest is dropped, so the
// exec never waits on it.
type frameWriter struct {
	mu   sync.Mutex
	conn *sockConn
	gone bool
}

// write sends frame, whose first 8 bytes it fills with the header.
func (w *frameWriter) write(stream byte, frame []byte) {
	putFrameHeader(frame, stream)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return
	}
	// As the attach streams: a slow client slows the exec, one that
	// reads nothing for a minute is dropped.
	w.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := w.conn.Write(frame); err != nil {
		w.gone = true
	}
}

// copy sends what f reads as frames of stream until f ends.
func (w *frameWriter) copy(f *os.File, stream byte, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 32<<10+8)
	for {
		n, err := f.Read(buf[8:])
		if n > 0 {
			w.write(stream, buf[:8+n])
		}
		if err != nil {
			return
		}
	}
}
