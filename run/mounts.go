package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
)

const (
	mountTypeBind   = mount.TypeBind
	mountTypeVolume = mount.TypeVolume
	mountTypeTmpfs  = mount.TypeTmpfs
)

// mountPoint is one resolved mount of a container.
type mountPoint struct {
	Type        mount.Type        `json:"type"`
	Name        string            `json:"name,omitempty"`   // volume name
	Source      string            `json:"source,omitempty"` // host path
	Destination string            `json:"destination"`
	Driver      string            `json:"driver,omitempty"`
	Mode        string            `json:"mode,omitempty"` // as the user wrote it
	RW          bool              `json:"rw"`
	Propagation mount.Propagation `json:"propagation,omitempty"`
	// CopyData fills an empty volume with the image's content at its
	// destination when the container starts.
	CopyData     bool   `json:"copyData,omitempty"`
	Anonymous    bool   `json:"anonymous,omitempty"`
	NonRecursive bool   `json:"nonRecursive,omitempty"`
	Subpath      string `json:"subpath,omitempty"`
	// TmpfsData is the tmpfs mount data (size=…,mode=…).
	TmpfsData string `json:"tmpfsData,omitempty"`
	// CreateSource makes a missing bind source directory (-v binds do,
	// --mount binds do not).
	CreateSource bool `json:"createSource,omitempty"`
}

func invalidSpec(raw string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s'", raw))
}

func invalidMountConfig(typ mount.Type, err string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type %q: %s", typ, err))
}

var (
	rwModes          = map[string]bool{"rw": true, "ro": true}
	labelModes       = map[string]bool{"z": true, "Z": true}
	consistencyModes = map[string]bool{"consistent": true, "cached": true, "delegated": true}
	propagationModes = map[string]bool{"private": true, "rprivate": true, "slave": true, "rslave": true, "shared": true, "rshared": true}
)

// validMode is Docker's check of a -v mode string: at most one of each
// kind of option.
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case rwModes[o]:
			rw++
		case labelModes[o]:
			label++
		case propagationModes[o]:
			prop++
		case o == "nocopy":
			cp++
		case consistencyModes[o]:
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

func checkDestination(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
	}
	if path.Clean(p) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	return nil
}

// parseBind reads one -v/Binds entry: [source:]destination[:mode].
func parseBind(raw string) (mountPoint, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return mountPoint{}, invalidSpec(raw)
	}
	var src, dst, mode string
	switch len(arr) {
	case 1:
		dst = arr[0]
	case 2:
		if validMode(arr[1]) {
			return mountPoint{}, invalidSpec(raw)
		}
		src, dst = arr[0], arr[1]
	case 3:
		src, dst, mode = arr[0], arr[1], arr[2]
	default:
		return mountPoint{}, invalidSpec(raw)
	}
	if !validMode(mode) {
		return mountPoint{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mode: %s", mode))
	}
	if err := checkDestination(dst); err != nil {
		return mountPoint{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume specification: '%s': %v", raw, err))
	}
	mp := mountPoint{Destination: path.Clean(dst), Mode: mode, RW: true}
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro":
			mp.RW = false
		case propagationModes[o]:
			mp.Propagation = mount.Propagation(o)
		}
	}
	switch {
	case path.IsAbs(src):
		mp.Type = mountTypeBind
		mp.Source = path.Clean(src)
		mp.CreateSource = true
		if mp.Propagation == "" {
			mp.Propagation = mount.PropagationRPrivate
		}
	default:
		mp.Type = mountTypeVolume
		mp.Driver = "local"
		mp.Name = src
		mp.CopyData = !strings.Contains(","+mode+",", ",nocopy,")
		if src == "" {
			mp.Anonymous = true
		} else if !validVolumeName.MatchString(src) {
			return mountPoint{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
				"create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", src, src))
		}
	}
	return mp, nil
}

// parseMount reads one --mount / HostConfig.Mounts entry.
func parseMount(m mount.Mount) (mountPoint, error) {
	if m.Target == "" {
		return mountPoint{}, invalidMountConfig(m.Type, "field Target must not be empty")
	}
	if err := checkDestination(m.Target); err != nil {
		return mountPoint{}, invalidMountConfig(m.Type, err.Error())
	}
	mp := mountPoint{Type: m.Type, Destination: path.Clean(m.Target), RW: !m.ReadOnly}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return mountPoint{}, invalidMountConfig(m.Type, "field Source must not be empty")
		}
		if m.VolumeOptions != nil {
			return mountPoint{}, invalidMountConfig(m.Type, "field VolumeOptions must not be specified")
		}
		if !path.IsAbs(m.Source) {
			return mountPoint{}, invalidMountConfig(m.Type, fmt.Sprintf("invalid mount path: '%s' mount path must be absolute", m.Source))
		}
		mp.Source = path.Clean(m.Source)
		mp.Propagation = mount.PropagationRPrivate
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" {
				if !propagationModes[string(o.Propagation)] {
					return mountPoint{}, invalidMountConfig(m.Type, fmt.Sprintf("invalid propagation mode: %s", o.Propagation))
				}
				mp.Propagation = o.Propagation
			}
			mp.NonRecursive = o.NonRecursive
			mp.CreateSource = o.CreateMountpoint
		}
		if !mp.CreateSource {
			if _, err := os.Stat(mp.Source); err != nil {
				return mountPoint{}, invalidMountConfig(m.Type, "bind source path does not exist: "+mp.Source)
			}
		}
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return mountPoint{}, invalidMountConfig(m.Type, "field BindOptions must not be specified")
		}
		mp.Driver = "local"
		mp.Name = m.Source
		mp.CopyData = true
		if o := m.VolumeOptions; o != nil {
			if o.DriverConfig != nil && o.DriverConfig.Name != "" && o.DriverConfig.Name != "local" {
				return mountPoint{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("error looking up volume plugin %s: plugin %q not found", o.DriverConfig.Name, o.DriverConfig.Name))
			}
			mp.CopyData = !o.NoCopy
			if o.Subpath != "" {
				if m.Source == "" {
					return mountPoint{}, invalidMountConfig(m.Type, "must not set Subpath when using anonymous volumes")
				}
				if !filepath.IsLocal(o.Subpath) {
					return mountPoint{}, invalidMountConfig(m.Type, "subpath must be a relative path within the volume")
				}
				mp.Subpath = o.Subpath
			}
		}
		if m.Source == "" {
			if m.ReadOnly {
				return mountPoint{}, invalidMountConfig(m.Type, "must not set ReadOnly mode when using anonymous volumes")
			}
			mp.Anonymous = true
		} else if !validVolumeName.MatchString(m.Source) {
			return mountPoint{}, invalidMountConfig(m.Type, fmt.Sprintf("%q includes invalid characters for a local volume name", m.Source))
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return mountPoint{}, invalidMountConfig(m.Type, "field Source must not be specified")
		}
		if m.BindOptions != nil || m.VolumeOptions != nil {
			return mountPoint{}, invalidMountConfig(m.Type, "field BindOptions must not be specified")
		}
		var opts []string
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", o.Mode))
			}
			if o.SizeBytes < 0 {
				return mountPoint{}, invalidMountConfig(m.Type, "invalid tmpfs size")
			}
			if o.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			for _, kv := range o.Options {
				if len(kv) < 1 || len(kv) > 2 || (kv[0] != "exec" && kv[0] != "noexec") {
					return mountPoint{}, invalidMountConfig(m.Type, fmt.Sprintf("invalid option: %v", kv))
				}
				opts = append(opts, strings.Join(kv, "="))
			}
		}
		mp.TmpfsData = strings.Join(opts, ",")
	case "":
		return mountPoint{}, invalidMountConfig(m.Type, "mount type unknown")
	default:
		return mountPoint{}, invalidMountConfig(m.Type, "mount type unknown")
	}
	return mp, nil
}

// parseMounts resolves a container's mounts, as Docker registers them:
// Binds, then Mounts, then Tmpfs, then the config's (image's) volumes
// that no user mount covers, as anonymous volumes.
func parseMounts(cfg *container.Config, hc *container.HostConfig) ([]mountPoint, error) {
	var out []mountPoint
	seen := map[string]bool{}
	add := func(mp mountPoint) error {
		if seen[mp.Destination] {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Duplicate mount point: %s", mp.Destination))
		}
		seen[mp.Destination] = true
		out = append(out, mp)
		return nil
	}
	for _, b := range hc.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		mp, err := parseMount(m)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	dests := make([]string, 0, len(hc.Tmpfs))
	for d := range hc.Tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		if err := checkDestination(d); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if err := add(mountPoint{Type: mountTypeTmpfs, Destination: path.Clean(d), RW: true, TmpfsData: hc.Tmpfs[d]}); err != nil {
			return nil, err
		}
	}
	vols := make([]string, 0, len(cfg.Volumes))
	for d := range cfg.Volumes {
		vols = append(vols, d)
	}
	sort.Strings(vols)
	for _, d := range vols {
		if err := checkDestination(d); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if seen[path.Clean(d)] {
			continue
		}
		seen[path.Clean(d)] = true
		out = append(out, mountPoint{Type: mountTypeVolume, Destination: path.Clean(d), RW: true, Driver: "local", CopyData: true, Anonymous: true})
	}
	return out, nil
}

// createVolumes makes the volumes a new container's mounts name (named
// ones on demand, anonymous ones fresh) and fills in their sources. It
// returns the volumes it created, for undoing a failed create.
func (m *Manager) createVolumes(mps []mountPoint) (created []string, err error) {
	for i := range mps {
		mp := &mps[i]
		if mp.Type != mountTypeVolume {
			continue
		}
		vol, made, err := m.volumes.create(mp.Name, nil, mp.Anonymous)
		if err != nil {
			return created, err
		}
		if made {
			created = append(created, vol.Name)
		}
		mp.Name = vol.Name
		mp.Source = vol.Mountpoint
		if mp.Subpath != "" {
			mp.Source = filepath.Join(vol.Mountpoint, mp.Subpath)
		}
	}
	return created, nil
}

// prepareMounts readies mount sources before a start: missing -v bind
// sources are created, and empty volumes get the image's content at their
// destination.
func (m *Manager) prepareMounts(ctx context.Context, rec *record, rootfs string) error {
	for _, mp := range rec.Mounts {
		switch mp.Type {
		case mountTypeBind:
			if _, err := os.Stat(mp.Source); err != nil {
				if !mp.CreateSource || !os.IsNotExist(err) {
					return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source))
				}
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return fmt.Errorf("create bind source %s: %w", mp.Source, err)
				}
			}
		case mountTypeVolume:
			if _, err := os.Stat(mp.Source); err != nil {
				if mp.Subpath != "" {
					return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot access path %s: %v", mp.Source, err))
				}
				// Removed behind our back: make it again, empty.
				if _, _, err := m.volumes.create(mp.Name, nil, mp.Anonymous); err != nil {
					return err
				}
			}
			if mp.CopyData && mp.Subpath == "" && isEmptyDir(mp.Source) {
				src, err := securejoin.SecureJoin(rootfs, mp.Destination)
				if err != nil {
					return fmt.Errorf("copy image content to volume %s: %w", mp.Name, err)
				}
				if err := copyUp(ctx, src, mp.Source); err != nil {
					return fmt.Errorf("copy image content to volume %s: %w", mp.Name, err)
				}
			}
			m.emitVolume(events.ActionMount, mp.Name, map[string]string{
				"driver": "local", "container": rec.ID, "destination": mp.Destination,
				"read/write": strconv.FormatBool(mp.RW), "propagation": string(mp.Propagation),
			})
		}
	}
	return nil
}

// apiMountPoints is the Mounts field of inspect and ps.
func apiMountPoints(mps []mountPoint) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(mps))
	for _, mp := range mps {
		out = append(out, container.MountPoint{
			Type:        mp.Type,
			Name:        mp.Name,
			Source:      mp.Source,
			Destination: mp.Destination,
			Driver:      mp.Driver,
			Mode:        mp.Mode,
			RW:          mp.RW,
			Propagation: mp.Propagation,
		})
	}
	return out
}
