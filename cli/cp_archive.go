package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The client side of `cp`, with the docker CLI's rules (its go-archive
// copy helpers): what the source is, what the destination is, and from
// those which directory the archive is extracted into and under which
// name.

// Errors of the copy rules, worded as go-archive's.
var (
	errCannotCopyDir = errors.New("cannot copy directory")
	errDirNotExists  = errors.New("no such directory")
	errNotDirectory  = errors.New("not a directory")
)

// copyInfo describes one side of a copy.
type copyInfo struct {
	Path       string
	Exists     bool
	IsDir      bool
	RebaseName string
}

func hasTrailingPathSeparator(p string) bool {
	return len(p) > 0 && p[len(p)-1] == filepath.Separator
}

func specifiesCurrentDir(p string) bool {
	return filepath.Base(p) == "."
}

// preserveTrailingDotOrSeparator puts back on cleaned what original ended
// with ("/." or "/"), which cleaning drops but which changes a copy's
// meaning.
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if !specifiesCurrentDir(cleaned) && specifiesCurrentDir(original) {
		if !hasTrailingPathSeparator(cleaned) {
			cleaned += string(filepath.Separator)
		}
		cleaned += "."
	}
	if !hasTrailingPathSeparator(cleaned) && hasTrailingPathSeparator(original) {
		cleaned += string(filepath.Separator)
	}
	return cleaned
}

// splitPathDirEntry splits a path into its directory and the entry in
// it, keeping "." as the entry of a path ending in "/.".
func splitPathDirEntry(p string) (dir, base string) {
	cleaned := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		cleaned += string(filepath.Separator) + "."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

// getRebaseName keeps the original name when following a link changed the
// last path element.
func getRebaseName(p, resolved string) (string, string) {
	var rebase string
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += string(filepath.Separator) + "."
	}
	if hasTrailingPathSeparator(p) && !hasTrailingPathSeparator(resolved) {
		resolved += string(filepath.Separator)
	}
	if filepath.Base(p) != filepath.Base(resolved) {
		rebase = filepath.Base(p)
	}
	return resolved, rebase
}

func resolveLocalPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return preserveTrailingDotOrSeparator(abs, p), nil
}

// copyInfoSourcePath is a local source: its parent's symlinks resolved,
// and the source itself followed only with -L.
func copyInfoSourcePath(p string, follow bool) (copyInfo, error) {
	var resolved, rebase string
	if follow {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		resolved, rebase = getRebaseName(p, r)
	} else {
		dir, base := filepath.Split(p)
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return copyInfo{}, err
		}
		resolved = rdir + string(filepath.Separator) + base
		if hasTrailingPathSeparator(p) && filepath.Base(p) != filepath.Base(resolved) {
			rebase = filepath.Base(p)
		}
	}
	st, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{Path: resolved, Exists: true, IsDir: st.IsDir(), RebaseName: rebase}, nil
}

// linkTargetPath is where symlink p points: target, or target taken from
// p's directory when it is relative.
func linkTargetPath(p, target string) string {
	if filepath.IsAbs(target) {
		return target
	}
	parent, _ := splitPathDirEntry(p)
	return filepath.Join(parent, target)
}

// copyInfoDestinationPath is a local destination: a final symlink is
// followed (a broken one names what to create); a missing path needs an
// existing parent directory.
func copyInfoDestinationPath(p string) (copyInfo, error) {
	original := p
	st, err := os.Lstat(p)
	if err == nil && st.Mode()&os.ModeSymlink == 0 {
		return copyInfo{Path: p, Exists: true, IsDir: st.IsDir()}, nil
	}
	for n := 0; err == nil && st.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, errors.New("too many symlinks in " + original)
		}
		target, rerr := os.Readlink(p)
		if rerr != nil {
			return copyInfo{}, rerr
		}
		p = linkTargetPath(p, target)
		st, err = os.Lstat(p)
	}
	if err != nil {
		if !os.IsNotExist(err) {
			return copyInfo{}, err
		}
		parent, _ := splitPathDirEntry(p)
		pst, err := os.Stat(parent)
		if err != nil {
			return copyInfo{}, err
		}
		if !pst.IsDir() {
			return copyInfo{}, errNotDirectory
		}
		return copyInfo{Path: p}, nil
	}
	return copyInfo{Path: p, Exists: true, IsDir: st.IsDir()}, nil
}

// prepareArchiveCopy decides, from both sides, the directory the archive
// of src is extracted into and renames its entries so the result gets the
// destination's name.
func prepareArchiveCopy(content io.Reader, src, dst copyInfo) (string, io.ReadCloser, error) {
	dstDir, dstBase := splitPathDirEntry(dst.Path)
	_, srcBase := splitPathDirEntry(src.Path)
	if src.RebaseName != "" {
		srcBase = src.RebaseName
	}
	switch {
	case dst.Exists && dst.IsDir:
		return dst.Path, io.NopCloser(content), nil
	case dst.Exists && src.IsDir:
		return "", nil, errCannotCopyDir
	case dst.Exists, src.IsDir:
		return dstDir, rebaseArchiveEntries(content, srcBase, dstBase), nil
	case hasTrailingPathSeparator(dst.Path) || specifiesCurrentDir(dst.Path):
		return "", nil, errDirNotExists
	default:
		return dstDir, rebaseArchiveEntries(content, srcBase, dstBase), nil
	}
}

// rebaseArchiveEntries renames the first oldBase in every entry name (and
// hard-link target) to newBase.
func rebaseArchiveEntries(content io.Reader, oldBase, newBase string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(content)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			// The names may outgrow USTAR's 100 bytes.
			hdr.Format = tar.FormatPAX
			hdr.Name = strings.Replace(hdr.Name, oldBase, newBase, 1)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = strings.Replace(hdr.Linkname, oldBase, newBase, 1)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// tarResource archives a local source: its entry named after its base
// name (or its rebase name), a directory with its tree ("." gives the
// content), symlinks as symlinks.
func tarResource(src copyInfo) (io.ReadCloser, error) {
	if _, err := os.Lstat(src.Path); err != nil {
		return nil, err
	}
	dir, base := splitPathDirEntry(src.Path)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := writeLocalTree(tw, dir, base, src.RebaseName)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func writeLocalTree(tw *tar.Writer, dir, base, rebase string) error {
	seen := map[[2]uint64]string{}
	root := filepath.Join(dir, base)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if base == "." && rel != "." {
			rel = "./" + rel
		}
		if rebase != "" {
			rel = strings.Replace(rel, base, rebase, 1)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		var link string
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Uname, hdr.Gname = "", ""
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := seen[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					seen[key] = hdr.Name
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
			f.Close()
			return err
		}
		return nil
	})
}

// copyTo extracts an archive from a container to a local destination.
func copyTo(content io.Reader, src copyInfo, dstPath string) error {
	dst, err := copyInfoDestinationPath(dstPath)
	if err != nil {
		return err
	}
	dstDir, archive, err := prepareArchiveCopy(content, src, dst)
	if err != nil {
		return err
	}
	defer archive.Close()
	return untarLocal(archive, dstDir)
}

// untarLocal extracts an archive into dest without changing owners (the
// files are the invoking user's, as with the docker CLI) and refusing to
// replace a directory with a non-directory or the other way round.
// Entries are written through an os.Root, so nothing the archive holds
// (names, symlinks) reaches outside dest.
func untarLocal(r io.Reader, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		if strings.HasPrefix(name, "/") {
			name = strings.TrimLeft(name, "/")
			if name == "" {
				name = "."
			}
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%q is outside of %q", hdr.Name, dest)
		}
		full := filepath.Join(dest, name)
		if parent := filepath.Dir(name); parent != "." {
			if _, err := root.Lstat(parent); os.IsNotExist(err) {
				if err := root.MkdirAll(parent, 0o755); err != nil {
					return err
				}
			}
		}
		isDir := hdr.Typeflag == tar.TypeDir
		if fi, err := root.Lstat(name); err == nil {
			switch {
			case fi.IsDir() && !isDir:
				return fmt.Errorf("cannot overwrite directory %q with non-directory %q", full, dest)
			case !fi.IsDir() && isDir:
				return fmt.Errorf("cannot overwrite non-directory %q with directory %q", full, dest)
			case fi.IsDir() && name == ".":
				continue
			case !fi.IsDir():
				if err := root.Remove(name); err != nil {
					return err
				}
			}
		}
		mode := hdr.FileInfo().Mode()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
			if err := root.Chmod(name, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{name, hdr.ModTime})
			continue
		case tar.TypeReg, tar.TypeRegA:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, hdr.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			target := filepath.Clean(strings.TrimLeft(hdr.Linkname, "/"))
			if target == ".." || strings.HasPrefix(target, "../") {
				return fmt.Errorf("invalid hardlink %q -> %q", full, hdr.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return err
			}
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if err := mknodIn(root, name, hdr); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			continue
		default:
			return fmt.Errorf("unhandled tar header type %d", hdr.Typeflag)
		}
		if err := root.Chmod(name, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chtimes(dirs[i].name, dirs[i].t, dirs[i].t); err != nil {
			return err
		}
	}
	return nil
}

// mknodIn makes a device node or fifo in root.
func mknodIn(root *os.Root, name string, hdr *tar.Header) error {
	parent, err := root.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	typ := uint32(unix.S_IFIFO)
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(int(parent.Fd()), filepath.Base(name), typ|0o600, int(dev)); err != nil {
		return &os.PathError{Op: "mknod", Path: name, Err: err}
	}
	return nil
}
