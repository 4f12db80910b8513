package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// RemoveOptions are the query of DELETE /containers/{id}.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// RemoveVolumes also removes the container's anonymous volumes.
	RemoveVolumes bool
}

// Remove deletes a container: its layer, directory, record and, with
// RemoveVolumes, its anonymous volumes. A running container needs Force.
func (m *Manager) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		rec := c.view()
		if rec.State.running() {
			if !opts.Force && rec.State.Paused {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", rec.ID))
			}
			if !opts.Force {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", rec.ID))
			}
			exited := c.exitChan()
			if err := m.signal(ctx, c, syscall.SIGKILL, true); err != nil && !errors.Is(err, errNotRunning) {
				return fmt.Errorf("could not kill running container %s, cannot remove: %w", rec.ID, err)
			}
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				return fmt.Errorf("could not kill running container %s, cannot remove: it did not exit", rec.ID)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.op.Lock()
		rec = c.view()
		if rec.State.running() {
			// Restarted between the kill and the lock: kill again.
			c.op.Unlock()
			if attempt > 5 {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s keeps restarting", rec.ID))
			}
			continue
		}
		c.mu.Lock()
		if c.removing {
			c.mu.Unlock()
			c.op.Unlock()
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("removal of container %s is already in progress", rec.ID))
		}
		c.mu.Unlock()
		err := m.removeLocked(ctx, c, opts.RemoveVolumes)
		c.op.Unlock()
		return err
	}
}

// removeLocked deletes a stopped container; c.op is held.
func (m *Manager) removeLocked(ctx context.Context, c *ctr, removeVolumes bool) error {
	bg := context.WithoutCancel(ctx)
	rec, err := m.markRemoving(bg, c, nil)
	if err != nil || rec == nil {
		return err
	}
	if err := m.removeFiles(bg, c, rec, 0); err != nil {
		m.markDead(bg, c)
		return err
	}
	m.forget(bg, c, rec, removeVolumes)
	return nil
}

// markRemoving marks the container as being removed, durably: the status
// survives a crash in the middle, so the next start finishes the job.
// edit, if not nil, changes the record in the same write. It returns nil
// when a removal is already under way.
func (m *Manager) markRemoving(ctx context.Context, c *ctr, edit func(r *record)) (*record, error) {
	c.mu.Lock()
	if c.removing {
		c.mu.Unlock()
		return nil, nil
	}
	c.removing = true
	c.mu.Unlock()
	rec := c.update(func(r *record) {
		if edit != nil {
			edit(r)
		}
		r.State.Status = container.StateRemoving
		r.State.Restarting = false
	})
	if err := m.save(ctx, c); err != nil {
		c.mu.Lock()
		c.removing = false
		c.mu.Unlock()
		return nil, err
	}
	return rec, nil
}

// markDead records a removal that failed half way; removing it again (or
// the next start) finishes it.
func (m *Manager) markDead(ctx context.Context, c *ctr) {
	c.update(func(r *record) { r.State.Status = container.StateDead })
	if err := m.save(ctx, c); err != nil {
		m.log.Warn("record failed removal", "container", c.id, "err", err)
	}
	c.mu.Lock()
	c.removing = false
	c.mu.Unlock()
}

// removeFiles deletes what a container marked for removal has: its run's
// leftovers (shimPid is the shim of a run that just ended, if any), its
// layer, its directory and, last, its record.
func (m *Manager) removeFiles(ctx context.Context, c *ctr, rec *record, shimPid int) error {
	m.cleanupRun(ctx, rec.ID, shimPid)
	if err := m.cfg.Store.RemoveRWLayer(ctx, rec.ID); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", rec.ID, err)
	}
	if err := os.RemoveAll(m.containerDir(rec.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.ID, err)
	}
	return m.deleteRecord(ctx, c)
}

// forget drops a container marked for removal from memory (it is gone
// for every API call from here on), removes its anonymous volumes if
// asked, and wakes whoever waits for its removal.
func (m *Manager) forget(ctx context.Context, c *ctr, rec *record, removeVolumes bool) {
	m.mu.Lock()
	delete(m.byID, rec.ID)
	if m.byName[rec.Name] == rec.ID {
		delete(m.byName, rec.Name)
	}
	m.mu.Unlock()
	m.gen.Add(1)
	if removeVolumes {
		for _, mp := range rec.Mounts {
			if mp.Type == mountTypeVolume && mp.Anonymous {
				if err := m.volumes.Remove(ctx, mp.Name, true); err != nil && !errdefs.IsConflict(err) {
					m.log.Warn("remove anonymous volume", "volume", mp.Name, "err", err)
				}
			}
		}
	}
	close(c.removed)
	m.emit(events.ActionDestroy, rec, nil)
}

// Prune removes every stopped container matching filters (label, label!,
// until) and reports what it removed.
func (m *Manager) Prune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	var rep container.PruneReport
	var until time.Time
	for k, vs := range filters {
		switch k {
		case "label", "label!":
		case "until":
			if len(vs) > 0 {
				t, err := parseTimeFilter(vs[0], time.Now())
				if err != nil {
					return rep, err
				}
				until = t
			}
		default:
			return rep, invalid("invalid filter '%s'", k)
		}
	}
	for _, c := range m.all() {
		rec := c.view()
		if rec.State.running() || rec.State.Restarting {
			continue
		}
		if !until.IsZero() && !rec.Created.Before(until) {
			continue
		}
		ok := true
		for _, l := range filters["label"] {
			ok = ok && matchLabel(rec.Config.Labels, l)
		}
		for _, l := range filters["label!"] {
			ok = ok && !matchLabel(rec.Config.Labels, l)
		}
		if !ok {
			continue
		}
		size := m.sizeRw(rec)
		if err := m.Remove(ctx, rec.ID, RemoveOptions{}); err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue
			}
			return rep, err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, rec.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	if m.cfg.Events != nil {
		now := time.Now()
		m.cfg.Events(Event{Type: events.ContainerEventType, Action: events.ActionPrune, Scope: "local",
			Actor: events.Actor{Attributes: map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)}},
			Time:  now.Unix(), TimeNano: now.UnixNano()})
	}
	return rep, nil
}

// Rename gives a container a new name.
func (m *Manager) Rename(ctx context.Context, ref, newName string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if newName == "" {
		return invalid("Neither old nor new names may be empty")
	}
	if err := checkName(newName); err != nil {
		return err
	}
	newName = strings.TrimPrefix(newName, "/")
	old := c.view().Name
	if old == newName {
		return invalid("Renaming a container with the same name as its current name")
	}
	if err := m.reserveName(&newName, c.id); err != nil {
		return err
	}
	rec := c.update(func(r *record) { r.Name = newName })
	if err := m.save(ctx, c); err != nil {
		c.update(func(r *record) { r.Name = old })
		m.releaseName(newName, c.id)
		return err
	}
	m.releaseName(old, c.id)
	m.emit(events.ActionRename, rec, map[string]string{"oldName": "/" + old})
	return nil
}
