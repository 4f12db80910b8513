package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// treeCopier copies a directory tree keeping everything a layer needs:
// owners, modes (set-id bits included), times, xattrs, symlinks, device
// nodes, fifos, and hard links as hard links.
type treeCopier struct {
	ctx   context.Context
	links map[inodeKey]string // first copy of each multiply linked file
	dirs  []dirTimes
	names []byte // listxattr buffer
	value []byte // getxattr buffer
}

type inodeKey struct{ dev, ino uint64 }

// CopyTree copies the content and metadata of the directory src into the
// existing empty directory dst: owners, modes, times, xattrs, symlinks,
// device nodes, fifos, and hard links as hard links. dst takes src's own
// owner, mode, xattrs and times too. vfs makes a layer from its parent with
// it; run fills a new volume from the image content it covers.
func CopyTree(ctx context.Context, src, dst string) error {
	c := &treeCopier{
		ctx:   ctx,
		links: map[inodeKey]string{},
		names: make([]byte, 4096),
		value: make([]byte, 4096),
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if err := c.dir(src, dst, &st); err != nil {
		return err
	}
	for _, d := range c.dirs {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path, d.ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", d.path, err)
		}
	}
	return nil
}

func (c *treeCopier) dir(src, dst string, st *unix.Stat_t) error {
	if err := c.meta(src, dst, st, true); err != nil {
		return err
	}
	c.dirs = append(c.dirs, dirTimes{path: dst, ts: [2]unix.Timespec{st.Atim, st.Mtim}})
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	var cst unix.Stat_t
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		s, d := src+"/"+e.Name(), dst+"/"+e.Name()
		if err := unix.Lstat(s, &cst); err != nil {
			return fmt.Errorf("stat %s: %w", s, err)
		}
		if err := c.entry(s, d, &cst); err != nil {
			return fmt.Errorf("copy %s: %w", s, err)
		}
	}
	return nil
}

func (c *treeCopier) entry(src, dst string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return err
		}
		return c.dir(src, dst, st)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := inodeKey{dev: st.Dev, ino: st.Ino}
			if first, ok := c.links[key]; ok {
				return unix.Link(first, dst)
			}
			c.links[key] = dst
		}
		return c.file(src, dst, st)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return err
		}
		return c.meta(src, dst, st, false)
	default: // fifos, sockets and device nodes
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
		return c.meta(src, dst, st, false)
	}
}

func (c *treeCopier) file(src, dst string, st *unix.Stat_t) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// *os.File to *os.File uses copy_file_range: in-kernel, and a reflink
	// where the filesystem can.
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.meta(src, dst, st, false)
}

// meta copies owner, mode, xattrs and (except for directories, which wait
// for their content) times from src's stat to dst.
func (c *treeCopier) meta(src, dst string, st *unix.Stat_t, isDir bool) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := c.xattrs(src, dst); err != nil {
		return err
	}
	if isDir {
		return nil
	}
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (c *treeCopier) xattrs(src, dst string) error {
	n, err := getBuf(&c.names, func(b []byte) (int, error) { return unix.Llistxattr(src, b) })
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("list xattrs: %w", err)
	}
	for names := c.names[:n]; len(names) > 0; {
		i := bytes.IndexByte(names, 0)
		if i < 0 {
			break
		}
		name := string(names[:i])
		names = names[i+1:]
		vn, err := getBuf(&c.value, func(b []byte) (int, error) { return unix.Lgetxattr(src, name, b) })
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return fmt.Errorf("get xattr %s: %w", name, err)
		}
		if err := unix.Lsetxattr(dst, name, c.value[:vn], 0); err != nil &&
			!errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// getBuf calls get with *buf, growing it while the kernel says ERANGE.
func getBuf(buf *[]byte, get func([]byte) (int, error)) (int, error) {
	for {
		n, err := get(*buf)
		if !errors.Is(err, unix.ERANGE) {
			return n, err
		}
		need, err := get(nil)
		if err != nil {
			return 0, err
		}
		*buf = make([]byte, max(need, 2*len(*buf)))
	}
}
