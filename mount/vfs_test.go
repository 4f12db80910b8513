package mount

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestVFSCreateCopiesParent checks that a child starts as an exact copy of
// its parent and that the parent is not touched by what the child does.
func TestVFSCreateCopiesParent(t *testing.T) {
	d := openDriver(t, factories[1])
	ctx := context.Background()
	t1 := time.Date(2018, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := d.Create(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	tb := buildTar(t,
		tdir("etc/", mode(0o750), owner(3, 4), mtime(t1), xattr("user.d", "dv")),
		tfile("etc/f", "f", mode(0o2755), owner(5, 6), mtime(t1), xattr("user.f", "fv")),
		thardlink("etc/f2", "etc/f"),
		tsymlink("etc/s", "f", owner(7, 8), mtime(t1)),
		tfifo("fifo", mode(0o620), mtime(t1)),
		tdev(tar.TypeChar, "null", 1, 3),
		tfile("big", "", content(bytes.Repeat([]byte("0123456789abcdef"), 300000))),
	)
	if _, err := d.ApplyDiff(ctx, "p", bytes.NewReader(tb), ApplyOptions{AllowDeviceNodes: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, "c", "p"); err != nil {
		t.Fatal(err)
	}
	c := d.DiffPath("c")
	assertMeta(t, filepath.Join(c, "etc"), unix.S_IFDIR, 0o750, 3, 4, t1)
	assertXattr(t, filepath.Join(c, "etc"), "user.d", "dv")
	assertMeta(t, filepath.Join(c, "etc/f"), unix.S_IFREG, 0o2755, 5, 6, t1)
	assertXattr(t, filepath.Join(c, "etc/f"), "user.f", "fv")
	assertContent(t, filepath.Join(c, "etc/f"), "f")
	if a, b := lstat(t, filepath.Join(c, "etc/f")), lstat(t, filepath.Join(c, "etc/f2")); a.Ino != b.Ino {
		t.Error("hard link became two files")
	}
	if a, b := lstat(t, filepath.Join(c, "etc/f")), lstat(t, filepath.Join(d.DiffPath("p"), "etc/f")); a.Ino == b.Ino {
		t.Error("child shares an inode with its parent")
	}
	assertMeta(t, filepath.Join(c, "etc/s"), unix.S_IFLNK, 0, 7, 8, t1)
	assertMeta(t, filepath.Join(c, "fifo"), unix.S_IFIFO, 0o620, 0, 0, t1)
	if st := lstat(t, filepath.Join(c, "null")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Error("device node not copied")
	}
	if a, b := readString(t, filepath.Join(c, "big")), readString(t, filepath.Join(d.DiffPath("p"), "big")); a != b {
		t.Error("big file differs")
	}

	tb = buildTar(t, twhiteout("etc/.wh.f"), tfile("new", "n"))
	if _, err := d.ApplyDiff(ctx, "c", bytes.NewReader(tb), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, filepath.Join(c, "etc/f"))
	assertContent(t, filepath.Join(c, "etc/f2"), "f")
	if got := names(t, d.DiffPath("p")); !slices.Equal(got, []string{"big", "etc", "fifo", "null"}) {
		t.Errorf("parent changed: %v", got)
	}
	assertContent(t, filepath.Join(d.DiffPath("p"), "etc/f"), "f")
	if _, err := os.Lstat(filepath.Join(d.DiffPath("p"), "new")); err == nil {
		t.Error("child's file appeared in the parent")
	}
}
