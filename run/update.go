package run

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Update changes a container's resource limits and restart policy, as
// dockerd's update does: the fields set (non-zero) replace the recorded
// ones, the record is saved, and a running (or paused) container gets
// the new limits from its runtime at once (runc update); a stopped one
// gets them at its next start. The request is validated as create's host
// config is.
func (m *Manager) Update(ctx context.Context, ref string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	resp := container.UpdateResponse{Warnings: []string{}}
	c, err := m.lookup(ref)
	if err != nil {
		return resp, err
	}
	req := cfg.Resources
	// Both 0 and negative values ask for no pids limit.
	if req.PidsLimit != nil && *req.PidsLimit <= 0 {
		var unlimited int64
		req.PidsLimit = &unlimited
	}
	if cfg.RestartPolicy.Name != "" {
		if err := container.ValidateRestartPolicy(cfg.RestartPolicy); err != nil {
			return resp, invalid("%v", err)
		}
	}

	c.op.Lock()
	defer c.op.Unlock()
	rec := c.view()
	cannot := func(err error) error {
		return fmt.Errorf("Cannot update container %s: %w", rec.ID, err)
	}
	if c.markedForRemoval(rec) {
		return resp, cannot(errdefs.ErrConflict.WithMessage(`container is marked for removal and cannot be "update"`))
	}

	// Create's validation, on the request: a memory swap given alone
	// is checked against the memory limit the container has.
	check := req
	if check.Memory == 0 {
		check.Memory = rec.HostConfig.Memory
	}
	w, err := checkResources(&check)
	if err != nil {
		return resp, err
	}
	resp.Warnings = append(resp.Warnings, w...)

	hc := clone(rec.HostConfig)
	if err := mergeUpdate(hc, req, cfg.RestartPolicy); err != nil {
		return resp, cannot(err)
	}
	old := rec
	rec = c.update(func(r *record) { r.HostConfig = hc })
	if err := m.save(ctx, c); err != nil {
		c.update(func(r *record) { r.HostConfig = old.HostConfig })
		return resp, cannot(err)
	}
	// A stopped or restarting container takes the limits at its next
	// start; a running one needs them now.
	if rec.State.running() && !rec.State.Restarting {
		// Only what the update sets: the runtime leaves the rest as it is.
		res, err := json.Marshal(linuxResources(req))
		if err != nil {
			return resp, cannot(err)
		}
		if err := m.runRuntime(ctx, rec, res, "update", "--resources", "-", rec.ID); err != nil {
			c.update(func(r *record) { r.HostConfig = old.HostConfig })
			if serr := m.save(ctx, c); serr != nil {
				m.log.Warn("restore host config after failed update", "container", rec.ID, "err", serr)
			}
			return resp, cannot(err)
		}
	}
	m.emit(events.ActionUpdate, rec, nil)
	return resp, nil
}

// mergeUpdate applies the set fields of an update to hc, refusing, as
// dockerd does, a CPU limit of the other kind than the one set, a memory
// limit above the swap limit already set, and a restart policy for an
// AutoRemove container.
func mergeUpdate(hc *container.HostConfig, r container.Resources, policy container.RestartPolicy) error {
	cur := &hc.Resources
	conflict := func(msg string) error { return errdefs.ErrConflict.WithMessage(msg) }
	switch {
	case r.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case r.NanoCPUs > 0 && cur.CPUQuota > 0:
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case r.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case r.CPUQuota > 0 && cur.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	setIf(&cur.BlkioWeight, r.BlkioWeight)
	setIf(&cur.CPUShares, r.CPUShares)
	setIf(&cur.NanoCPUs, r.NanoCPUs)
	setIf(&cur.CPUPeriod, r.CPUPeriod)
	setIf(&cur.CPUQuota, r.CPUQuota)
	setIf(&cur.CpusetCpus, r.CpusetCpus)
	setIf(&cur.CpusetMems, r.CpusetMems)
	if r.Memory != 0 {
		if r.Memory > cur.MemorySwap && r.MemorySwap == 0 {
			return conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		cur.Memory = r.Memory
	}
	setIf(&cur.MemorySwap, r.MemorySwap)
	setIf(&cur.MemoryReservation, r.MemoryReservation)
	setIf(&cur.CPURealtimePeriod, r.CPURealtimePeriod)
	setIf(&cur.CPURealtimeRuntime, r.CPURealtimeRuntime)
	if r.PidsLimit != nil {
		cur.PidsLimit = r.PidsLimit
	}
	if policy.Name != "" {
		if hc.AutoRemove && !policy.IsNone() {
			return conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = policy
	}
	return nil
}

// setIf sets *dst to v when v is set (non-zero): an update's unset
// fields leave the recorded ones alone.
func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}
