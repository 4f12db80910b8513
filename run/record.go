package run

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/run/shim"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
)

// record is what berth keeps about a container, stored as JSON at
// containers/<id> in the metadata index. Records are copied on write:
// a *record handed out is never modified again, so readers (List,
// Inspect) use snapshots without locks.
type record struct {
	ID              string                `json:"id"`
	Name            string                `json:"name"` // without the leading "/"
	Created         time.Time             `json:"created"`
	Path            string                `json:"path"`
	Args            []string              `json:"args"`
	Config          *container.Config     `json:"config"`
	HostConfig      *container.HostConfig `json:"hostConfig"`
	ImageID         digest.Digest         `json:"imageID"`
	Driver          string                `json:"driver"`
	GraphDriverData map[string]string     `json:"graphDriverData,omitempty"`
	Mounts          []mountPoint          `json:"mounts,omitempty"`
	State           containerState        `json:"state"`
	RestartCount    int                   `json:"restartCount,omitempty"`
	// ManuallyStopped is set by stop and kill: restart policies other
	// than "always" leave such a container alone.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// Runtime is the resolved runtime name.
	Runtime string `json:"runtime"`
	// Log is the resolved log configuration.
	Log            logSettings `json:"log"`
	LogPath        string      `json:"logPath,omitempty"`
	HostnamePath   string      `json:"hostnamePath"`
	HostsPath      string      `json:"hostsPath"`
	ResolvConfPath string      `json:"resolvConfPath"`
}

type containerState struct {
	Status     container.ContainerState `json:"status"`
	Pid        int                      `json:"pid,omitempty"`
	ExitCode   int                      `json:"exitCode"`
	Error      string                   `json:"error,omitempty"`
	StartedAt  time.Time                `json:"startedAt"`
	FinishedAt time.Time                `json:"finishedAt"`
	OOMKilled  bool                     `json:"oomKilled,omitempty"`
	// Restarting is set between an exit and the restart its policy
	// asks for.
	Restarting bool `json:"restarting,omitempty"`
	// Paused is set while the container's cgroup is frozen.
	Paused bool `json:"paused,omitempty"`
	// ShimPid is the pid of the run's shim.
	ShimPid int `json:"shimPid,omitempty"`
}

func (s containerState) running() bool { return s.Status == container.StateRunning }

// ctr is a container in memory.
type ctr struct {
	id string
	// op serialises the long lifecycle operations (start, exit handling,
	// remove); stop and kill do not take it so they never wait behind a
	// start or another stop.
	op sync.Mutex

	mu      sync.Mutex // guards rec and the fields below
	rec     *record
	exitCh  chan struct{} // closed when the current run ends; then replaced
	removed chan struct{} // closed when the container is gone
	// exitErr is the error of the last failed start, for waiters.
	exitErr string
	monitor *shim.Conn // the shim's wait connection while running
	// removing marks a Remove under way.
	removing bool
	// backoff is the restart policy's current delay.
	backoff time.Duration

	snap   atomic.Pointer[record]
	gen    *atomic.Uint64
	attach *attachHub

	// saveMu serialises the writes of the record (save, deleteRecord);
	// saved is the snapshot last written, deleted is set once the record
	// is gone from the index.
	saveMu  sync.Mutex
	saved   *record
	deleted bool
}

// newCtr makes the in-memory container; gen is the Manager's generation,
// bumped by every change of the record.
func newCtr(rec *record, gen *atomic.Uint64) *ctr {
	c := &ctr{id: rec.ID, rec: rec, gen: gen, exitCh: make(chan struct{}), removed: make(chan struct{}), attach: newAttachHub()}
	c.snap.Store(rec)
	return c
}

// view is the container's current snapshot.
func (c *ctr) view() *record { return c.snap.Load() }

// update applies fn to a copy of the record and publishes the copy. fn
// must replace, never modify in place, the slices and maps it changes.
func (c *ctr) update(fn func(r *record)) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := *c.rec
	fn(&n)
	c.rec = &n
	c.snap.Store(&n)
	c.gen.Add(1)
	return &n
}

func (c *ctr) exitChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitCh
}

// signalExit wakes everyone waiting for the current run to end.
func (c *ctr) signalExit(errMsg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exitErr = errMsg
	close(c.exitCh)
	c.exitCh = make(chan struct{})
}

// save writes the container's current snapshot to the index. The writes
// of one container are serialised and each writes the newest snapshot,
// so a slow writer never puts an older state over a newer one, and a
// snapshot already written is not written again.
func (m *Manager) save(ctx context.Context, c *ctr) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	rec := c.view()
	if c.deleted || rec == c.saved {
		return nil
	}
	if err := m.persist(ctx, rec); err != nil {
		return err
	}
	c.saved = rec
	return nil
}

// saveSoon saves in the background, for a state a crash cannot lose: a
// run's shim (or the exit file it leaves) tells a restarted berthd that
// the run started, so a start need not wait for the disk (New adopts
// such runs). Saves that follow wait for it, and an exit coming first
// makes it write the exit instead.
func (m *Manager) saveSoon(c *ctr) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := m.save(context.Background(), c); err != nil {
			m.log.Warn("record container", "container", c.id, "err", err)
		}
	}()
}

// deleteRecord removes the container's record from the index; saves that
// come later do nothing.
func (m *Manager) deleteRecord(ctx context.Context, c *ctr) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	err := m.cfg.Store.CAS().Index.Update(context.WithoutCancel(ctx), func(tx *cas.Tx) error {
		return tx.Containers().Delete(c.id)
	})
	if err != nil {
		return fmt.Errorf("remove container %s: %w", c.id, err)
	}
	c.deleted = true
	return nil
}

// persist writes rec as it is; save is the way for a container in memory.
func (m *Manager) persist(ctx context.Context, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", rec.ID, err)
	}
	err = m.cfg.Store.CAS().Index.Update(context.WithoutCancel(ctx), func(tx *cas.Tx) error {
		return tx.Containers().Put(rec.ID, b)
	})
	if err != nil {
		return fmt.Errorf("save container %s: %w", rec.ID, err)
	}
	return nil
}

func (m *Manager) loadRecords(ctx context.Context) ([]*record, error) {
	var recs []*record
	err := m.cfg.Store.CAS().Index.View(ctx, func(tx *cas.Tx) error {
		return tx.Containers().All(func(id string, b []byte) error {
			var r record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("container record %s: %w", id, err)
			}
			if r.Config == nil {
				r.Config = &container.Config{}
			}
			if r.HostConfig == nil {
				r.HostConfig = &container.HostConfig{}
			}
			recs = append(recs, &r)
			return nil
		})
	})
	return recs, err
}
