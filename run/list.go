package run

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
)

// ListOptions are the query of GET /containers/json.
type ListOptions struct {
	All   bool
	Limit int // ≤ 0: no limit
	Size  bool
	// Filters maps a filter name to its values: status, name, id, label,
	// ancestor, exited, before, since, volume, network.
	Filters map[string][]string
}

var validStatus = map[string]bool{"created": true, "restarting": true, "running": true, "removing": true, "paused": true, "exited": true, "dead": true}

// listFilter is a ListOptions.Filters compiled once per request.
type listFilter struct {
	status    map[string]bool
	names     []*regexp.Regexp
	ids       []*regexp.Regexp
	labels    []string
	ancestors map[digest.Digest]bool
	ancRefs   map[string]bool
	exited    map[int]bool
	before    time.Time
	since     time.Time
	volumes   []string
	networks  map[string]bool
}

func (m *Manager) compileFilter(ctx context.Context, f map[string][]string) (*listFilter, error) {
	lf := &listFilter{}
	for k, vs := range f {
		switch k {
		case "status":
			lf.status = map[string]bool{}
			for _, v := range vs {
				if !validStatus[v] {
					return nil, invalid("invalid filter 'status=%s'", v)
				}
				lf.status[v] = true
			}
		case "name", "id":
			for _, v := range vs {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, invalid("invalid filter '%s=%s': %v", k, v, err)
				}
				if k == "name" {
					lf.names = append(lf.names, re)
				} else {
					lf.ids = append(lf.ids, re)
				}
			}
		case "label":
			lf.labels = vs
		case "ancestor":
			lf.ancestors, lf.ancRefs = map[digest.Digest]bool{}, map[string]bool{}
			for _, v := range vs {
				lf.ancRefs[v] = true
				if img, err := m.cfg.Store.Image(ctx, v); err == nil {
					lf.ancestors[img.ID] = true
				}
			}
		case "exited":
			lf.exited = map[int]bool{}
			for _, v := range vs {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, invalid("invalid filter 'exited=%s'", v)
				}
				lf.exited[n] = true
			}
		case "before", "since":
			for _, v := range vs {
				c, err := m.lookup(v)
				if err != nil {
					return nil, err
				}
				if k == "before" {
					lf.before = c.view().Created
				} else {
					lf.since = c.view().Created
				}
			}
		case "volume":
			lf.volumes = vs
		case "network":
			lf.networks = map[string]bool{}
			for _, v := range vs {
				lf.networks[v] = true
			}
		case "health", "isolation", "is-task", "expose", "publish":
			// Nothing here has health checks, isolation, tasks or
			// published ports yet; these match what dockerd would show
			// for such containers only when empty.
		default:
			return nil, invalid("invalid filter '%s'", k)
		}
	}
	return lf, nil
}

func (lf *listFilter) match(m *Manager, r *record) bool {
	if lf.status != nil && !lf.status[string(statusOf(r))] {
		return false
	}
	if len(lf.names) > 0 && !anyRe(lf.names, "/"+r.Name) {
		return false
	}
	if len(lf.ids) > 0 && !anyRe(lf.ids, r.ID) {
		return false
	}
	for _, l := range lf.labels {
		if !matchLabel(r.Config.Labels, l) {
			return false
		}
	}
	if lf.ancestors != nil && !lf.ancRefs[r.Config.Image] && !m.descendsFrom(r.ImageID, lf.ancestors) {
		return false
	}
	if lf.exited != nil && (statusOf(r) != container.StateExited || !lf.exited[r.State.ExitCode]) {
		return false
	}
	if !lf.before.IsZero() && !r.Created.Before(lf.before) {
		return false
	}
	if !lf.since.IsZero() && !r.Created.After(lf.since) {
		return false
	}
	if len(lf.volumes) > 0 {
		found := false
		for _, v := range lf.volumes {
			for _, mp := range r.Mounts {
				found = found || mp.Name == v || mp.Destination == v || (mp.Type == mountTypeBind && mp.Source == v)
			}
		}
		if !found {
			return false
		}
	}
	if lf.networks != nil && !lf.networks[networkName(r.HostConfig.NetworkMode)] {
		return false
	}
	return true
}

func anyRe(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// descendsFrom reports whether image id is one of ancestors or built on
// one of them.
func (m *Manager) descendsFrom(id digest.Digest, ancestors map[digest.Digest]bool) bool {
	for i := 0; id != "" && i < 256; i++ {
		if ancestors[id] {
			return true
		}
		img, err := m.cfg.Store.Image(context.Background(), id.String())
		if err != nil {
			return false
		}
		id = img.Parent
	}
	return false
}

func statusOf(r *record) container.ContainerState {
	if r.State.Restarting {
		return container.StateRestarting
	}
	if r.State.Status == "" {
		return container.StateCreated
	}
	if r.State.Paused && r.State.running() {
		return container.StatePaused
	}
	return r.State.Status
}

// statusText is ps's Status column, worded as dockerd words it.
func statusText(r *record, now time.Time) string {
	switch statusOf(r) {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(r.State.StartedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(r.State.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", r.State.ExitCode, units.HumanDuration(now.Sub(r.State.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	if r.State.StartedAt.IsZero() {
		return "Created"
	}
	if r.State.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", r.State.ExitCode, units.HumanDuration(now.Sub(r.State.FinishedAt)))
}

func networkName(mode container.NetworkMode) string {
	switch {
	case mode == "" || mode == network.NetworkDefault:
		return network.NetworkBridge
	case mode.IsContainer():
		return ""
	}
	return string(mode)
}

func commandText(r *record) string {
	if len(r.Args) == 0 {
		return r.Path
	}
	return r.Path + " " + strings.Join(r.Args, " ")
}

// Generation changes whenever a container is created, removed or changed,
// so callers can keep what they derived from List until then; only the
// Status text changes with time alone.
func (m *Manager) Generation() uint64 { return m.gen.Load() }

// List returns containers as ps shows them, newest first. It reads
// snapshots only, so it never waits behind a running operation.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	lf, err := m.compileFilter(ctx, opts.Filters)
	if err != nil {
		return nil, err
	}
	all := opts.All || lf.status != nil || opts.Limit > 0
	recs := make([]*record, 0, 16)
	for _, c := range m.all() {
		r := c.view()
		// Paused containers are running ones, as in dockerd.
		if st := statusOf(r); !all && st != container.StateRunning && st != container.StatePaused && st != container.StateRestarting {
			continue
		}
		if !lf.match(m, r) {
			continue
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Created.Equal(recs[j].Created) {
			return recs[i].ID > recs[j].ID
		}
		return recs[i].Created.After(recs[j].Created)
	})
	if opts.Limit > 0 && len(recs) > opts.Limit {
		recs = recs[:opts.Limit]
	}
	now := time.Now()
	out := make([]container.Summary, 0, len(recs))
	for _, r := range recs {
		s := container.Summary{
			ID:      r.ID,
			Names:   []string{"/" + r.Name},
			Image:   r.Config.Image,
			ImageID: r.ImageID.String(),
			Command: commandText(r),
			Created: r.Created.Unix(),
			Ports:   []container.PortSummary{},
			Labels:  maps.Clone(r.Config.Labels),
			State:   statusOf(r),
			Status:  statusText(r, now),
			Mounts:  apiMountPoints(r.Mounts),
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
		s.NetworkSettings = &container.NetworkSettingsSummary{Networks: networksOf(r)}
		if opts.Size {
			s.SizeRw = m.sizeRw(r)
			s.SizeRootFs = s.SizeRw + m.imageSize(ctx, r)
		}
		out = append(out, s)
	}
	return out, nil
}

func networksOf(r *record) map[string]*network.EndpointSettings {
	name := networkName(r.HostConfig.NetworkMode)
	if name == "" {
		return map[string]*network.EndpointSettings{}
	}
	return map[string]*network.EndpointSettings{name: {}}
}

func (m *Manager) imageSize(ctx context.Context, r *record) int64 {
	img, err := m.cfg.Store.Image(ctx, r.ImageID.String())
	if err != nil {
		return 0
	}
	return img.Size
}

// sizeRw is the size of what the container wrote to its layer.
func (m *Manager) sizeRw(r *record) int64 {
	dir := r.GraphDriverData["UpperDir"]
	if dir == "" {
		dir = r.GraphDriverData["Dir"]
	}
	if dir == "" {
		return 0
	}
	return dirSize(dir)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect returns a container as GET /containers/{id}/json shows it (API
// 1.41 shape). It reads a snapshot and never blocks behind an operation;
// the result is the caller's to change.
func (m *Manager) Inspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	r := c.view()
	st := statusOf(r)
	running := st == container.StateRunning || st == container.StatePaused
	resp := container.InspectResponse{
		ID:      r.ID,
		Created: timeString(r.Created),
		Path:    r.Path,
		Args:    append([]string{}, r.Args...),
		State: &container.State{
			Status:     st,
			Running:    running || st == container.StateRestarting,
			Paused:     st == container.StatePaused,
			Restarting: st == container.StateRestarting,
			OOMKilled:  r.State.OOMKilled,
			Dead:       st == container.StateDead,
			Pid:        r.State.Pid,
			ExitCode:   r.State.ExitCode,
			Error:      r.State.Error,
			StartedAt:  timeString(r.State.StartedAt),
			FinishedAt: timeString(r.State.FinishedAt),
		},
		Image:          r.ImageID.String(),
		ResolvConfPath: r.ResolvConfPath,
		HostnamePath:   r.HostnamePath,
		HostsPath:      r.HostsPath,
		LogPath:        r.LogPath,
		Name:           "/" + r.Name,
		RestartCount:   r.RestartCount,
		Driver:         r.Driver,
		Platform:       "linux",
		HostConfig:     clone(r.HostConfig),
		GraphDriver:    &storage.DriverData{Name: r.Driver, Data: maps.Clone(r.GraphDriverData)},
		Mounts:         apiMountPoints(r.Mounts),
		ExecIDs:        c.execIDs(),
		Config:         clone(r.Config),
		NetworkSettings: &container.NetworkSettings{
			Networks: networksOf(r),
		},
	}
	if running && !r.HostConfig.NetworkMode.IsHost() && !r.HostConfig.NetworkMode.IsContainer() {
		resp.NetworkSettings.SandboxKey = m.bundleDir(r.ID) + "/" + netnsName
	}
	if size {
		rw := m.sizeRw(r)
		root := rw + m.imageSize(ctx, r)
		resp.SizeRw, resp.SizeRootFs = &rw, &root
	}
	return resp, nil
}

// parseTimeFilter reads a since/until value: a Unix time (with optional
// fraction), an RFC 3339 time, or a duration before now ("10m").
func parseTimeFilter(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if ok {
				f := (frac + "000000000")[:9]
				if n, err := strconv.ParseInt(f, 10, 64); err == nil {
					ns = n
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value %s as a time", v))
}
