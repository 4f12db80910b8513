package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/netns"
	"github.com/berth-dev/berth/run/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Start starts a created or exited container. Starting a running one is
// errdefs.ErrNotModified (HTTP 304). A container with AutoRemove is
// removed when its start fails.
func (m *Manager) Start(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	return m.startLockedOp(ctx, c, startByUser)
}

// startReason says who asks for a start.
type startReason int

const (
	startByUser   startReason = iota
	startByPolicy             // a restart policy after an exit
	startAtBoot               // a restart policy when berthd starts
)

func (m *Manager) startLockedOp(ctx context.Context, c *ctr, why startReason) error {
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.view()
	switch {
	case c.markedForRemoval(rec):
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot start container %s: it is marked for removal", rec.ID))
	case rec.State.running() && rec.State.Paused:
		return errdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
	case rec.State.running():
		return errdefs.ErrNotModified.WithMessage("container already started")
	case why == startByPolicy && rec.ManuallyStopped:
		// A restart scheduled before a stop or kill.
		return nil
	}
	switch why {
	case startByUser:
		c.update(func(r *record) { r.ManuallyStopped = false; r.RestartCount = 0 })
	case startByPolicy:
		// Counted here, under c.op and after the checks: a restart that
		// a stop called off is no restart.
		c.update(func(r *record) { r.RestartCount++ })
	}
	err := m.start(ctx, c)
	if err != nil && rec.HostConfig.AutoRemove {
		if rerr := m.removeLocked(context.WithoutCancel(ctx), c, true); rerr != nil {
			m.log.Warn("auto-remove after failed start", "container", rec.ID, "err", rerr)
		}
	}
	return err
}

// start runs the container; c.op is held. On failure everything the
// attempt set up is undone and the error recorded in the state.
func (m *Manager) start(ctx context.Context, c *ctr) (retErr error) {
	// A client that goes away must not leave a start half done (a
	// container running with nothing recorded): the start finishes.
	ctx = context.WithoutCancel(ctx)
	rec := c.view()
	id := rec.ID
	bundle := m.bundleDir(id)
	var undo []func()
	defer func() {
		if retErr == nil {
			return
		}
		bg := context.WithoutCancel(ctx)
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		code := 128
		msg := retErr.Error()
		switch {
		case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
			code = 127
		case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
			code = 126
		}
		c.update(func(r *record) {
			r.State.Error = msg
			r.State.ExitCode = code
			r.State.Restarting = false
			if r.State.Status == container.StateRestarting || r.State.Status == container.StateRunning {
				r.State.Status = container.StateExited
			}
		})
		if err := m.save(bg, c); err != nil {
			m.log.Warn("record failed start", "container", id, "err", err)
		}
		c.attach.ended()
		c.signalExit(msg)
	}()

	runtimePath, ok := m.cfg.Runtimes[rec.Runtime]
	if !ok {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown or invalid runtime name: %s", rec.Runtime))
	}
	netns.Remove(ctx, filepath.Join(bundle, netnsName))
	if err := os.RemoveAll(bundle); err != nil {
		return fmt.Errorf("start: clean bundle: %w", err)
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(bundle) })

	sc := shim.Config{
		ID:          id,
		Runtime:     runtimePath,
		RuntimeRoot: m.runtimeRoot(rec.Runtime),
		Stdin:       rec.Config.OpenStdin,
		StdinOnce:   rec.Config.StdinOnce,
		// The shim takes the pty master from the runtime's
		// --console-socket.
		Terminal: rec.Config.Tty,
	}
	if rec.Log.Driver == "json-file" {
		sc.LogPath, sc.LogMaxSize, sc.LogMaxFile = rec.LogPath, rec.Log.MaxSize, rec.Log.MaxFile
	}
	if err := os.MkdirAll(sc.RuntimeRoot, 0o700); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := shim.WriteConfig(bundle, sc); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// The shim gets ready while the rootfs, the network namespace and the
	// spec are; it needs only its config until it is asked to start.
	prep := m.prepareShim(ctx, c, bundle)
	defer m.launcher.Refill()
	startSent := false
	undo = append(undo, func() { prep.abandon(startSent) })

	rootfs, err := m.cfg.Store.MountRW(ctx, id)
	if err != nil {
		return fmt.Errorf("start: mount rootfs: %w", err)
	}
	undo = append(undo, func() { m.cfg.Store.UnmountRW(context.WithoutCancel(ctx), id) })

	nsPath := ""
	if !container.NetworkMode(rec.HostConfig.NetworkMode).IsHost() && !rec.HostConfig.NetworkMode.IsContainer() {
		nsPath = filepath.Join(bundle, netnsName)
		if err := netns.Create(ctx, nsPath); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		undo = append(undo, func() { netns.Remove(context.WithoutCancel(ctx), nsPath) })
	}

	if err := m.prepareMounts(ctx, rec, rootfs); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	spec, err := m.buildSpec(ctx, rec, rootfs, nsPath)
	if err != nil {
		return err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("start: encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, bundleConfigName), specJSON, 0o600); err != nil {
		return fmt.Errorf("start: %w", err)
	}

	p, wait, err := prep.result()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	startSent = true
	resp, err := p.Call(startCtx, shim.Request{Op: shim.OpStart})
	cancel()
	if err != nil {
		var se *shim.RemoteError
		if errors.As(err, &se) {
			return startError(se.Msg)
		}
		return fmt.Errorf("start: %w", err)
	}
	now := time.Now().UTC()
	rec = c.update(func(r *record) {
		r.State = containerState{
			Status:    container.StateRunning,
			Pid:       resp.Pid,
			ShimPid:   resp.ShimPid,
			StartedAt: now,
		}
	})
	m.saveSoon(c)
	m.emit(events.ActionStart, rec, nil)
	if cs := rec.HostConfig.ConsoleSize; rec.Config.Tty && cs[0] > 0 && cs[1] > 0 {
		// The runtime sized the terminal from the spec already; this
		// makes the size the shim's too, whatever the runtime did.
		if err := m.resizeInit(ctx, id, cs[0], cs[1]); err != nil {
			m.log.Debug("resize at start", "container", id, "err", err)
		}
	}
	c.attach.startStdin(ctx, p.Client)
	m.startMonitor(c, wait)
	return nil
}

// startError words a runtime failure as Docker does, keeping the
// runtime's message (the CLI looks for "executable file not found" and
// "permission denied" in it).
func startError(msg string) error {
	msg = strings.Replace(msg, "runc run failed", "runc create failed", 1)
	full := "failed to create task for container: OCI runtime create failed: " + msg + ": unknown"
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory") {
		return errdefs.ErrInvalidArgument.WithMessage(full)
	}
	return errdefs.ErrUnknown.WithMessage(full)
}

// shimPrep gets a run's shim ready while berthd prepares the rest: the
// shim is launched, and the run's wait and output streams are opened
// before the container runs, so neither its exit nor its first bytes can
// be missed.
type shimPrep struct {
	done chan struct{}
	proc *shim.Process
	wait *shim.Conn
	err  error
}

func (m *Manager) prepareShim(ctx context.Context, c *ctr, bundle string) *shimPrep {
	sp := &shimPrep{done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		sp.proc, sp.err = m.launcher.Launch(ctx, bundle)
		if sp.err != nil {
			return
		}
		// Two round trips to a process just woken: side by side.
		waited := make(chan struct{})
		go func() {
			defer close(waited)
			sp.wait, sp.err = sp.proc.Open(ctx, shim.Request{Op: shim.OpWait})
		}()
		c.attach.connect(ctx, sp.proc.Client)
		<-waited
	}()
	return sp
}

// result waits for the shim to be ready.
func (sp *shimPrep) result() (*shim.Process, *shim.Conn, error) {
	<-sp.done
	return sp.proc, sp.wait, sp.err
}

// abandon lets go of the shim of a start that failed. One that was asked
// to start ends by itself once it has told its waiters (it is waited for,
// so it goes before its bundle); one that was not is killed.
func (sp *shimPrep) abandon(startSent bool) {
	<-sp.done
	if sp.wait != nil {
		sp.wait.Close()
	}
	switch {
	case sp.proc == nil:
	case startSent:
		select {
		case <-sp.proc.Exited():
		case <-time.After(2 * time.Second):
		}
	default:
		sp.proc.Kill()
	}
}

func (m *Manager) startMonitor(c *ctr, wait *shim.Conn) {
	c.mu.Lock()
	c.monitor = wait
	c.mu.Unlock()
	m.monMu.Lock()
	m.monitors[wait] = struct{}{}
	m.monMu.Unlock()
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		e, err := wait.WaitExit()
		wait.Close()
		m.monMu.Lock()
		delete(m.monitors, wait)
		m.monMu.Unlock()
		if err != nil {
			if m.closing.Load() {
				return
			}
			// The shim died without answering: its exit file may still
			// tell how the container ended.
			bundle := m.bundleDir(c.id)
			time.Sleep(10 * time.Millisecond)
			fe, ferr := shim.ReadExitFile(bundle)
			if ferr != nil {
				// It died before the container: nothing may keep
				// running without its shim.
				m.forceDeleteRuntime(c.view())
				fe = shim.Exit{ExitCode: 255, ExitedAt: time.Now().UTC()}
			}
			e = fe
		}
		ctx := context.Background()
		c.op.Lock()
		c.mu.Lock()
		stale := c.monitor != wait
		if !stale {
			c.monitor = nil
		}
		c.mu.Unlock()
		if !stale {
			m.finishRun(ctx, c, e, true)
		}
		c.op.Unlock()
	}()
}

// forceDeleteRuntime has the runtime kill and forget a container whose
// shim is gone (the runtime checks the container is the one it started).
func (m *Manager) forceDeleteRuntime(rec *record) {
	path, ok := m.cfg.Runtimes[rec.Runtime]
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, path, "--root", m.runtimeRoot(rec.Runtime), "delete", "--force", rec.ID).CombinedOutput(); err != nil {
		m.log.Debug("runtime delete", "container", rec.ID, "err", err, "output", string(out))
	}
}

// finishRun records the end of a run and cleans up after it; c.op is
// held. Then the restart policy or AutoRemove apply.
func (m *Manager) finishRun(ctx context.Context, c *ctr, e shim.Exit, policies bool) {
	rec := c.view()
	shimPid := rec.State.ShimPid
	if e.ExitedAt.IsZero() {
		e.ExitedAt = time.Now().UTC()
	}
	restart, delay := false, time.Duration(0)
	if policies && !m.shuttingDown.Load() {
		restart, delay = m.shouldRestart(c, rec, e.ExitCode)
	}
	exited := func(r *record) {
		r.State.Status = container.StateExited
		r.State.Pid = 0
		r.State.ExitCode = e.ExitCode
		r.State.FinishedAt = e.ExitedAt
		r.State.OOMKilled = e.OOMKilled
		r.State.Error = e.StartError
		r.State.ShimPid = 0
		r.State.Paused = false
		r.State.Restarting = restart
		if restart {
			r.State.Status = container.StateRestarting
		}
	}
	c.mu.Lock()
	removing := c.removing
	c.mu.Unlock()
	if !restart && rec.HostConfig.AutoRemove && !removing {
		m.autoRemove(ctx, c, e, exited, shimPid)
		return
	}
	// The exit is on disk before the bundle, and the shim's exit file in
	// it, go.
	rec = c.update(exited)
	if err := m.save(ctx, c); err != nil {
		m.log.Warn("record exit", "container", rec.ID, "err", err)
	}
	// A container that exited is at rest: whoever waits for the exit
	// finds its run cleaned up.
	m.cleanupRun(ctx, rec.ID, shimPid)
	m.emitExit(rec, e)
	c.attach.ended()
	c.signalExit("")
	if restart {
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			select {
			case <-time.After(delay):
			case <-c.removed:
				return
			}
			if m.shuttingDown.Load() {
				return
			}
			if err := m.startLockedOp(context.Background(), c, startByPolicy); err != nil {
				m.log.Warn("restart policy: start", "container", c.id, "err", err)
			} else {
				m.emit(events.ActionRestart, c.view(), nil)
			}
		}()
	}
}

func (m *Manager) emitExit(rec *record, e shim.Exit) {
	if e.OOMKilled {
		m.emit(events.ActionOOM, rec, nil)
	}
	m.emit(events.ActionDie, rec, map[string]string{"exitCode": itoa(e.ExitCode)})
}

// autoRemove ends a run of an AutoRemove container (--rm): it is gone for
// every caller at once, and whoever waits for its removal is told, before
// anything is written: its removal then deletes the record first and the
// files after. That order is what makes it safe to crash anywhere on the
// way: until the record is deleted it still names a run, whose shim or
// exit file has the next start finish the removal (New); after, what is
// left has no record, and the next start sweeps it.
func (m *Manager) autoRemove(ctx context.Context, c *ctr, e shim.Exit, exited func(*record), shimPid int) {
	c.mu.Lock()
	c.removing = true
	c.mu.Unlock()
	rec := c.update(func(r *record) {
		exited(r)
		r.State.Status = container.StateRemoving
	})
	m.emitExit(rec, e)
	c.attach.ended()
	c.signalExit("")
	m.forget(ctx, c, rec, true)
	if err := m.deleteRecord(ctx, c); err != nil {
		m.log.Warn("auto-remove", "container", rec.ID, "err", err)
	}
	m.cleanupRun(ctx, rec.ID, shimPid)
	if err := m.cfg.Store.RemoveRWLayer(ctx, rec.ID); err != nil && !errdefs.IsNotFound(err) {
		m.log.Warn("auto-remove", "container", rec.ID, "err", err)
	}
	if err := os.RemoveAll(m.containerDir(rec.ID)); err != nil {
		m.log.Warn("auto-remove", "container", rec.ID, "err", err)
	}
}

// shouldRestart applies the restart policy to an exit, with Docker's
// back-off: 100ms doubling up to a minute, reset by a run of 10s or more.
func (m *Manager) shouldRestart(c *ctr, rec *record, code int) (bool, time.Duration) {
	p := rec.HostConfig.RestartPolicy
	if p.IsNone() || rec.ManuallyStopped || rec.HostConfig.AutoRemove {
		return false, 0
	}
	ok := false
	switch {
	case p.IsAlways(), p.IsUnlessStopped():
		ok = true
	case p.IsOnFailure():
		ok = code != 0 && (p.MaximumRetryCount == 0 || rec.RestartCount < p.MaximumRetryCount)
	}
	if !ok {
		return false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(rec.State.StartedAt) >= 10*time.Second {
		c.backoff = 0
	}
	switch {
	case c.backoff == 0:
		c.backoff = 100 * time.Millisecond
	case c.backoff < time.Minute:
		c.backoff *= 2
	}
	if c.backoff > time.Minute {
		c.backoff = time.Minute
	}
	return true, c.backoff
}

// cleanupRun undoes what start set up: the rootfs mount, the network
// namespace and the bundle. shimPid is the run's shim, if it may still be
// finishing (it removes the runtime's state after telling the exit): it
// is waited for alongside, and before the bundle goes. Safe to repeat.
func (m *Manager) cleanupRun(ctx context.Context, id string, shimPid int) {
	bg := context.WithoutCancel(ctx)
	bundle := m.bundleDir(id)
	shimGone := make(chan struct{})
	go func() {
		waitShimGone(shimPid, bundle, 2*time.Second)
		close(shimGone)
	}()
	if err := netns.Remove(bg, filepath.Join(bundle, netnsName)); err != nil {
		m.log.Warn("remove netns", "container", id, "err", err)
	}
	if err := m.cfg.Store.UnmountRW(bg, id); err != nil && !errdefs.IsNotFound(err) {
		m.log.Warn("unmount rootfs", "container", id, "err", err)
	}
	<-shimGone
	if err := os.RemoveAll(bundle); err != nil {
		m.log.Warn("remove bundle", "container", id, "err", err)
	}
}

// waitShimGone waits for the shim of a finished run to exit: it answers
// the exit first and then ends, and nothing of a run may outlive it.
func waitShimGone(pid int, bundle string, d time.Duration) {
	if pid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	// The pid may have been reused since: only wait for our shim.
	if !isShimOf(pid, bundle) {
		return
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, int(d/time.Millisecond))
		if err != unix.EINTR {
			return
		}
	}
}

// isShimOf tells whether pid is the shim of bundle: a shim works in its
// bundle directory (a spare got its bundle after it started, so its
// command line does not name it), and one started for the bundle names it
// on its command line.
func isShimOf(pid int, bundle string) bool {
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil &&
		(cwd == bundle || cwd == bundle+" (deleted)") {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte(bundle))
}

// Stop stops a running container: its stop signal (SIGTERM unless the
// container says otherwise), then SIGKILL after timeout seconds (nil: the
// container's StopTimeout or 10; negative: wait forever). Stopping a
// container that is not running is errdefs.ErrNotModified (304).
func (m *Manager) Stop(ctx context.Context, ref string, timeout *int) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	rec := c.view()
	if rec.State.Restarting {
		// Between two runs: marked stopped first, so a restart not yet
		// begun is called off; one already starting is waited for (it
		// holds c.op) and then stopped like any running container.
		c.update(func(r *record) { r.ManuallyStopped = true })
		m.save(ctx, c)
		c.op.Lock()
		rec = c.view()
		if !rec.State.running() {
			rec = c.update(func(r *record) {
				r.State.Restarting = false
				if r.State.Status == container.StateRestarting {
					r.State.Status = container.StateExited
				}
			})
			m.save(ctx, c)
		}
		c.op.Unlock()
		if !rec.State.running() {
			return nil
		}
	}
	if !rec.State.running() {
		return errdefs.ErrNotModified.WithMessage("container already stopped")
	}
	return m.stop(ctx, c, timeout, true)
}

func (m *Manager) stop(ctx context.Context, c *ctr, timeout *int, manual bool) error {
	rec := c.view()
	sig := syscall.SIGTERM
	if rec.Config.StopSignal != "" {
		if s, err := ParseSignal(rec.Config.StopSignal); err == nil {
			sig = s
		}
	}
	t := defaultStopTimeout
	if rec.Config.StopTimeout != nil {
		t = *rec.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	exited := c.exitChan()
	if !c.view().State.running() {
		return nil
	}
	if err := m.signal(ctx, c, sig, manual); err != nil && !errors.Is(err, errNotRunning) {
		return fmt.Errorf("cannot stop container %s: %w", rec.ID, err)
	}
	var timer <-chan time.Time
	if t >= 0 {
		timer = time.After(time.Duration(t) * time.Second)
	}
	select {
	case <-exited:
	case <-timer:
		if err := m.signal(ctx, c, syscall.SIGKILL, manual); err != nil && !errors.Is(err, errNotRunning) {
			return fmt.Errorf("cannot stop container %s: %w", rec.ID, err)
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("cannot stop container %s: did not exit after SIGKILL", rec.ID)
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	m.emit(events.ActionStop, c.view(), nil)
	return nil
}

var errNotRunning = errors.New("container is not running")

// signal sends sig to the container's init through its shim.
func (m *Manager) signal(ctx context.Context, c *ctr, sig syscall.Signal, manual bool) error {
	rec := c.view()
	if !rec.State.running() {
		return errNotRunning
	}
	if manual && !rec.ManuallyStopped {
		rec = c.update(func(r *record) { r.ManuallyStopped = true })
		m.save(ctx, c)
	}
	_, err := shim.Client{Bundle: m.bundleDir(rec.ID)}.Call(ctx, shim.Request{Op: shim.OpKill, Signal: int(sig)})
	if err != nil {
		var se *shim.RemoteError
		if errors.As(err, &se) || errors.Is(err, shim.ErrGone) {
			return errNotRunning
		}
		return err
	}
	m.emit(events.ActionKill, rec, map[string]string{"signal": itoa(int(sig))})
	m.thawAfterSignal(ctx, c, sig)
	return nil
}

// Kill sends a signal (a name or number; "" is SIGKILL) to a running
// container. For SIGKILL it waits, up to 10s, for the container to exit.
func (m *Manager) Kill(ctx context.Context, ref, signal string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	notRunning := func() error {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: Container %s is not running", ref, c.id))
	}
	exited := c.exitChan()
	if !c.view().State.running() {
		return notRunning()
	}
	if err := m.signal(ctx, c, sig, true); err != nil {
		if errors.Is(err, errNotRunning) {
			return notRunning()
		}
		return fmt.Errorf("Cannot kill container %s: %w", c.id, err)
	}
	if sig == syscall.SIGKILL {
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Restart stops the container if it runs, then starts it.
func (m *Manager) Restart(ctx context.Context, ref string, timeout *int) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if c.view().State.running() {
		if err := m.stop(ctx, c, timeout, true); err != nil {
			return err
		}
	}
	if err := m.startLockedOp(ctx, c, startByUser); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	m.emit(events.ActionRestart, c.view(), nil)
	return nil
}

// Wait returns a channel that gets the container's exit once condition
// holds: "not-running" (or "") answers at once for a container that is
// not running, "next-exit" waits for the next exit, "removed" for the
// container's removal. The channel is returned before anything happens,
// so a handler can flush its headers first. ctx ends the wait.
func (m *Manager) Wait(ctx context.Context, ref string, condition container.WaitCondition) (<-chan container.WaitResponse, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid condition: %q", condition))
	}
	out := make(chan container.WaitResponse, 1)
	exited := c.exitChan()
	rec := c.view()
	result := func() container.WaitResponse {
		r := c.view()
		resp := container.WaitResponse{StatusCode: int64(r.State.ExitCode)}
		c.mu.Lock()
		if c.exitErr != "" {
			resp.Error = &container.WaitExitError{Message: c.exitErr}
		}
		c.mu.Unlock()
		return resp
	}
	if (condition == "" || condition == container.WaitConditionNotRunning) && !rec.State.running() && !rec.State.Restarting {
		out <- result()
		return out, nil
	}
	go func() {
		if condition == container.WaitConditionRemoved {
			select {
			case <-c.removed:
				out <- result()
			case <-ctx.Done():
			}
			return
		}
		for {
			select {
			case <-exited:
				// A restart policy turns an exit into "restarting":
				// not-running waits on through it, as Docker does.
				if (condition == "" || condition == container.WaitConditionNotRunning) && c.view().State.Restarting {
					exited = c.exitChan()
					continue
				}
				out <- result()
			case <-c.removed:
				out <- result()
			case <-ctx.Done():
			}
			return
		}
	}()
	return out, nil
}
