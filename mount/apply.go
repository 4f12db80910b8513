package mount

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrBreakout is wrapped by ApplyDiff errors for entries that would reach
// outside the layer directory: absolute or ".."-escaping names, writes
// through symlinks pointing outside, hard links to outside, whiteouts of "."
// or "..".
var ErrBreakout = errors.New("path escapes the layer root")

// ErrDeviceNode is wrapped by ApplyDiff errors for character or block device
// entries when ApplyOptions.AllowDeviceNodes is off.
var ErrDeviceNode = errors.New("device nodes are not allowed")

// Whiteout names of the AUFS format that Docker layer tars use.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"
	whiteoutLinkDir    = ".wh..wh.plnk"

	overlayOpaqueXattr = "trusted.overlay.opaque"
	overlayXattrPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."

	copyBufferSize = 1 << 20
)

// whiteoutMode says how AUFS whiteouts become files in the layer directory.
type whiteoutMode int

const (
	// whiteoutOverlay writes them the way overlayfs reads them: a 0/0
	// character device per deleted name, trusted.overlay.opaque=y on opaque
	// directories. The layer directory holds only the layer's own files.
	whiteoutOverlay whiteoutMode = iota
	// whiteoutDelete applies them to a full copy of the parent: the named
	// files are deleted, opaque directories lose what the parent had.
	whiteoutDelete
)

// applier is the tar extractor shared by the drivers. It holds only
// buffers reused across layers and facts about the process; it is safe for
// concurrent use.
type applier struct {
	copyBufs  sync.Pool
	aheadBufs sync.Pool
	// rootOwner is true when new files are owned by 0:0 without a chown.
	rootOwner bool
}

func newApplier() *applier {
	return &applier{
		copyBufs:  sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }},
		aheadBufs: sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }},
		rootOwner: os.Geteuid() == 0 && os.Getegid() == 0,
	}
}

// dirTimes is a directory whose times are set after the whole tar is
// written, because creating its children changes its mtime.
type dirTimes struct {
	path string
	ts   [2]unix.Timespec
}

// extraction is the state of one ApplyDiff.
type extraction struct {
	ctx  context.Context
	root string // the layer directory the tar is written into
	mode whiteoutMode
	opts ApplyOptions
	buf  []byte
	ar   *aheadReader

	// rootOwner and umask let the common case (a 0:0 file whose mode the
	// umask leaves alone) skip its fchown and fchmod: on these machines
	// every syscall counts. umask is -1 when unknown.
	rootOwner bool
	umask     int

	// parents caches resolved, existing parent directories by their
	// cleaned name in the tar. Only removals can invalidate an entry (a
	// creation never replaces an existing component), so removals clear it.
	parents map[string]parentDir
	dirs    []dirTimes
	// unpacked holds the paths this tar created (and their ancestors), so
	// an opaque whiteout applied by deletion keeps them (vfs only).
	unpacked map[string]struct{}
	// plnk maps AUFS hard-link stash names to their extracted temp path.
	plnkDir string
	plnk    map[string]string
	stats   ApplyStats
}

// parentDir is a resolved directory that entries are written into.
type parentDir struct {
	path string
	// setgid directories give new entries their group, so those need a
	// chown even when the tar says 0:0.
	setgid bool
}

// apply extracts the tar in r into root. On error it leaves root empty.
func (a *applier) apply(ctx context.Context, root string, r io.Reader, mode whiteoutMode, opts ApplyOptions) (ApplyStats, error) {
	bp := a.copyBufs.Get().(*[]byte)
	defer a.copyBufs.Put(bp)
	ap := a.aheadBufs.Get().(*[]byte)
	defer a.aheadBufs.Put(ap)
	x := &extraction{
		ctx:       ctx,
		root:      root,
		mode:      mode,
		opts:      opts,
		buf:       *bp,
		ar:        newAheadReader(r, *ap),
		rootOwner: a.rootOwner,
		umask:     readUmask(),
	}
	x.resetParents()
	if mode == whiteoutDelete {
		x.unpacked = map[string]struct{}{}
	}
	err := x.run(tar.NewReader(x.ar))
	if err != nil {
		if cerr := emptyDir(root); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after failed apply: %w", cerr))
		}
		return ApplyStats{}, err
	}
	return x.stats, nil
}

// emptyDir removes dir and makes it again, empty, as Create made it.
func emptyDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o755)
}

func (x *extraction) run(tr *tar.Reader) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar header after %d entries: %w", x.stats.Entries, err)
		}
		x.stats.Entries++
		x.ar.sawHeader(hdr)
		if err := x.entry(tr, hdr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	if x.plnkDir != "" {
		if err := os.RemoveAll(x.plnkDir); err != nil {
			return fmt.Errorf("remove aufs hard-link stash: %w", err)
		}
	}
	for i := range x.dirs {
		d := &x.dirs[i]
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path, d.ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", d.path, err)
		}
	}
	return nil
}

// cleanName validates a name from the tar (entry or hard-link target) and
// returns it relative to the layer root.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if filepath.IsAbs(name) {
		return "", fmt.Errorf("absolute name: %w", ErrBreakout)
	}
	clean := filepath.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", ErrBreakout
	}
	return clean, nil
}

func (x *extraction) entry(tr *tar.Reader, hdr *tar.Header) error {
	clean, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA || hdr.Typeflag == tar.TypeGNUSparse {
		x.stats.Size += hdr.Size
	}
	if clean == "." {
		// The layer root belongs to the driver, like Docker's overlay2
		// which skips the "." entry.
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("cannot replace the layer root with a non-directory")
		}
		return nil
	}
	dirName, base := filepath.Dir(clean), filepath.Base(clean)

	// AUFS metadata at the top: skipped, except that files stashed in the
	// hard-link dir can be hard-link targets later in the tar.
	if strings.HasPrefix(clean, whiteoutMetaPrefix) && clean != whiteoutOpaque {
		if strings.HasPrefix(clean, whiteoutLinkDir+"/") && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA) {
			return x.stashAUFSLink(tr, hdr, base)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		parent, err := x.parentDir(dirName)
		if err != nil {
			return err
		}
		if base == whiteoutOpaque {
			return x.opaque(parent.path)
		}
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return fmt.Errorf("whiteout of %q: %w", target, ErrBreakout)
		}
		return x.whiteout(parent.path, target, hdr)
	}

	if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && !x.opts.AllowDeviceNodes {
		return ErrDeviceNode
	}
	parent, err := x.parentDir(dirName)
	if err != nil {
		return err
	}
	path := parent.path + "/" + base
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = x.dir(path, parent, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		err = x.file(path, parent, hdr, tr)
	case tar.TypeSymlink:
		err = x.symlink(path, parent, hdr)
	case tar.TypeLink:
		err = x.hardlink(path, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = x.node(path, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	x.markUnpacked(path)
	return nil
}

// parentDir returns the directory named rel (relative to the layer root),
// creating missing directories like Docker does (0755, root). Symlinks on
// the way are followed only while they stay inside the layer; one that is
// absolute or climbs above the root is refused.
func (x *extraction) parentDir(rel string) (parentDir, error) {
	if p, ok := x.parents[rel]; ok {
		return p, nil
	}
	p, err := resolveInRoot(x.root, rel)
	if err != nil {
		return parentDir{}, err
	}
	var st unix.Stat_t
	err = unix.Lstat(p, &st)
	if errors.Is(err, unix.ENOENT) {
		// resolveInRoot saw no symlink in the missing part, so MkdirAll
		// creates exactly the path it returned.
		if err := os.MkdirAll(p, 0o755); err != nil {
			return parentDir{}, fmt.Errorf("create parent %q: %w", rel, err)
		}
		err = unix.Lstat(p, &st)
	}
	if err != nil {
		return parentDir{}, fmt.Errorf("parent %q: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return parentDir{}, fmt.Errorf("parent %q is not a directory", rel)
	}
	d := parentDir{path: p, setgid: st.Mode&unix.S_ISGID != 0}
	x.parents[rel] = d
	return d, nil
}

// existingDir resolves rel like parentDir but creates nothing.
func (x *extraction) existingDir(rel string) (string, error) {
	if p, ok := x.parents[rel]; ok {
		return p.path, nil
	}
	p, err := resolveInRoot(x.root, rel)
	if err != nil {
		return "", err
	}
	return p, nil
}

func (x *extraction) resetParents() {
	if x.parents == nil {
		x.parents = map[string]parentDir{}
	}
	clear(x.parents)
	var st unix.Stat_t
	setgid := unix.Lstat(x.root, &st) != nil || st.Mode&unix.S_ISGID != 0
	x.parents["."] = parentDir{path: x.root, setgid: setgid}
}

// removeAll deletes path and forgets every resolved parent, since one of
// them may have gone through it.
func (x *extraction) removeAll(path string) error {
	x.resetParents()
	return os.RemoveAll(path)
}

// needChown reports whether a new entry in parent needs a chown to get
// uid:gid.
func (x *extraction) needChown(parent parentDir, hdr *tar.Header) bool {
	return !x.rootOwner || hdr.Uid != 0 || hdr.Gid != 0 || parent.setgid
}

// needChmod reports whether an entry created with mode perm (less the
// umask) needs a chmod to get exactly perm.
func (x *extraction) needChmod(perm uint32) bool {
	return x.umask < 0 || perm&uint32(x.umask) != 0 ||
		// set-id bits: chown clears them, and creation may too.
		perm&0o7000 != 0
}

// readUmask returns the process umask, -1 if it cannot tell. Reading it
// with umask(2) would change it for a moment under the other goroutines.
func readUmask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			var m int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%o", &m); err != nil {
				return -1
			}
			return m
		}
	}
	return -1
}

// markUnpacked records path and its ancestors as written by this tar.
func (x *extraction) markUnpacked(path string) {
	if x.unpacked == nil {
		return
	}
	for path != x.root && len(path) > len(x.root) {
		if _, ok := x.unpacked[path]; ok {
			return
		}
		x.unpacked[path] = struct{}{}
		path = filepath.Dir(path)
	}
}

// create runs mk; if the name is taken by something other than a directory
// to merge into, it removes that and runs mk again. It reports whether an
// existing directory was kept (merge) and the type that was replaced.
func (x *extraction) create(path string, wantDir bool, mk func() error) (merged bool, replaced uint32, err error) {
	err = mk()
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return false, 0, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, 0, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if wantDir {
			return true, 0, nil
		}
		err = x.removeAll(path)
	case unix.S_IFLNK:
		// A cached parent may have been resolved through this link.
		x.resetParents()
		err = unix.Unlink(path)
	default:
		// No cached parent goes through a file.
		err = unix.Unlink(path)
	}
	if err != nil {
		return false, 0, fmt.Errorf("replace existing: %w", err)
	}
	return false, st.Mode, mk()
}

func perm(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode) & 0o7777
}

func (x *extraction) dir(path string, parent parentDir, hdr *tar.Header) error {
	mode := perm(hdr)
	merged, replaced, err := x.create(path, true, func() error { return unix.Mkdir(path, mode) })
	if err != nil {
		return err
	}
	if x.mode == whiteoutOverlay && isWhiteoutDevice(replaced) {
		// A directory replacing a whiteout must not show the lower
		// directory's content through it: that is what opaque means.
		if err := unix.Lsetxattr(path, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
	}
	chown := merged || x.needChown(parent, hdr)
	if chown {
		if err := unix.Lchown(path, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	// A new directory in a setgid one inherits the bit, so chmod then too.
	if merged || chown || x.needChmod(mode) {
		if err := unix.Chmod(path, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if mode&unix.S_ISGID != 0 {
		// Cached parents may say this directory is not setgid.
		x.resetParents()
	}
	if err := x.xattrs(path, -1, hdr); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirTimes{path: path, ts: times(hdr)})
	return nil
}

func isWhiteoutDevice(mode uint32) bool {
	return mode&unix.S_IFMT == unix.S_IFCHR
}

func (x *extraction) file(path string, parent parentDir, hdr *tar.Header, r io.Reader) error {
	mode := perm(hdr)
	var fd int
	_, _, err := x.create(path, false, func() error {
		var err error
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode)
		return err
	})
	if err != nil {
		return err
	}
	err = x.writeFile(fd, parent, hdr, r)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

func (x *extraction) writeFile(fd int, parent parentDir, hdr *tar.Header, r io.Reader) error {
	var kicked int64 // bytes handed to early writeback
	for remaining := hdr.Size; remaining > 0; {
		if remaining < hdr.Size {
			if err := x.ctx.Err(); err != nil {
				return err
			}
		}
		chunk := x.buf
		if int64(len(chunk)) > remaining {
			chunk = chunk[:remaining]
		}
		n, err := io.ReadFull(r, chunk)
		if err != nil {
			return fmt.Errorf("read content: %w", err)
		}
		if err := writeAll(fd, chunk[:n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		remaining -= int64(n)
		if written := hdr.Size - remaining; written-kicked >= earlyWritebackMin {
			startWriteback(fd, kicked, written-kicked)
			kicked = written
		}
	}
	if kicked > 0 && hdr.Size > kicked {
		startWriteback(fd, kicked, hdr.Size-kicked)
	}
	mode := perm(hdr)
	// chown before chmod: chown clears the set-id bits.
	chown := x.needChown(parent, hdr)
	if chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if chown || x.needChmod(mode) {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := x.xattrs("", fd, hdr); err != nil {
		return err
	}
	// Times last, through the open file: no second path lookup.
	ts := times(hdr)
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// earlyWritebackMin is how much of a large file is written before those
// pages are sent to the disk, without waiting; smaller files are left to the
// layer's syncfs.
const earlyWritebackMin = 4 << 20

// startWriteback sends a written range to the disk without waiting for it.
// The caller's syncfs then finds little of the layer left to write: it is
// shorter, and so are the stalls of the other layers' extractions it causes
// (metadata being written back is locked against their changes).
func startWriteback(fd int, off, n int64) {
	// Advisory: the syncfs that makes the layer durable does not depend on it.
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

func (x *extraction) symlink(path string, parent parentDir, hdr *tar.Header) error {
	// Any target may be stored: a symlink is never followed outside the
	// layer, neither here (parentDir) nor when the layer is mounted.
	if _, _, err := x.create(path, false, func() error { return unix.Symlink(hdr.Linkname, path) }); err != nil {
		return err
	}
	if x.needChown(parent, hdr) {
		if err := unix.Lchown(path, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := x.xattrs(path, -1, hdr); err != nil {
		return err
	}
	return x.setTimes(path, hdr)
}

// hardlink links path to another entry of the layer. The target's name is
// checked and resolved like an entry's, so it cannot reach outside.
func (x *extraction) hardlink(path string, hdr *tar.Header) error {
	var target string
	if stashed, ok := x.aufsLinkTarget(hdr.Linkname); ok {
		target = stashed
	} else {
		clean, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		if clean == "." {
			return fmt.Errorf("hard link to the layer root")
		}
		parent, err := x.existingDir(filepath.Dir(clean))
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		target = parent + "/" + filepath.Base(clean)
	}
	if target == path {
		// Linking a name to itself leaves it as it is.
		return nil
	}
	// linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what
	// it points to.
	if _, _, err := x.create(path, false, func() error { return unix.Linkat(unix.AT_FDCWD, target, unix.AT_FDCWD, path, 0) }); err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (x *extraction) node(path string, hdr *tar.Header) error {
	mode := perm(hdr)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if _, _, err := x.create(path, false, func() error { return unix.Mknod(path, mode, int(dev)) }); err != nil {
		return err
	}
	if err := unix.Lchown(path, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Chmod(path, perm(hdr)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := x.xattrs(path, -1, hdr); err != nil {
		return err
	}
	return x.setTimes(path, hdr)
}

// whiteout records that name (in the directory parent) is deleted by this
// layer.
func (x *extraction) whiteout(parent, name string, hdr *tar.Header) error {
	path := parent + "/" + name
	if x.mode == whiteoutDelete {
		if err := x.removeAll(path); err != nil {
			return fmt.Errorf("delete %q: %w", name, err)
		}
		return nil
	}
	if _, _, err := x.create(path, false, func() error { return unix.Mknod(path, unix.S_IFCHR, 0) }); err != nil {
		return fmt.Errorf("whiteout device: %w", err)
	}
	if err := unix.Lchown(path, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown whiteout: %w", err)
	}
	return nil
}

// opaque records that the directory dir hides what lower layers had in it.
func (x *extraction) opaque(dir string) error {
	if x.mode == whiteoutOverlay {
		if err := unix.Lsetxattr(dir, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
		return nil
	}
	return x.clearLower(dir)
}

// clearLower deletes what dir holds that this tar did not write.
func (x *extraction) clearLower(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if _, ok := x.unpacked[p]; ok {
			if e.IsDir() {
				if err := x.clearLower(p); err != nil {
					return err
				}
			}
			continue
		}
		if err := x.removeAll(p); err != nil {
			return fmt.Errorf("clear opaque directory: %w", err)
		}
	}
	return nil
}

// stashAUFSLink extracts a file of AUFS's hard-link directory to a temporary
// place inside the layer, for later hard links to point at.
func (x *extraction) stashAUFSLink(tr *tar.Reader, hdr *tar.Header, base string) error {
	if x.plnkDir == "" {
		dir, err := os.MkdirTemp(x.root, ".aufs-plnk-")
		if err != nil {
			return err
		}
		x.plnkDir, x.plnk = dir, map[string]string{}
		x.markUnpacked(dir)
	}
	path := x.plnkDir + "/" + base
	if err := x.file(path, parentDir{path: x.plnkDir, setgid: true}, hdr, tr); err != nil {
		return err
	}
	x.plnk[base] = path
	return nil
}

// aufsLinkTarget returns where a hard link into AUFS's hard-link directory
// was stashed.
func (x *extraction) aufsLinkTarget(linkname string) (string, bool) {
	if x.plnk == nil || !strings.HasPrefix(filepath.Clean(linkname), whiteoutLinkDir+"/") {
		return "", false
	}
	p, ok := x.plnk[filepath.Base(linkname)]
	return p, ok
}

// xattrs sets the PAX xattr records of hdr on path (or fd when fd >= 0).
// Like Docker, xattrs the filesystem refuses (EPERM, ENOTSUP) are dropped.
func (x *extraction) xattrs(path string, fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if x.mode == whiteoutOverlay && strings.HasPrefix(name, overlayXattrPrefix) {
			// overlayfs metadata comes only from whiteouts we convert; a
			// tar must not plant redirects or opaque marks of its own.
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(path, name, []byte(v), 0)
		}
		if err != nil && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func (x *extraction) setTimes(path string, hdr *tar.Header) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// maxUnixSec is the last time Docker keeps (year 2242); later ones become
// the epoch.
const maxUnixSec = 1 << 33

// times returns atime and mtime of hdr; a missing atime is the mtime, and
// times out of range become the epoch, like Docker.
func times(hdr *tar.Header) [2]unix.Timespec {
	m := hdr.ModTime
	a := hdr.AccessTime
	if a.IsZero() {
		a = m
	}
	return [2]unix.Timespec{timespec(a), timespec(m)}
}

func timespec(t time.Time) unix.Timespec {
	if sec := t.Unix(); sec < 0 || sec > maxUnixSec {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
