package shim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds how long a shim may take to report ready.
const readyTimeout = 30 * time.Second

// Launcher starts shims. With a spare it keeps one shim started ahead of
// time in idle mode (IdleFlag), so a container start finds a process
// waiting for its bundle instead of paying for an exec. The spare holds
// nothing but its stdin pipe: when the launcher's process ends, the pipe
// reaches EOF and the spare exits, so it never outlives its berthd.
type Launcher struct {
	argv  []string // program and leading arguments
	owner string   // passed to idle shims after IdleFlag
	spare bool

	mu      sync.Mutex
	idle    *idleShim
	filling bool
	closed  bool
	fill    sync.WaitGroup
}

// NewLauncher returns a Launcher running argv (the shim program and any
// leading arguments, e.g. [berthd, "shim"]) with the bundle appended.
// owner names the launcher on idle shims' command lines (berthd's exec
// root). spare keeps an idle shim ready; it is started by Refill.
func NewLauncher(argv []string, owner string, spare bool) *Launcher {
	return &Launcher{argv: append([]string{}, argv...), owner: owner, spare: spare}
}

// Process is a shim that reported ready for its bundle.
type Process struct {
	Client
	Pid    int
	proc   *os.Process
	exited chan struct{} // closed once this process has reaped it
}

// Exited is closed when the shim has exited (while the launching process
// lives; a shim outlives its launcher).
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Kill ends a shim that has not been asked to start a container (a start
// that failed on berthd's side before it got there), and waits for it.
func (p *Process) Kill() {
	p.proc.Kill()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

type idleShim struct {
	proc   *os.Process
	stdin  *os.File // write end: the bundle line goes here
	ready  *bufio.Reader
	stdout *os.File
	exited chan struct{}
}

// Launch starts a shim for bundle, whose shim.json must be written, and
// waits until it listens. It uses the spare if one is ready.
func (l *Launcher) Launch(ctx context.Context, bundle string) (*Process, error) {
	l.mu.Lock()
	sp := l.idle
	l.idle = nil
	l.mu.Unlock()
	if sp != nil {
		p, err := sp.assign(ctx, bundle)
		if !errors.Is(err, errSpareGone) {
			return p, err
		}
		// The spare died while idle; start one the ordinary way.
	}
	return l.spawn(ctx, bundle)
}

// Refill starts a spare in the background if spares are on and there is
// none. Call it when the machine is not busy with a start: a start that
// waits for the runtime competes with an exec for the same cores.
func (l *Launcher) Refill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.spare || l.closed || l.idle != nil || l.filling {
		return
	}
	l.filling = true
	l.fill.Add(1)
	go func() {
		defer l.fill.Done()
		sp, err := l.spawnIdle()
		l.mu.Lock()
		l.filling = false
		if err != nil || l.closed {
			l.mu.Unlock()
			if sp != nil {
				sp.stop()
			}
			return
		}
		l.idle = sp
		l.mu.Unlock()
	}()
}

// Close ends the spare (and waits for one being started). Shims already
// launched are not affected.
func (l *Launcher) Close() {
	l.mu.Lock()
	l.closed = true
	sp := l.idle
	l.idle = nil
	l.mu.Unlock()
	l.fill.Wait()
	if sp != nil {
		sp.stop()
	}
}

func devNull() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_RDWR, 0) }

// start runs the shim program with args, stdin as its fd 0 and a pipe as
// its fd 1, in its own session (so it outlives berthd), and reaps it.
func (l *Launcher) start(args []string, stdin *os.File) (*os.Process, *os.File, chan struct{}, error) {
	null, err := devNull()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start shim: %w", err)
	}
	defer null.Close()
	if stdin == nil {
		stdin = null
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start shim: %w", err)
	}
	argv := append(append([]string{}, l.argv...), args...)
	proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir:   "/",
		Files: []*os.File{stdin, w, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, nil, fmt.Errorf("start shim: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		proc.Wait()
		close(exited)
	}()
	return proc, r, exited, nil
}

// spawn starts a shim for bundle the ordinary way.
func (l *Launcher) spawn(ctx context.Context, bundle string) (*Process, error) {
	proc, out, exited, err := l.start([]string{bundle}, nil)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	return awaitReady(ctx, bufio.NewReader(out), proc, exited, bundle)
}

func (l *Launcher) spawnIdle() (*idleShim, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	proc, out, exited, err := l.start([]string{IdleFlag, l.owner}, inR)
	inR.Close()
	if err != nil {
		inW.Close()
		return nil, err
	}
	sp := &idleShim{proc: proc, stdin: inW, stdout: out, ready: bufio.NewReader(out), exited: exited}
	// It is a spare once it says it waits (its runtime is up by then).
	lines := make(chan string, 1)
	go func() {
		line, _ := sp.ready.ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		if line == "idle\n" {
			return sp, nil
		}
		sp.stop()
		return nil, fmt.Errorf("start idle shim: %q", strings.TrimSpace(line))
	case <-time.After(readyTimeout):
		sp.stop()
		<-lines
		return nil, errors.New("start idle shim: not ready")
	}
}

var errSpareGone = errors.New("idle shim is gone")

// assign hands the spare its bundle.
func (sp *idleShim) assign(ctx context.Context, bundle string) (*Process, error) {
	defer sp.stdout.Close()
	select {
	case <-sp.exited:
		sp.stdin.Close()
		return nil, errSpareGone
	default:
	}
	_, err := sp.stdin.Write([]byte(bundle + "\n"))
	sp.stdin.Close()
	if err != nil {
		sp.proc.Kill()
		<-sp.exited
		return nil, errSpareGone
	}
	return awaitReady(ctx, sp.ready, sp.proc, sp.exited, bundle)
}

// stop ends an idle shim: EOF on its stdin, then a kill if it lingers.
func (sp *idleShim) stop() {
	sp.stdin.Close()
	sp.stdout.Close()
	select {
	case <-sp.exited:
	case <-time.After(2 * time.Second):
		sp.proc.Kill()
		<-sp.exited
	}
}

// awaitReady reads the shim's readiness line.
func awaitReady(ctx context.Context, ready *bufio.Reader, proc *os.Process, exited chan struct{}, bundle string) (*Process, error) {
	lines := make(chan string, 1)
	go func() {
		line, _ := ready.ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	kill := func() {
		proc.Kill()
		<-exited
	}
	select {
	case line := <-lines:
		if line == "ok" {
			return &Process{Client: Client{Bundle: bundle}, Pid: proc.Pid, proc: proc, exited: exited}, nil
		}
		<-exited
		if line == "" {
			log, _ := os.ReadFile(filepath.Join(bundle, LogFile))
			return nil, fmt.Errorf("shim exited: %s", strings.TrimSpace(string(log)))
		}
		return nil, fmt.Errorf("shim: %s", line)
	case <-time.After(readyTimeout):
		kill()
		return nil, errors.New("shim did not become ready")
	case <-ctx.Done():
		kill()
		return nil, ctx.Err()
	}
}
