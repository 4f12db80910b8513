package run

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/containerd/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// ExtractOptions are the flags of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory and the other way round.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives every extracted file the container user's uid and
	// gid instead of the archive's.
	CopyUIDGID bool
}

// ExtractToDir is PUT /containers/{id}/archive: the tar in r is extracted
// into the directory p of the container (following symlinks in the
// container, as dockerd's chrooted extraction does). Every entry is
// created relative to a handle on its parent directory, found inside
// the container's root, and never through a symlink.
func (m *Manager) ExtractToDir(ctx context.Context, ref, p string, opts ExtractOptions, r io.Reader) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	fsv, err := m.openContainerFS(ctx, c)
	if err != nil {
		return err
	}
	defer fsv.close(ctx)
	abs := absContainerPath(p)
	dir, err := fsv.lookup(abs, true)
	if err != nil {
		return fileError(err, p, ref)
	}
	defer dir.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
	}
	target := fsv.linkTarget(abs)
	if target == "" {
		target = path.Clean(abs)
	}
	if err := fsv.checkWritable(target); err != nil {
		return err
	}
	x := &extractor{
		ctx:     ctx,
		v:       fsv,
		target:  target,
		opts:    opts,
		parents: map[string]*os.File{".": dir},
		buf:     make([]byte, 128<<10),
	}
	defer x.closeParents()
	if opts.CopyUIDGID && fsv.rec.Config.User != "" {
		uid, gid, err := fsv.containerUser(fsv.rec.Config.User)
		if err != nil {
			return err
		}
		x.chown = &[2]int{uid, gid}
	}
	if err := x.run(tar.NewReader(r)); err != nil {
		return err
	}
	m.emit(events.ActionExtractToDir, c.view(), nil)
	return nil
}

// checkWritable is dockerd's check that p (resolved) is not on a
// read-only volume or a read-only root.
func (v *containerFS) checkWritable(p string) error {
	for _, mp := range v.rec.Mounts {
		if p == mp.Destination || strings.HasPrefix(p, strings.TrimSuffix(mp.Destination, "/")+"/") {
			if mp.RW {
				return nil
			}
			return errdefs.ErrInvalidArgument.WithMessage("mounted volume is marked read-only")
		}
	}
	if v.rec.HostConfig.ReadonlyRootfs {
		return errdefs.ErrInvalidArgument.WithMessage("container rootfs is marked read-only")
	}
	return nil
}

// containerUser resolves a user spec with the container's own passwd and
// group files, as `docker cp -a` does.
func (v *containerFS) containerUser(spec string) (int, int, error) {
	open := func(p string) io.Reader {
		h, err := v.lookup(p, true)
		if err != nil {
			return nil
		}
		defer h.Close()
		var st unix.Stat_t
		if unix.Fstat(int(h.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil
		}
		f, err := reopen(h, unix.O_RDONLY)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<20))
		if err != nil {
			return nil
		}
		return bytes.NewReader(b)
	}
	passwd, group := open("/etc/passwd"), open("/etc/group")
	eu, err := user.GetExecUser(spec, &user.ExecUser{}, passwd, group)
	if err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return eu.Uid, eu.Gid, nil
}

// extractor writes one archive into a container directory.
type extractor struct {
	ctx    context.Context
	v      *containerFS
	target string // container path of the extraction directory
	opts   ExtractOptions
	chown  *[2]int
	buf    []byte
	// parents caches O_PATH handles on directories by their name in the
	// archive ("." is the target). A removal may change what a name
	// leads to, so removals empty it.
	parents map[string]*os.File
	dirs    []dirTime
}

type dirTime struct {
	name string
	ts   [2]unix.Timespec
}

func (x *extractor) closeParents() {
	for k, f := range x.parents {
		if k != "." {
			f.Close()
		}
	}
}

// forgetParents drops the cached directories except the target and keep
// (the one in use).
func (x *extractor) forgetParents(keep string) {
	for k, f := range x.parents {
		if k != "." && k != keep {
			f.Close()
			delete(x.parents, k)
		}
	}
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(tr, hdr); err != nil {
			return err
		}
	}
	// Directory times last: creating their children changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		h, err := x.v.lookup(path.Join(x.target, d.name), false)
		if err != nil {
			continue
		}
		f, err := openDir(h)
		h.Close()
		if err != nil {
			continue
		}
		_ = futimesFd(int(f.Fd()), &d.ts)
		f.Close()
	}
	return nil
}

// relName is an entry's name relative to the target, refusing names that
// climb out of it (dockerd's breakout check).
func (x *extractor) relName(name string) (string, error) {
	clean := filepath.Clean("/" + name)
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		rel = "."
	}
	if strings.HasPrefix(filepath.Clean(name), "../") || filepath.Clean(name) == ".." {
		return "", fmt.Errorf("%q is outside of %q", name, x.target)
	}
	return rel, nil
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := x.relName(hdr.Name)
	if err != nil {
		return err
	}
	cpath := path.Join(x.target, rel)
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("cannot overwrite directory %q with non-directory %q", x.target, x.target)
		}
		// The target itself keeps its metadata, as dockerd's Untar does.
		return nil
	}
	parentRel := path.Dir(rel)
	parent, err := x.parent(parentRel)
	if err != nil {
		return err
	}
	pfd := int(parent.Fd())
	base := path.Base(rel)
	isDir := hdr.Typeflag == tar.TypeDir
	var old unix.Stat_t
	if err := unix.Fstatat(pfd, base, &old, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		oldDir := old.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case x.opts.NoOverwriteDirNonDir && oldDir && !isDir:
			return fmt.Errorf("cannot overwrite directory %q with non-directory %q", cpath, x.target)
		case x.opts.NoOverwriteDirNonDir && !oldDir && isDir:
			return fmt.Errorf("cannot overwrite non-directory %q with directory %q", cpath, x.target)
		case oldDir && isDir:
			// Merge into it.
		default:
			x.forgetParents(parentRel)
			if err := removeAllAt(pfd, base); err != nil {
				return fmt.Errorf("replace %s: %w", cpath, err)
			}
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "lstat", Path: cpath, Err: err}
	}
	uid, gid := hdr.Uid, hdr.Gid
	if x.chown != nil {
		uid, gid = x.chown[0], x.chown[1]
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "mkdir", Path: cpath, Err: err}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: cpath, Err: err}
		}
		err = setOwnerMode(fd, uid, gid, mode, hdr)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", cpath, err)
		}
		x.dirs = append(x.dirs, dirTime{name: rel, ts: tarTimes(hdr)})
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create", Path: cpath, Err: err}
		}
		f := os.NewFile(uintptr(fd), cpath)
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(tr, hdr.Size), x.buf)
		if err == nil {
			err = setOwnerMode(fd, uid, gid, mode, hdr)
		}
		if err == nil {
			ts := tarTimes(hdr)
			err = futimesFd(fd, &ts)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cpath, err)
		}
	case tar.TypeSymlink:
		// dockerd refuses links whose target, taken lexically from the
		// link's directory, leaves the extraction directory.
		if lt := path.Join(path.Dir(cpath), hdr.Linkname); !path.IsAbs(hdr.Linkname) && lt != x.target && !strings.HasPrefix(lt, strings.TrimSuffix(x.target, "/")+"/") {
			return fmt.Errorf("invalid symlink %q -> %q", cpath, hdr.Linkname)
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: cpath, Err: err}
		}
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: cpath, Err: err}
		}
		ts := tarTimes(hdr)
		_ = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		lrel, err := x.relName(hdr.Linkname)
		if err != nil || lrel == "." {
			return fmt.Errorf("invalid hardlink %q -> %q", cpath, hdr.Linkname)
		}
		lparent, err := x.existingParent(path.Dir(lrel))
		if err != nil {
			return fmt.Errorf("hard link %s: %w", cpath, err)
		}
		// Without AT_SYMLINK_FOLLOW a symlink is linked, not followed.
		err = unix.Linkat(int(lparent.Fd()), path.Base(lrel), pfd, base, 0)
		if err != nil {
			return &os.PathError{Op: "link", Path: cpath, Err: err}
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ = unix.S_IFCHR
		case tar.TypeBlock:
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, typ|0o600, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: cpath, Err: err}
		}
		if err := x.nodeAttrs(pfd, base, typ, uid, gid, mode, hdr); err != nil {
			return fmt.Errorf("%s: %w", cpath, err)
		}
	default:
		return fmt.Errorf("unhandled tar header type %d", hdr.Typeflag)
	}
	return nil
}

// nodeAttrs sets owner, mode and times of a node just made: through an
// O_PATH handle checked to be that node, never by name (the container
// could have swapped the name for a symlink).
func (x *extractor) nodeAttrs(pfd int, base string, typ uint32, uid, gid int, mode uint32, hdr *tar.Header) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != typ {
		return errors.New("replaced while being created")
	}
	magic := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Chown(magic, uid, gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Chmod(magic, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	ts := tarTimes(hdr)
	return unix.UtimesNano(magic, ts[:])
}

// parent returns a handle on the directory rel (relative to the target),
// creating missing directories (0755) like dockerd's Untar does.
func (x *extractor) parent(rel string) (*os.File, error) {
	if h, ok := x.parents[rel]; ok {
		return h, nil
	}
	abs := path.Join(x.target, rel)
	h, err := x.v.lookup(abs, true)
	if errors.Is(err, unix.ENOENT) {
		base, _, _, rest, lerr := x.v.locate(abs)
		if lerr != nil {
			return nil, lerr
		}
		h, err = pathrs.MkdirAllHandle(base, rest, 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("parent directory %s: %w", abs, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		h.Close()
		return nil, &os.PathError{Op: "open", Path: abs, Err: unix.ENOTDIR}
	}
	x.parents[rel] = h
	return h, nil
}

// existingParent is parent without creating anything.
func (x *extractor) existingParent(rel string) (*os.File, error) {
	if h, ok := x.parents[rel]; ok {
		return h, nil
	}
	h, err := x.v.lookup(path.Join(x.target, rel), true)
	if err != nil {
		return nil, err
	}
	x.parents[rel] = h
	return h, nil
}

// setOwnerMode sets owner, mode and the archive's xattrs on an open file
// or directory; chown first, since it clears set-id bits.
func setOwnerMode(fd, uid, gid int, mode uint32, hdr *tar.Header) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		// Like dockerd, xattrs the filesystem refuses are dropped.
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func tarTimes(hdr *tar.Header) [2]unix.Timespec {
	m := hdr.ModTime
	a := hdr.AccessTime
	if a.IsZero() || a.Before(m) {
		a = m
	}
	return [2]unix.Timespec{toTimespec(a), toTimespec(m)}
}

func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() || t.Unix() < 0 {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// futimesFd sets the times of an open file (utimensat with a NULL path).
func futimesFd(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// removeAllAt removes name in the directory dirfd and, for a directory,
// everything below it, without following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	// A running container may add entries meanwhile: list and remove
	// again until the directory can go.
	for range 8 {
		if _, err := d.Seek(0, io.SeekStart); err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
		err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		if !errors.Is(err, unix.ENOTEMPTY) {
			return err
		}
	}
	return unix.ENOTEMPTY
}
