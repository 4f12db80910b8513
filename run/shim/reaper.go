package shim

import (
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reaper collects every child of the shim: the runtime processes it runs
// and, because the shim is a child subreaper, the container's init once the
// runtime that forked it has exited. One loop calls wait4(-1) and hands
// each status to whoever registered the pid, so no exit is lost to a
// concurrent wait.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	early   map[int]earlyExit // exits nobody registered (yet)
	seq     uint64            // exits reaped so far
}

// earlyExit is an exit reaped before anyone watched its pid; seq tells it
// from the exit of an older process that had the same pid.
type earlyExit struct {
	ws  unix.WaitStatus
	seq uint64
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan unix.WaitStatus{}, early: map[int]earlyExit{}}
	sigc := make(chan os.Signal, 32)
	signal.Notify(sigc, unix.SIGCHLD)
	go func() {
		// The tick covers a SIGCHLD coalesced away while reapAll ran.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sigc:
			case <-t.C:
			}
			r.reapAll()
		}
	}()
	return r
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if !ws.Exited() && !ws.Signaled() {
			continue
		}
		r.mu.Lock()
		r.seq++
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else {
			if len(r.early) > 1024 {
				clear(r.early)
			}
			r.early[pid] = earlyExit{ws: ws, seq: r.seq}
		}
		r.mu.Unlock()
	}
}

// start starts argv with files as its fds 0.. and returns its pid and a
// channel that gets its wait status. The lock held across the fork keeps
// the reap loop from dispatching the exit before the waiter exists.
func (r *reaper) start(argv []string, files []*os.File, env []string) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Files: files, Env: env, Dir: "/"})
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	p.Release()
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// mark returns the point reached in the sequence of reaped exits, for
// watch: take it before starting the runtime that will leave the process
// to watch behind.
func (r *reaper) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// watch returns a channel for the exit of pid, a process that became the
// shim's child by reparenting. It may have exited (and been reaped)
// already: an unclaimed exit of pid reaped after since is its; one reaped
// before belongs to an older process with the same pid and is dropped.
func (r *reaper) watch(pid int, since uint64) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	if e, ok := r.early[pid]; ok {
		delete(r.early, pid)
		if e.seq > since {
			ch <- e.ws
			return ch
		}
	}
	r.waiters[pid] = ch
	return ch
}

// exitCode turns a wait status into a shell-style exit code.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
