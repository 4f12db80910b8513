package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

// Volumes is the local volume driver: a volume is <root>/<name>/_data,
// with its labels and options in <root>/<name>/meta.json.
type Volumes struct {
	root  string
	users func() map[string][]string // volume → containers mounting it
	emit  func(action events.Action, name string, attrs map[string]string)
	mu    sync.Mutex // serialises creation and removal
}

const (
	volumeDataDir  = "_data"
	volumeMetaFile = "meta.json"
	// anonymousLabel marks volumes berth made for a container (image
	// VOLUME, -v /path), as Docker marks them.
	anonymousLabel = "com.docker.volume.anonymous"
)

var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

type volumeMeta struct {
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

func newVolumes(root string, users func() map[string][]string, emit func(events.Action, string, map[string]string)) *Volumes {
	return &Volumes{root: root, users: users, emit: emit}
}

func noSuchVolume(name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("get %s: no such volume", name))
}

// Path is where the volume's content lives.
func (v *Volumes) Path(name string) string { return filepath.Join(v.root, name, volumeDataDir) }

// Create makes a local volume (a random name when req.Name is empty).
// Creating an existing volume returns it.
func (v *Volumes) Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver))
	}
	if len(req.DriverOpts) > 0 {
		return volume.Volume{}, errdefs.ErrInvalidArgument.WithMessage("local volume driver options (type, device, o) are not supported")
	}
	vol, _, err := v.create(req.Name, req.Labels, false)
	return vol, err
}

func (v *Volumes) create(name string, labels map[string]string, anonymous bool) (volume.Volume, bool, error) {
	if name == "" {
		name = newID()
		anonymous = true
	}
	if !validVolumeName.MatchString(name) {
		return volume.Volume{}, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if vol, err := v.get(name); err == nil {
		return vol, false, nil
	}
	meta := volumeMeta{CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: map[string]string{}}
	for k, val := range labels {
		meta.Labels[k] = val
	}
	if anonymous {
		meta.Labels[anonymousLabel] = ""
	}
	dir := filepath.Join(v.root, name)
	if err := os.MkdirAll(filepath.Join(dir, volumeDataDir), 0o755); err != nil {
		return volume.Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, _ := json.Marshal(meta)
	if err := writeFileAtomic(filepath.Join(dir, volumeMetaFile), b, 0o600); err != nil {
		os.RemoveAll(dir)
		return volume.Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if v.emit != nil {
		v.emit(events.ActionCreate, name, map[string]string{"driver": "local"})
	}
	vol, err := v.get(name)
	return vol, true, err
}

func (v *Volumes) get(name string) (volume.Volume, error) {
	if !validVolumeName.MatchString(name) {
		return volume.Volume{}, noSuchVolume(name)
	}
	dir := filepath.Join(v.root, name)
	st, err := os.Stat(filepath.Join(dir, volumeDataDir))
	if err != nil || !st.IsDir() {
		return volume.Volume{}, noSuchVolume(name)
	}
	meta := volumeMeta{CreatedAt: st.ModTime().UTC()}
	if b, err := os.ReadFile(filepath.Join(dir, volumeMetaFile)); err == nil {
		json.Unmarshal(b, &meta)
	}
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	if meta.Options == nil {
		meta.Options = map[string]string{}
	}
	return volume.Volume{
		CreatedAt:  meta.CreatedAt.Format(time.RFC3339),
		Driver:     "local",
		Labels:     meta.Labels,
		Mountpoint: filepath.Join(dir, volumeDataDir),
		Name:       name,
		Options:    meta.Options,
		Scope:      "local",
	}, nil
}

// Get returns one volume (404 `get X: no such volume`).
func (v *Volumes) Get(ctx context.Context, name string) (volume.Volume, error) {
	return v.get(name)
}

func (v *Volumes) names() ([]string, error) {
	entries, err := os.ReadDir(v.root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && validVolumeName.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List returns the volumes matching filters (name, label, dangling,
// driver).
func (v *Volumes) List(ctx context.Context, filters map[string][]string) ([]volume.Volume, error) {
	for k := range filters {
		switch k {
		case "name", "label", "dangling", "driver":
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	names, err := v.names()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	users := v.users()
	out := []volume.Volume{}
	for _, n := range names {
		vol, err := v.get(n)
		if err != nil {
			continue
		}
		if !matchVolume(vol, len(users[n]) > 0, filters) {
			continue
		}
		out = append(out, vol)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func matchVolume(vol volume.Volume, used bool, f map[string][]string) bool {
	if vs := f["name"]; len(vs) > 0 && !anyMatch(vs, func(s string) bool { return strings.Contains(vol.Name, s) }) {
		return false
	}
	if vs := f["driver"]; len(vs) > 0 && !anyMatch(vs, func(s string) bool { return s == vol.Driver }) {
		return false
	}
	if vs := f["dangling"]; len(vs) > 0 {
		want := vs[0] == "true" || vs[0] == "1"
		if want == used {
			return false
		}
	}
	for _, l := range f["label"] {
		if !matchLabel(vol.Labels, l) {
			return false
		}
	}
	return true
}

func anyMatch(vs []string, fn func(string) bool) bool {
	for _, v := range vs {
		if fn(v) {
			return true
		}
	}
	return false
}

// matchLabel matches "key" (present) or "key=value".
func matchLabel(labels map[string]string, f string) bool {
	k, val, hasVal := strings.Cut(f, "=")
	got, ok := labels[k]
	if !ok {
		return false
	}
	return !hasVal || got == val
}

// Remove deletes an unused volume. A volume some container mounts is a
// conflict (409); force only forgives a missing volume.
func (v *Volumes) Remove(ctx context.Context, name string, force bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.removeLocked(name, force)
}

func (v *Volumes) removeLocked(name string, force bool) error {
	if _, err := v.get(name); err != nil {
		if force {
			return nil
		}
		return err
	}
	if ids := v.users()[name]; len(ids) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(ids, ", ")))
	}
	if err := os.RemoveAll(filepath.Join(v.root, name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if v.emit != nil {
		v.emit(events.ActionDestroy, name, map[string]string{"driver": "local"})
	}
	return nil
}

// Prune removes unused volumes matching filters (label, label!); all
// also takes named volumes, otherwise only anonymous ones go (API 1.42
// and later; older clients expect all).
func (v *Volumes) Prune(ctx context.Context, filters map[string][]string, all bool) (volume.PruneReport, error) {
	rep := volume.PruneReport{}
	for k, vs := range filters {
		switch k {
		case "label", "label!":
		case "all":
			all = len(vs) > 0 && (vs[0] == "true" || vs[0] == "1")
		default:
			return rep, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	names, err := v.names()
	if err != nil {
		return rep, err
	}
	users := v.users()
	for _, n := range names {
		if len(users[n]) > 0 {
			continue
		}
		vol, err := v.get(n)
		if err != nil {
			continue
		}
		if _, anon := vol.Labels[anonymousLabel]; !all && !anon {
			continue
		}
		skip := false
		for _, l := range filters["label"] {
			skip = skip || !matchLabel(vol.Labels, l)
		}
		for _, l := range filters["label!"] {
			skip = skip || matchLabel(vol.Labels, l)
		}
		if skip {
			continue
		}
		size := dirSize(filepath.Join(v.root, n))
		if err := v.removeLocked(n, false); err != nil {
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, n)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// Usage lists every volume with its UsageData (size and the number of
// containers using it), for /system/df.
func (v *Volumes) Usage(ctx context.Context) ([]volume.Volume, error) {
	vols, err := v.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	users := v.users()
	for i := range vols {
		vols[i].UsageData = &volume.UsageData{Size: v.Size(vols[i].Name), RefCount: int64(len(users[vols[i].Name]))}
	}
	return vols, nil
}

// Size is the disk usage of a volume's content.
func (v *Volumes) Size(name string) int64 { return dirSize(v.Path(name)) }

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// isEmptyDir reports whether dir has no entries.
func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// copyUp copies the content of src (a directory in the container's
// rootfs) into the empty volume directory dst, as Docker does the first
// time a volume is mounted over image content: owners, modes, times,
// xattrs, symlinks and hard links are kept, and dst takes src's own. A
// missing src or one that is not a directory leaves dst empty.
func copyUp(ctx context.Context, src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	return mount.CopyTree(ctx, src, dst)
}

// writeFileAtomic writes through a temp file and a rename, so readers see
// the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
