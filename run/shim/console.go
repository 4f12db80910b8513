package shim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ConsoleSocketFile is where the runtime hands over the master of the
// init's pseudo-terminal (runc's --console-socket); an exec's is
// exec-<id>.sock.
const ConsoleSocketFile = "console.sock"

// consoleSocket is a listening socket on which the runtime sends the
// master of a pseudo-terminal it made for a process (SCM_RIGHTS).
type consoleSocket struct {
	ln    *listener
	path  string // the socket file
	arg   string // the path the runtime connects to
	dirFd int    // the directory's fd that arg goes through, or -1
}

// listenConsole listens at path. sun_path holds 107 bytes, and exec ids
// make long names: a longer path is bound through the shim's
// /proc/self/fd of its open directory, and the runtime (root, another
// process) is told /proc/<shim pid>/fd/<n>/<name>, valid while the
// socket lives.
func listenConsole(path string) (*consoleSocket, error) {
	os.Remove(path)
	c := &consoleSocket{path: path, arg: path, dirFd: -1}
	addr := path
	if len(path) >= 100 {
		fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open console socket dir: %w", err)
		}
		c.dirFd = fd
		addr = fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(path))
		c.arg = fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), fd, filepath.Base(path))
	}
	ln, err := listenUnix(addr)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	c.ln = ln
	return c, nil
}

// receive takes the master the runtime sent. It is called once the
// runtime has exited successfully: a unix socket's connection and data
// are queued before anyone accepts, so the master is there already, and
// the timeout only bounds a runtime that did not send one.
func (c *consoleSocket) receive(timeout time.Duration) (*os.File, error) {
	deadline := time.Now().Add(timeout)
	c.ln.f.SetReadDeadline(deadline)
	conn, err := c.ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	defer conn.Close()
	conn.SetReadDeadline(deadline)
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	// runc sends the terminal's name as the data.
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 || flags&unix.MSG_CTRUNC != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive terminal: got %d descriptors (%q)", len(fds), buf[:n])
	}
	// Non-blocking, the master is pollable: reads can be given a
	// deadline when the output must stop being drained.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), strings.TrimSpace(string(buf[:n]))), nil
}

func (c *consoleSocket) close() {
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
		os.Remove(c.path)
	}
	if c.dirFd >= 0 {
		unix.Close(c.dirFd)
		c.dirFd = -1
	}
}

// setWinsize sets a terminal's window size. Through the raw fd: Fd()
// would turn the master blocking.
func setWinsize(f *os.File, width, height uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("resize terminal: %w", serr)
	}
	return nil
}

// procIO is the stdio of a process the runtime starts (the init or an
// exec): pipes, or a pseudo-terminal whose master the runtime sends.
type procIO struct {
	terminal bool
	// runtimeFiles are the runtime's fds 0, 1 and 2; it passes them on
	// to the process unless there is a terminal.
	runtimeFiles []*os.File
	child        []*os.File // the runtime's ends, closed once it runs
	// stdout and stderr are the read ends of the output (stderr nil with
	// a terminal, whose master is stdout once received).
	stdout, stderr *os.File
	// stdin is where the process's input goes: a pipe's write end, the
	// master, or nil when the process has no stdin.
	stdin      *os.File
	wantStdin  bool
	complaints *os.File // read end of the runtime's stderr
	console    *consoleSocket
}

func newProcIO(terminal, stdin bool, consolePath string) (p *procIO, err error) {
	p = &procIO{terminal: terminal, wantStdin: stdin}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return p, err
	}
	p.child = append(p.child, devnull)
	if terminal {
		if p.console, err = listenConsole(consolePath); err != nil {
			return p, err
		}
		// The runtime's complaints get a pipe of their own: the process
		// does not inherit the runtime's stdio.
		errR, errW, err := os.Pipe()
		if err != nil {
			return p, err
		}
		p.complaints = errR
		p.child = append(p.child, errW)
		p.runtimeFiles = []*os.File{devnull, devnull, errW}
		return p, nil
	}
	in := devnull
	if stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return p, err
		}
		p.child = append(p.child, inR)
		p.stdin, in = inW, inR
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	p.child = append(p.child, outW)
	p.stdout = outR
	errR, errW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	p.child = append(p.child, errW)
	p.stderr = errR
	// The runtime's complaints come on the process's stderr.
	p.complaints = errR
	p.runtimeFiles = []*os.File{in, outW, errW}
	return p, nil
}

// runtimeArgs are the runtime's options for this stdio.
func (p *procIO) runtimeArgs() []string {
	if p.console == nil {
		return nil
	}
	return []string{"--console-socket", p.console.arg}
}

// started closes the shim's copies of the runtime's ends once it runs, so
// the outputs end when the process's copies go.
func (p *procIO) started() {
	for _, f := range p.child {
		f.Close()
	}
	p.child = nil
}

// failure is the runtime's error message after it failed with code.
func (p *procIO) failure(runtimeLog string, code int) string {
	var stderr []byte
	if p.complaints != nil {
		p.complaints.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		stderr, _ = io.ReadAll(io.LimitReader(p.complaints, 64<<10))
	}
	return runtimeError(runtimeLog, stderr, code)
}

// takeConsole receives the terminal's master once the runtime has
// succeeded (nothing to do without a terminal).
func (p *procIO) takeConsole() error {
	if p.console == nil {
		return nil
	}
	master, err := p.console.receive(2 * time.Second)
	p.console.close()
	p.console = nil
	if p.complaints != nil {
		p.complaints.Close()
		p.complaints = nil
	}
	if err != nil {
		return err
	}
	p.stdout = master
	if p.wantStdin {
		p.stdin = master
	}
	return nil
}

// outputs are the streams to copy, with their stdcopy stream bytes.
func (p *procIO) outputs() []output {
	var outs []output
	if p.stdout != nil {
		outs = append(outs, output{p.stdout, 1, "stdout"})
	}
	if p.stderr != nil {
		outs = append(outs, output{p.stderr, 2, "stderr"})
	}
	return outs
}

type output struct {
	f      *os.File
	stream byte
	name   string
}

// stopReading makes pending and later reads of the outputs fail: what
// still holds their other ends is not waited for.
func (p *procIO) stopReading() {
	for _, o := range p.outputs() {
		o.f.SetReadDeadline(time.Now())
	}
}

// closeStdin ends the process's input (a pipe's; a terminal stays).
func (p *procIO) closeStdin() {
	if p.stdin != nil && !p.terminal {
		p.stdin.Close()
	}
}

// close releases everything.
func (p *procIO) close() {
	p.started()
	for _, f := range []*os.File{p.stdout, p.stderr, p.stdin, p.complaints} {
		if f != nil {
			f.Close()
		}
	}
	if p.console != nil {
		p.console.close()
		p.console = nil
	}
}

// notRunning answers what needs a running container.
const notRunning = "container is not running"
