package run

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// The archive endpoints (docker cp) work on a container's filesystem from
// the host, as root, while the container may be running and changing it.
// A path from the client is therefore never joined to a host path and
// handed to the kernel: every lookup is an openat2(RESOLVE_IN_ROOT) from
// a handle on the container's root, so ".." and absolute or relative
// symlinks made by the container resolve inside the container, and every
// file is then read or written through the handle that lookup returned
// (or an *at call on a verified parent directory with O_NOFOLLOW), never
// through its name again.

// StatPath is HEAD /containers/{id}/archive: what path is in the
// container, without following a final symlink (LinkTarget then says
// where it leads).
func (m *Manager) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	fsv, err := m.openContainerFS(ctx, c)
	if err != nil {
		return container.PathStat{}, err
	}
	defer fsv.close(ctx)
	st, _, err := fsv.stat(absContainerPath(p))
	if err != nil {
		return container.PathStat{}, fileError(err, p, ref)
	}
	return st, nil
}

// ArchivePath is GET /containers/{id}/archive: an uncompressed tar of
// path (a directory with its tree, its top entry named after its base
// name; a path ending in "/." gives the directory's content) and its stat.
// The layer stays mounted until the returned reader is closed.
func (m *Manager) ArchivePath(ctx context.Context, ref, p string) (io.ReadCloser, container.PathStat, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	fsv, err := m.openContainerFS(ctx, c)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	abs := absContainerPath(p)
	st, h, err := fsv.stat(abs)
	if err != nil {
		fsv.close(ctx)
		return nil, container.PathStat{}, fileError(err, p, ref)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer h.Close()
		err := fsv.writeTar(ctx, pw, abs, h)
		pw.CloseWithError(err)
	}()
	m.emit(events.ActionArchivePath, c.view(), nil)
	return &archiveReader{PipeReader: pr, done: done, release: func() { fsv.close(context.WithoutCancel(ctx)) }}, st, nil
}

// archiveReader is the tar stream of ArchivePath; closing it stops the
// writer and releases the container's filesystem.
type archiveReader struct {
	*io.PipeReader
	done    chan struct{}
	once    sync.Once
	release func()
}

func (r *archiveReader) Close() error {
	r.once.Do(func() {
		r.PipeReader.Close()
		<-r.done
		r.release()
	})
	return nil
}

// absContainerPath makes p absolute in the container the way dockerd
// does (filepath.Join("/", p)) but keeps a trailing "/" or "/.", which
// ask for a directory (and its content).
func absContainerPath(p string) string {
	abs := filepath.Join("/", p)
	if filepath.Base(abs) != "." && filepath.Base(p) == "." {
		if !strings.HasSuffix(abs, "/") {
			abs += "/"
		}
		abs += "."
	}
	if !strings.HasSuffix(abs, "/") && strings.HasSuffix(p, "/") {
		abs += "/"
	}
	return abs
}

// fileError words a lookup failure as dockerd: a missing path is a 404
// naming the path and the container as the client gave them.
func fileError(err error, p, ref string) error {
	if errors.Is(err, unix.ENOENT) {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", p, ref))
	}
	return err
}

// containerFS is a view of a container's filesystem for one archive
// operation. For a running container it is the root of its init process
// (its mounts included, as the container sees them); for a stopped one
// it is the mounted layer, with binds, volumes and the network files
// mapped in by destination.
type containerFS struct {
	m   *Manager
	rec *record
	// root is an O_PATH handle on the container's "/"; rootPath names it,
	// for computing link targets only (never for opening).
	root     *os.File
	rootPath string
	// mounts are the stopped container's binds, volumes and network
	// files, deepest destination first.
	mounts []*fsMount
}

type fsMount struct {
	dest string
	src  string
	rw   bool
	h    *os.File // O_PATH handle on src, opened on first use
	err  error
}

// openContainerFS mounts the container's layer (a reference of its own,
// so a container that stops meanwhile keeps it) and opens its root.
func (m *Manager) openContainerFS(ctx context.Context, c *ctr) (_ *containerFS, retErr error) {
	// The lifecycle lock only while the layer is mounted: an operation
	// streaming to a slow client must not hold up exits and removals.
	c.op.Lock()
	rec := c.view()
	if c.markedForRemoval(rec) {
		c.op.Unlock()
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is marked for removal and cannot be accessed", rec.ID))
	}
	rootfs, err := m.cfg.Store.MountRW(ctx, rec.ID)
	c.op.Unlock()
	if err != nil {
		return nil, fmt.Errorf("mount container %s: %w", rec.ID, err)
	}
	fsv := &containerFS{m: m, rec: rec}
	defer func() {
		if retErr != nil {
			fsv.close(ctx)
		}
	}()
	layer, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if uerr := m.cfg.Store.UnmountRW(context.WithoutCancel(ctx), rec.ID); uerr != nil {
			m.log.Warn("unmount container layer", "container", rec.ID, "err", uerr)
		}
		return nil, fmt.Errorf("open container root: %w", err)
	}
	fsv.root, fsv.rootPath = layer, rootfs
	if rec.State.running() && rec.State.Pid > 0 {
		if h, p := processRoot(rec.State.Pid, layer); h != nil {
			layer.Close()
			fsv.root, fsv.rootPath = h, p
			return fsv, nil
		}
	}
	fsv.mounts = stoppedMounts(rec)
	return fsv, nil
}

// processRoot opens the root directory of pid when it is the container's
// layer (same device and inode as layer): the pid may have exited and
// been reused since the record was read, and then its root is not ours
// to touch.
func processRoot(pid int, layer *os.File) (*os.File, string) {
	p := "/proc/" + strconv.Itoa(pid) + "/root"
	h, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, ""
	}
	var a, b unix.Stat_t
	if unix.Fstat(int(h.Fd()), &a) != nil || unix.Fstat(int(layer.Fd()), &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		h.Close()
		return nil, ""
	}
	return h, p
}

// stoppedMounts are what start would mount over the layer that a view of
// the layer alone would miss: binds, volumes and the network files
// (tmpfs mounts have no content while stopped).
func stoppedMounts(rec *record) []*fsMount {
	var out []*fsMount
	user := map[string]bool{}
	for _, mp := range rec.Mounts {
		user[mp.Destination] = true
		if mp.Type == mountTypeTmpfs || mp.Source == "" {
			continue
		}
		out = append(out, &fsMount{dest: path.Clean(mp.Destination), src: mp.Source, rw: mp.RW})
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", rec.ResolvConfPath},
		{"/etc/hostname", rec.HostnamePath},
		{"/etc/hosts", rec.HostsPath},
	} {
		if !user[f.dst] && f.src != "" {
			out = append(out, &fsMount{dest: f.dst, src: f.src, rw: !rec.HostConfig.ReadonlyRootfs})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].dest) > len(out[j].dest) })
	return out
}

func (v *containerFS) close(ctx context.Context) {
	if v.root != nil {
		v.root.Close()
	}
	for _, mt := range v.mounts {
		if mt.h != nil {
			mt.h.Close()
		}
	}
	if err := v.m.cfg.Store.UnmountRW(context.WithoutCancel(ctx), v.rec.ID); err != nil && !errdefs.IsNotFound(err) {
		v.m.log.Warn("unmount container layer", "container", v.rec.ID, "err", err)
	}
}

func (mt *fsMount) handle() (*os.File, error) {
	if mt.h == nil && mt.err == nil {
		mt.h, mt.err = os.OpenFile(mt.src, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	return mt.h, mt.err
}

// locate maps an absolute container path to the handle its lookup starts
// from and the rest of the path below it (keeping a trailing "/" or
// "/."). Mounts are matched by destination, lexically.
func (v *containerFS) locate(abs string) (base *os.File, basePath, dest, rest string, err error) {
	clean := path.Clean(abs)
	for _, mt := range v.mounts {
		if clean == mt.dest || strings.HasPrefix(clean, mt.dest+"/") {
			h, err := mt.handle()
			if err != nil {
				return nil, "", "", "", err
			}
			rest = strings.TrimPrefix(clean, mt.dest)
			if rest == "" {
				rest = "/"
			}
			return h, mt.src, mt.dest, rest + trailer(abs, clean), nil
		}
	}
	return v.root, v.rootPath, "/", abs, nil
}

func trailer(abs, clean string) string {
	switch {
	case clean == "/":
		return ""
	case strings.HasSuffix(abs, "/."):
		return "/."
	case strings.HasSuffix(abs, "/"):
		return "/"
	}
	return ""
}

// mountAt is the handle of a mount whose destination is exactly p.
func (v *containerFS) mountAt(p string) (*fsMount, bool) {
	for _, mt := range v.mounts {
		if mt.dest == p {
			return mt, true
		}
	}
	return nil, false
}

// lookup opens abs in the container as an O_PATH handle, following a
// final symlink only with follow (a trailing "/" or "/." always does).
func (v *containerFS) lookup(abs string, follow bool) (*os.File, error) {
	base, _, _, rest, err := v.locate(abs)
	if err != nil {
		return nil, err
	}
	flags := unix.O_PATH
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	if rest == "/" {
		// The root of a mount may be a file (a bound file).
		return dupFile(base, abs)
	}
	return openInRoot(base, rest, flags)
}

// openInRoot is openat2 with RESOLVE_IN_ROOT from base: nothing it
// resolves, ".." and symlinks included, leaves base's tree.
func openInRoot(base *os.File, p string, flags int) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for range 32 {
		fd, err := unix.Openat2(int(base.Fd()), p, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), p), nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			// A rename raced with the lookup of ".."; try again.
			continue
		default:
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
	}
	return nil, &os.PathError{Op: "open", Path: p, Err: unix.EAGAIN}
}

func dupFile(f *os.File, name string) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// reopen turns an O_PATH handle into a readable one on the same inode,
// through the magic link: the name is not looked up again.
func reopen(h *os.File, flags int) (*os.File, error) {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(h.Fd())), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), h.Name()), nil
}

// linkTarget is where a symlink at abs leads in the container, evaluated
// as far as it exists (dockerd's FollowSymlinkInScope). It is only
// reported to the client; nothing is opened by it.
func (v *containerFS) linkTarget(abs string) string {
	_, basePath, dest, rest, err := v.locate(abs)
	if err != nil {
		return ""
	}
	joined, err := securejoin.SecureJoin(basePath, rest)
	if err != nil {
		return ""
	}
	return path.Join(dest, strings.TrimPrefix(joined, basePath))
}

// stat is dockerd's Lstat of abs as a PathStat; it also returns the
// O_PATH handle it looked at, which the caller closes.
func (v *containerFS) stat(abs string) (container.PathStat, *os.File, error) {
	h, err := v.lookup(abs, false)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return container.PathStat{}, nil, err
	}
	ps := container.PathStat{
		Name:  filepath.Base(abs),
		Size:  st.Size,
		Mode:  fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	if ps.Mode&os.ModeSymlink != 0 {
		ps.LinkTarget = v.linkTarget(abs)
	}
	return ps, h, nil
}

// fileMode is Go's FileMode of a stat mode, as os.Lstat gives it.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	return mode | modeBits(m)
}

// tarball writes one archive from a container view.
type tarball struct {
	ctx   context.Context
	v     *containerFS
	tw    *tar.Writer
	buf   []byte
	links map[[2]uint64]string // hard-linked files already written
}

// writeTar writes the tar of abs, whose O_PATH handle (not following a
// final symlink) is h: a directory is written with its tree under its
// base name (under "." for "/."), anything else as a single entry.
func (v *containerFS) writeTar(ctx context.Context, w io.Writer, abs string, h *os.File) error {
	t := &tarball{ctx: ctx, v: v, tw: tar.NewWriter(w), buf: make([]byte, 128<<10), links: map[[2]uint64]string{}}
	name := filepath.Base(abs)
	if name == "/" {
		// dockerd rebases the root to "" (entries "/", "/bin", ...).
		name = ""
	}
	if err := t.add(h, name, path.Clean(abs)); err != nil {
		return err
	}
	return t.tw.Close()
}

// add writes the entry whose O_PATH handle is h under name, and below it
// the tree of a directory; cpath is its container path.
func (t *tarball) add(h *os.File, name, cpath string) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		t.xattrs(h, hdr)
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		d, err := openDir(h)
		if err != nil {
			return err
		}
		defer d.Close()
		return t.children(d, name, cpath)
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(hdr)
			}
			t.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		t.xattrs(h, hdr)
		f, err := reopen(h, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return t.content(f, st.Size)
	case unix.S_IFLNK:
		target, err := readlinkHandle(h)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return t.tw.WriteHeader(hdr)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return t.tw.WriteHeader(hdr)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return t.tw.WriteHeader(hdr)
	default:
		// Sockets have no tar form; dockerd skips them too.
		return nil
	}
}

// children writes the entries of the open directory d in name order.
func (t *tarball) children(d *os.File, name, cpath string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		childPath := path.Join(cpath, n)
		var h *os.File
		if mt, ok := t.v.mountAt(childPath); ok {
			// A mount whose source is gone shows the layer's mount
			// point instead, as an unmounted directory would.
			if mh, err := mt.handle(); err == nil {
				if h, err = dupFile(mh, childPath); err != nil {
					return err
				}
			}
		}
		if h == nil {
			fd, err := unix.Openat(int(d.Fd()), n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				// Removed since the listing.
				continue
			}
			if err != nil {
				return &os.PathError{Op: "open", Path: childPath, Err: err}
			}
			h = os.NewFile(uintptr(fd), childPath)
		}
		err := t.add(h, name+"/"+n, childPath)
		h.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// content copies exactly size bytes of f; a file that shrank meanwhile
// is padded with zeros so the archive stays well formed.
func (t *tarball) content(f *os.File, size int64) error {
	n, err := io.CopyBuffer(t.tw, io.LimitReader(f, size), t.buf)
	if err != nil {
		return err
	}
	for n < size {
		clear(t.buf)
		k := min(int64(len(t.buf)), size-n)
		if _, err := t.tw.Write(t.buf[:k]); err != nil {
			return err
		}
		n += k
	}
	return nil
}

// xattrs records the file capabilities of h, the one xattr dockerd
// archives.
func (t *tarball) xattrs(h *os.File, hdr *tar.Header) {
	buf := make([]byte, 256)
	n, err := unix.Getxattr("/proc/self/fd/"+strconv.Itoa(int(h.Fd())), "security.capability", buf)
	if err != nil || n <= 0 {
		return
	}
	if hdr.PAXRecords == nil {
		hdr.PAXRecords = map[string]string{}
	}
	hdr.PAXRecords["SCHILY.xattr.security.capability"] = string(buf[:n])
}

// openDir opens the directory of an O_PATH handle for reading.
func openDir(h *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: h.Name(), Err: err}
	}
	return os.NewFile(uintptr(fd), h.Name()), nil
}

// readlinkHandle reads the symlink an O_PATH|O_NOFOLLOW handle is on.
func readlinkHandle(h *os.File) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(int(h.Fd()), "", buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: h.Name(), Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}
