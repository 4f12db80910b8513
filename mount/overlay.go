package mount

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// shortIDLen is the length of the names under l/: 16 random bytes in
	// base32, as Docker makes them.
	shortIDLen = 26
	// maxDepth is the most lower layers a layer may have. With relative
	// short links 128 lowers still fit the one-page limit of mount options.
	maxDepth = 128
)

// Overlay2 is the overlay2 graph driver with Docker's on-disk layout:
//
//	<root>/<id>/diff     the layer's own files, whiteouts as 0/0 devices
//	<root>/<id>/link     the layer's short id
//	<root>/<id>/lower    l/<short>:l/<short>… of its parents, nearest first
//	<root>/<id>/work     overlay work dir (layers with a parent)
//	<root>/<id>/merged   the mount point, while mounted
//	<root>/l/<short>     symlink to ../<id>/diff
type Overlay2 struct {
	*layers
	// mountOpts prefixes every mount's options. index=off where the kernel
	// knows the option: with the index on, a lower layer shared by two
	// mounts can make the second mount fail.
	mountOpts string
	pageSize  int
}

var _ Driver = (*Overlay2)(nil)

// NewOverlay2 opens (creating if needed) an overlay2 layer store at root,
// <data-root>/layers. It does not check that overlay works: see
// OverlaySupported and New.
func NewOverlay2(root string) (*Overlay2, error) {
	l, err := newLayers(root)
	if err != nil {
		return nil, fmt.Errorf("overlay2: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(l.root, linkDirName), 0o701); err != nil {
		return nil, fmt.Errorf("overlay2: create short link dir: %w", err)
	}
	d := &Overlay2{layers: l, pageSize: unix.Getpagesize()}
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		d.mountOpts = "index=off,"
	}
	if err := d.pruneLinks(); err != nil {
		return nil, fmt.Errorf("overlay2: %w", err)
	}
	return d, nil
}

// pruneLinks removes short links whose layer is gone, which a crash in
// Create or Remove can leave. Create makes the diff dir before the link, so
// a link being made is never dangling.
func (d *Overlay2) pruneLinks() error {
	dir := filepath.Join(d.root, linkDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read short links: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove dangling short link: %w", err)
		}
	}
	return nil
}

// Name returns "overlay2".
func (d *Overlay2) Name() string { return "overlay2" }

// IndependentLayers is true: a layer's diff dir holds only its own tar.
func (d *Overlay2) IndependentLayers() bool { return true }

// Create makes the directory of an empty layer on top of parent ("" for a
// base layer). Only the parent's link and lower files are read.
func (d *Overlay2) Create(ctx context.Context, id, parent string) (retErr error) {
	if err := validID(id); err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	var lower string
	if parent != "" {
		if err := validID(parent); err != nil {
			return fmt.Errorf("create layer %s: parent: %w", id, err)
		}
		var err error
		if lower, err = d.lowerOf(parent); err != nil {
			return fmt.Errorf("create layer %s: %w", id, err)
		}
	}
	dir := d.dir(id)
	if err := os.Mkdir(dir, 0o701); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	var short string
	defer func() {
		if retErr == nil {
			return
		}
		if short != "" {
			_ = os.Remove(filepath.Join(d.root, linkDirName, short))
		}
		_ = os.RemoveAll(dir)
	}()
	if err := os.Mkdir(filepath.Join(dir, diffDirName), 0o755); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	short, err := d.newShortLink(id)
	if err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, linkFileName), []byte(short), 0o644); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	if parent == "" {
		return nil
	}
	if err := os.Mkdir(filepath.Join(dir, workDirName), 0o700); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, lowerFileName), []byte(lower), 0o644); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	return nil
}

// lowerOf returns the lower file content of a child of parent: the parent's
// short link, then the parent's own lowers.
func (d *Overlay2) lowerOf(parent string) (string, error) {
	pdir := d.dir(parent)
	link, err := os.ReadFile(filepath.Join(pdir, linkFileName))
	if err != nil {
		return "", fmt.Errorf("parent %s: %w", parent, err)
	}
	if !validShortID(string(link)) {
		return "", fmt.Errorf("parent %s: bad short link %q", parent, link)
	}
	lower := linkDirName + "/" + string(link)
	parentLower, err := os.ReadFile(filepath.Join(pdir, lowerFileName))
	switch {
	case err == nil:
		if n := strings.Count(string(parentLower), ":") + 2; n > maxDepth {
			return "", fmt.Errorf("parent %s: a layer may have at most %d lower layers", parent, maxDepth)
		}
		lower += ":" + string(parentLower)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("parent %s: %w", parent, err)
	}
	return lower, nil
}

// newShortLink makes l/<short> -> ../<id>/diff under a fresh random name.
func (d *Overlay2) newShortLink(id string) (string, error) {
	var b [16]byte
	for range 8 {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		short := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
		err := os.Symlink("../"+id+"/"+diffDirName, filepath.Join(d.root, linkDirName, short))
		if err == nil {
			return short, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("short link: %w", err)
		}
	}
	return "", errors.New("short link: no free name")
}

func validShortID(s string) bool {
	if len(s) != shortIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ApplyDiff writes the layer tar into the diff dir, whiteouts converted to
// overlay's format. On error the diff dir is left empty.
func (d *Overlay2) ApplyDiff(ctx context.Context, id string, r io.Reader, opts ApplyOptions) (ApplyStats, error) {
	return d.applyInto(ctx, id, r, whiteoutOverlay, opts)
}

// Mount mounts the layer with its parents at <id>/merged, the layer's diff
// as the upper dir. A layer without parents is not mounted: as in Docker,
// its diff dir is its root.
func (d *Overlay2) Mount(ctx context.Context, id string) (string, error) {
	if err := validID(id); err != nil {
		return "", fmt.Errorf("mount layer: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dir := d.dir(id)
	if _, err := os.Lstat(dir); err != nil {
		return "", fmt.Errorf("mount layer %s: %w", id, err)
	}
	lowers, err := os.ReadFile(filepath.Join(dir, lowerFileName))
	if errors.Is(err, fs.ErrNotExist) {
		d.refs[id]++
		return d.DiffPath(id), nil
	}
	if err != nil {
		return "", fmt.Errorf("mount layer %s: %w", id, err)
	}
	merged := filepath.Join(dir, mergedDirName)
	if d.refs[id] > 0 || mounted(merged) {
		d.refs[id]++
		return merged, nil
	}
	if err := os.Mkdir(merged, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("mount layer %s: %w", id, err)
	}
	if err := d.mountOverlay(id, string(lowers)); err != nil {
		_ = os.Remove(merged)
		return "", fmt.Errorf("mount layer %s: %w", id, err)
	}
	d.refs[id] = 1
	return merged, nil
}

// mountOverlay mounts with absolute short-link paths when the options fit
// in a page (the kernel's limit), otherwise with paths relative to the
// layers root, which are short enough for maxDepth layers.
func (d *Overlay2) mountOverlay(id, lowers string) error {
	if lowers == "" || strings.ContainsAny(lowers, ",\n") {
		return fmt.Errorf("bad lower file %q", lowers)
	}
	dir := d.dir(id)
	parts := strings.Split(lowers, ":")
	abs := make([]string, len(parts))
	for i, p := range parts {
		abs[i] = filepath.Join(d.root, p)
	}
	opts := d.mountOpts + "lowerdir=" + strings.Join(abs, ":") +
		",upperdir=" + filepath.Join(dir, diffDirName) + ",workdir=" + filepath.Join(dir, workDirName)
	if len(opts) < d.pageSize {
		if err := unix.Mount("overlay", filepath.Join(dir, mergedDirName), "overlay", 0, opts); err != nil {
			return fmt.Errorf("mount overlay: %w", err)
		}
		return nil
	}
	opts = d.relativeMountOptions(id, lowers)
	if len(opts) >= d.pageSize {
		return fmt.Errorf("mount options too long (%d bytes) even with relative paths", len(opts))
	}
	if err := mountFrom(d.root, "overlay", id+"/"+mergedDirName, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay from %s: %w", d.root, err)
	}
	return nil
}

func (d *Overlay2) relativeMountOptions(id, lowers string) string {
	return d.mountOpts + "lowerdir=" + lowers +
		",upperdir=" + id + "/" + diffDirName + ",workdir=" + id + "/" + workDirName
}

// mountFrom calls mount(2) with relative paths resolved from dir. The
// working directory is per process, so the call runs on a thread that
// unshared its filesystem context (CLONE_FS) and is thrown away afterwards;
// the rest of the process never sees the chdir. Docker re-execs itself for
// the same purpose.
func mountFrom(dir, source, target, fstype string, flags uintptr, data string) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns the runtime ends the
		// thread instead of reusing it with a different working directory.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir: %w", err)
			return
		}
		errc <- unix.Mount(source, target, fstype, flags, data)
	}()
	return <-errc
}

// Unmount drops one user of the layer's mount and unmounts it with the
// last one. Unmounting a layer that is not mounted does nothing.
func (d *Overlay2) Unmount(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("unmount layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs[id] > 1 {
		d.refs[id]--
		return nil
	}
	delete(d.refs, id)
	merged := filepath.Join(d.dir(id), mergedDirName)
	if mounted(merged) {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount layer %s: %w", id, err)
		}
	}
	// Removing the mount point also ends copies of the mount that other
	// mount namespaces (containers) may hold.
	if err := os.Remove(merged); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unmount layer %s: %w", id, err)
	}
	return nil
}

// Remove unmounts the layer if needed and deletes its directory and short
// link. Removing a missing layer succeeds.
func (d *Overlay2) Remove(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.refs, id)
	dir := d.dir(id)
	if link, err := os.ReadFile(filepath.Join(dir, linkFileName)); err == nil && validShortID(string(link)) {
		if err := os.Remove(filepath.Join(d.root, linkDirName, string(link))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	if err := removeLayerDir(dir); err != nil {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}
