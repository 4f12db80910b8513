package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/berth-dev/berth/run/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// runtimeTimeout bounds one pause, resume or update by the runtime.
const runtimeTimeout = time.Minute

// Pause freezes every process of a running container (the runtime's
// pause: the cgroup freezer). The container stays running, paused, until
// Unpause, a stop or a kill.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.view()
	if err := checkRunning(rec); err != nil {
		return err
	}
	if rec.State.Paused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is already paused", rec.ID))
	}
	if err := m.setFrozen(ctx, c, rec, true); err != nil {
		return fmt.Errorf("Cannot pause container %s: %w", rec.ID, err)
	}
	return nil
}

// checkRunning refuses, with dockerd's 409s, an operation on a container
// that is restarting or not running.
func checkRunning(rec *record) error {
	switch {
	case rec.State.Restarting:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", rec.ID))
	case !rec.State.running():
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
	}
	return nil
}

// markedForRemoval tells whether the container is being removed or is
// dead (a removal that failed half way), which refuses most operations.
func (c *ctr) markedForRemoval(rec *record) bool {
	c.mu.Lock()
	removing := c.removing
	c.mu.Unlock()
	return removing || rec.State.Status == container.StateRemoving || rec.State.Status == container.StateDead
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.view()
	if !rec.State.Paused || !rec.State.running() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not paused", rec.ID))
	}
	if err := m.setFrozen(ctx, c, rec, false); err != nil {
		return fmt.Errorf("Cannot unpause container %s: %w", rec.ID, err)
	}
	return nil
}

// setFrozen has the runtime pause (freeze) or resume (thaw) the container
// and, once it has, records the new state. The error is the runtime's.
func (m *Manager) setFrozen(ctx context.Context, c *ctr, rec *record, paused bool) error {
	cmd := "resume"
	if paused {
		cmd = "pause"
	}
	if err := m.runRuntime(ctx, rec, nil, cmd, rec.ID); err != nil {
		return err
	}
	m.setPaused(ctx, c, paused)
	return nil
}

// setPaused records the freezer's state and tells the event stream.
func (m *Manager) setPaused(ctx context.Context, c *ctr, paused bool) {
	rec := c.update(func(r *record) { r.State.Paused = paused })
	if err := m.save(ctx, c); err != nil {
		m.log.Warn("record pause state", "container", rec.ID, "paused", paused, "err", err)
	}
	action := events.ActionUnPause
	if paused {
		action = events.ActionPause
	}
	m.emit(action, rec, nil)
}

// thawAfterSignal lets a paused container act on a signal it was just
// sent, as dockerd does: a frozen process cannot die or handle anything
// until it is thawed. Like dockerd it thaws for SIGKILL and the
// container's stop signal, and for any signal when the container has no
// stop signal of its own. Stop, kill and rm -f all come through here.
func (m *Manager) thawAfterSignal(ctx context.Context, c *ctr, sig syscall.Signal) {
	rec := c.view()
	if !rec.State.Paused {
		return
	}
	if rec.Config.StopSignal != "" && sig != syscall.SIGKILL {
		if s, err := ParseSignal(rec.Config.StopSignal); err != nil || s != sig {
			return
		}
	}
	if err := m.setFrozen(ctx, c, rec, false); err != nil {
		m.log.Warn("unpause after signal", "container", rec.ID, "err", err)
	}
}

// reconcilePaused makes the record's paused flag what the container's
// freezer says, for a run found alive at startup: a pause or unpause
// berthd did not live to record, or one made behind its back.
func (m *Manager) reconcilePaused(ctx context.Context, c *ctr) {
	rec := c.view()
	if !rec.State.running() {
		return
	}
	cg, err := m.cgroupOf(rec)
	if err != nil {
		m.log.Debug("read pause state", "container", rec.ID, "err", err)
		return
	}
	frozen, err := cg.frozen()
	if err != nil {
		m.log.Debug("read pause state", "container", rec.ID, "err", err)
		return
	}
	if frozen == rec.State.Paused {
		return
	}
	rec = c.update(func(r *record) { r.State.Paused = frozen })
	if err := m.save(ctx, c); err != nil {
		m.log.Warn("record pause state", "container", rec.ID, "err", err)
	}
}

// runRuntime runs one command of the container's OCI runtime on its state
// root (pause, resume, update), with stdin if not nil. A client that goes
// away does not cut it short: the runtime's view and the record must not
// part. The error is the runtime's own message.
func (m *Manager) runRuntime(ctx context.Context, rec *record, stdin []byte, args ...string) error {
	path, ok := m.cfg.Runtimes[rec.Runtime]
	if !ok {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown or invalid runtime name: %s", rec.Runtime))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runtimeTimeout)
	defer cancel()
	argv := append([]string{"--root", m.runtimeRoot(rec.Runtime), "--log-format", "json"}, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := shim.RuntimeMessage(stderr.Bytes()); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("%s %s: %w", rec.Runtime, args[0], err)
	}
	return nil
}
