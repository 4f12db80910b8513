package run

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/netns"
	"github.com/berth-dev/berth/run/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Manager runs the containers of one data root.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	volumes *Volumes

	mu     sync.RWMutex
	byID   map[string]*ctr
	byName map[string]string // name (no "/") → id

	seccompMu sync.Mutex
	seccomp   map[string]bool // runtime path → supports seccomp

	// shuttingDown is set when Shutdown begins: exits from then on do
	// not trigger restart policies. closing is set once containers are
	// dealt with: monitors then leave their shims alone.
	shuttingDown atomic.Bool
	closing      atomic.Bool
	bg           sync.WaitGroup // monitors, restarts
	monMu        sync.Mutex
	monitors     map[*shim.Conn]struct{}
	launcher     *shim.Launcher

	// gen changes whenever a container is added, removed or changed.
	gen atomic.Uint64

	// machineMemory is the host's total memory in bytes (0 if unknown),
	// read once: it does not change under a running daemon.
	machineMemory func() uint64
}

// New opens the containers of cfg.Root and reconciles their records with
// what is really there: a container whose shim is alive is running (or,
// without LiveRestore, is stopped now), one whose shim is gone exited
// with the code its shim recorded. Layers and directories that no record
// names (a crash during create) are removed.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, cfg.VolumesRoot} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.ExecRoot, 0o711); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	m := &Manager{
		cfg:      cfg,
		log:      slog.Default().With("component", "run"),
		byID:     map[string]*ctr{},
		byName:   map[string]string{},
		seccomp:  map[string]bool{},
		monitors: map[*shim.Conn]struct{}{},
		launcher: shim.NewLauncher(cfg.ShimCommand, cfg.ExecRoot, cfg.ShimSpare),

		machineMemory: sync.OnceValue(readMachineMemory),
	}
	m.volumes = newVolumes(cfg.VolumesRoot, m.volumeUsers, m.emitVolume)
	recs, err := m.loadRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	for _, r := range recs {
		c := newCtr(r, &m.gen)
		c.saved = r
		m.byID[r.ID] = c
		// Two records with one name: the older is a removal a crash
		// interrupted (the name was free again once its container was
		// gone), which restore finishes below.
		if other, ok := m.byName[r.Name]; ok && m.byID[other].view().Created.After(r.Created) {
			continue
		}
		m.byName[r.Name] = r.ID
	}
	if err := m.sweep(ctx); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	var wg sync.WaitGroup
	// Over a copy: a restore may finish a removal, which deletes from
	// the map.
	for _, c := range m.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.restore(ctx, c)
		}()
	}
	wg.Wait()
	for _, c := range m.all() {
		if m.restartAtBoot(c.view()) {
			m.bg.Add(1)
			go func() {
				defer m.bg.Done()
				if err := m.startLockedOp(context.WithoutCancel(ctx), c, startAtBoot); err != nil {
					m.log.Warn("restart policy: start at boot", "container", c.id, "err", err)
				}
			}()
		}
	}
	return m, nil
}

// Volumes is the volume service of this data root.
func (m *Manager) Volumes() *Volumes { return m.volumes }

// sweep removes what a crash left without a record: container layers,
// container directories and bundles.
func (m *Manager) sweep(ctx context.Context) error {
	rws, err := m.cfg.Store.RWLayers(ctx)
	if err != nil {
		return err
	}
	for _, rw := range rws {
		if _, ok := m.byID[rw.Container]; !ok {
			if err := m.cfg.Store.RemoveRWLayer(ctx, rw.Container); err != nil {
				m.log.Warn("remove orphaned container layer", "container", rw.Container, "err", err)
			}
		}
	}
	for _, dir := range []string{m.cfg.Root, m.cfg.ExecRoot} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() || len(e.Name()) != 64 {
				continue
			}
			if _, ok := m.byID[e.Name()]; ok {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if dir == m.cfg.ExecRoot {
				// A shim still serving an unknown container is left
				// alone; only dead bundles go.
				if _, err := (shim.Client{Bundle: p}).Call(ctx, shim.Request{Op: shim.OpState}); err == nil {
					continue
				}
				netns.Remove(ctx, filepath.Join(p, netnsName))
			}
			os.RemoveAll(p)
		}
	}
	return nil
}

// restore reconciles one record with reality at startup.
func (m *Manager) restore(ctx context.Context, c *ctr) {
	rec := c.view()
	bundle := m.bundleDir(rec.ID)
	switch {
	case rec.State.Status == container.StateRemoving || rec.State.Status == container.StateDead:
		c.op.Lock()
		if err := m.removeLocked(ctx, c, false); err != nil {
			m.log.Warn("finish removal", "container", rec.ID, "err", err)
		}
		c.op.Unlock()
		return
	case !rec.State.running() && !rec.State.Restarting:
		if !m.recoverRun(ctx, c) {
			return
		}
		rec = c.view()
	}
	sc := shim.Client{Bundle: bundle}
	wait, err := sc.Open(ctx, shim.Request{Op: shim.OpWait})
	if err != nil {
		// The shim is gone: the container exited while berthd was away
		// (or the shim died with it, exit unknown).
		e, ferr := shim.ReadExitFile(bundle)
		if ferr != nil {
			m.forceDeleteRuntime(rec)
			e = shim.Exit{ExitCode: 255, ExitedAt: time.Now().UTC()}
		}
		c.op.Lock()
		m.finishRun(ctx, c, e, false)
		c.op.Unlock()
		return
	}
	st, err := sc.Call(ctx, shim.Request{Op: shim.OpState})
	if err == nil && st.Pid > 0 && (st.Pid != rec.State.Pid || st.ShimPid != rec.State.ShimPid) {
		rec = c.update(func(r *record) { r.State.Pid, r.State.ShimPid = st.Pid, st.ShimPid })
	}
	// Take the mount reference this run holds in this process.
	if _, err := m.cfg.Store.MountRW(ctx, rec.ID); err != nil {
		m.log.Warn("remount running container", "container", rec.ID, "err", err)
	}
	if rec.State.Restarting {
		rec = c.update(func(r *record) { r.State.Restarting = false; r.State.Status = container.StateRunning })
		m.save(ctx, c)
	}
	m.reconcilePaused(ctx, c)
	c.attach.resume(sc)
	m.startMonitor(c, wait)
	if !m.cfg.LiveRestore {
		// Containers do not outlive a berthd without live restore: this
		// one survived a crash, so stop it now as shutdown would have.
		if err := m.stop(ctx, c, nil, false); err != nil {
			m.log.Warn("stop container left running", "container", rec.ID, "err", err)
		}
	}
}

// recoverRun deals with a bundle left beside a record that says the
// container is not running. A bundle outlives a run only until its exit
// is recorded, so it is a run whose start or exit berthd did not live to
// record (a start is recorded in the background): its shim, or the exit
// file the shim left, tells what became of it. A run still going is
// adopted (recoverRun returns true: the caller reconnects to it), an
// ended one gets its exit recorded, a shim that never started its
// container is ended.
func (m *Manager) recoverRun(ctx context.Context, c *ctr) (running bool) {
	rec := c.view()
	bundle := m.bundleDir(rec.ID)
	if _, err := os.Stat(bundle); err != nil {
		return false
	}
	st, err := shim.Client{Bundle: bundle}.Call(ctx, shim.Request{Op: shim.OpState})
	if err == nil && st.Status == shim.StatusRunning && st.Pid > 0 {
		c.update(func(r *record) {
			r.State = containerState{Status: container.StateRunning, Pid: st.Pid, ShimPid: st.ShimPid, StartedAt: st.StartedAt}
		})
		if err := m.save(ctx, c); err != nil {
			m.log.Warn("record adopted run", "container", rec.ID, "err", err)
		}
		return true
	}
	var e shim.Exit
	switch {
	case err == nil && st.Exit != nil:
		e = *st.Exit
		c.update(func(r *record) { r.State.ShimPid = st.ShimPid })
	case err == nil:
		// Started for a start that never reached the runtime: nothing
		// runs under it.
		if st.ShimPid > 0 && isShimOf(st.ShimPid, bundle) {
			unix.Kill(st.ShimPid, unix.SIGKILL)
		}
		m.cleanupRun(ctx, rec.ID, st.ShimPid)
		return false
	default:
		fe, ferr := shim.ReadExitFile(bundle)
		if ferr != nil {
			m.cleanupRun(ctx, rec.ID, 0)
			return false
		}
		e = fe
	}
	c.op.Lock()
	defer c.op.Unlock()
	if e.ExitedAt.Equal(rec.State.FinishedAt) {
		// Recorded already; only the cleanup was left to do.
		m.cleanupRun(ctx, rec.ID, c.view().State.ShimPid)
		return false
	}
	m.finishRun(ctx, c, e, false)
	return false
}

// restartAtBoot tells whether a container's restart policy asks for it to
// run again when berthd starts.
func (m *Manager) restartAtBoot(rec *record) bool {
	if rec.State.running() || rec.State.Status == container.StateRemoving || rec.State.Status == container.StateDead {
		return false
	}
	p := rec.HostConfig.RestartPolicy
	switch {
	case p.IsAlways():
		return true
	case p.IsUnlessStopped():
		return !rec.ManuallyStopped
	case p.IsOnFailure():
		return !rec.ManuallyStopped && rec.State.ExitCode != 0 && !rec.State.StartedAt.IsZero() &&
			(p.MaximumRetryCount == 0 || rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// Shutdown ends the Manager. Without LiveRestore it stops every running
// container first (stop signal, then SIGKILL after its stop timeout), as
// dockerd does; with it, containers keep running under their shims for
// the next Manager to reconnect to.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shuttingDown.Store(true)
	if !m.cfg.LiveRestore {
		var wg sync.WaitGroup
		for _, c := range m.all() {
			if !c.view().State.running() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.stop(ctx, c, nil, false); err != nil {
					m.log.Warn("stop at shutdown", "container", c.id, "err", err)
				}
			}()
		}
		wg.Wait()
	}
	m.closing.Store(true)
	// The spare shim goes now; shims of running containers stay.
	m.launcher.Close()
	m.monMu.Lock()
	for sc := range m.monitors {
		sc.Close()
	}
	m.monMu.Unlock()
	done := make(chan struct{})
	go func() { m.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) all() []*ctr {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*ctr, 0, len(m.byID))
	for _, c := range m.byID {
		out = append(out, c)
	}
	return out
}

func (m *Manager) bundleDir(id string) string { return filepath.Join(m.cfg.ExecRoot, id) }

func (m *Manager) containerDir(id string) string { return filepath.Join(m.cfg.Root, id) }

func (m *Manager) runtimeRoot(name string) string {
	if name == "runc" {
		return filepath.Join(m.cfg.ExecRoot, "runc")
	}
	return filepath.Join(m.cfg.ExecRoot, "runtime-"+name)
}

func errNoSuchContainer(ref string) error {
	return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
}

// lookup resolves a container by full ID, name (with or without its "/")
// or unique ID prefix, in Docker's order.
func (m *Manager) lookup(ref string) (*ctr, error) {
	if ref == "" {
		return nil, errNoSuchContainer(ref)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c, ok := m.byID[ref]; ok {
		return c, nil
	}
	if id, ok := m.byName[strings.TrimPrefix(ref, "/")]; ok {
		if c, ok := m.byID[id]; ok {
			return c, nil
		}
	}
	var found *ctr
	for id, c := range m.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("multiple IDs found with provided prefix: " + ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(ref)
	}
	return found, nil
}

// Exists reports whether ref names a container.
func (m *Manager) Exists(ref string) bool {
	_, err := m.lookup(ref)
	return err == nil
}

// ImageUsers answers chain's question of which containers use which
// images (for image removal conflicts); pass it with chain.WithImageUsers.
func (m *Manager) ImageUsers(ctx context.Context) map[digest.Digest][]chain.ImageUser {
	out := map[digest.Digest][]chain.ImageUser{}
	for _, c := range m.all() {
		r := c.view()
		out[r.ImageID] = append(out[r.ImageID], chain.ImageUser{ContainerID: r.ID, Running: r.State.running()})
	}
	return out
}

func (m *Manager) emit(action events.Action, rec *record, extra map[string]string) {
	if m.cfg.Events == nil {
		return
	}
	attrs := make(map[string]string, len(rec.Config.Labels)+2+len(extra))
	for k, v := range rec.Config.Labels {
		attrs[k] = v
	}
	attrs["image"] = rec.Config.Image
	attrs["name"] = rec.Name
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	m.cfg.Events(Event{
		Type:     events.ContainerEventType,
		Action:   action,
		Actor:    events.Actor{ID: rec.ID, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}

func (m *Manager) emitVolume(action events.Action, name string, attrs map[string]string) {
	if m.cfg.Events == nil {
		return
	}
	now := time.Now()
	m.cfg.Events(Event{
		Type:     events.VolumeEventType,
		Action:   action,
		Actor:    events.Actor{ID: name, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}

// volumeUsers lists, per volume name, the containers that mount it.
func (m *Manager) volumeUsers() map[string][]string {
	out := map[string][]string{}
	for _, c := range m.all() {
		r := c.view()
		for _, mp := range r.Mounts {
			if mp.Type == mountTypeVolume && mp.Name != "" {
				out[mp.Name] = append(out[mp.Name], r.ID)
			}
		}
	}
	return out
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func itoa(i int) string { return strconv.Itoa(i) }
