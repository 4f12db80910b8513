package mount

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDriverConformance runs the behaviour every driver must share.
func TestDriverConformance(t *testing.T) {
	for _, f := range factories {
		t.Run(f.name, func(t *testing.T) {
			t.Run("FilesAndMetadata", func(t *testing.T) { testFilesAndMetadata(t, f) })
			t.Run("OwnersAndModes", func(t *testing.T) { testOwnersAndModes(t, f) })
			t.Run("Whiteouts", func(t *testing.T) { testWhiteouts(t, f) })
			t.Run("OpaqueDirs", func(t *testing.T) { testOpaque(t, f) })
			t.Run("Replace", func(t *testing.T) { testReplace(t, f) })
			t.Run("SymlinkParentsInside", func(t *testing.T) { testSymlinkParentsInside(t, f) })
			t.Run("DeviceNodesAllowed", func(t *testing.T) { testDevices(t, f) })
			t.Run("AUFSHardLinks", func(t *testing.T) { testAUFSHardLinks(t, f) })
			t.Run("StopsAtEndOfArchive", func(t *testing.T) { testStopsAtEnd(t, f) })
			t.Run("Cancel", func(t *testing.T) { testCancel(t, f) })
			t.Run("MountRefCount", func(t *testing.T) { testMountRefCount(t, f) })
			t.Run("RemoveListExists", func(t *testing.T) { testRemoveListExists(t, f) })
			t.Run("BadIDs", func(t *testing.T) { testBadIDs(t, f) })
			t.Run("Breakouts", func(t *testing.T) { testBreakouts(t, f) })
		})
	}
}

func testFilesAndMetadata(t *testing.T, f factory) {
	d := openDriver(t, f)
	t1 := time.Date(2019, 1, 2, 3, 4, 5, 0, time.UTC)
	t2 := time.Date(2020, 6, 7, 8, 9, 10, 123456789, time.UTC)
	t3 := time.Date(2022, 11, 12, 13, 14, 15, 0, time.UTC)
	big := make([]byte, 3<<20+17)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(big)
	st := layer(t, d, "base", "",
		tdir("etc/", mode(0o750), owner(1000, 1001), mtime(t1), xattr("user.dir", "d")),
		tfile("etc/conf", "hello", mode(0o640), owner(1000, 1001), mtime(t2), atime(t3), xattr("user.test", "v1")),
		tsymlink("etc/link", "conf", owner(5, 6), mtime(t1)),
		tsymlink("abs", "/etc/passwd"),
		thardlink("etc/hard", "etc/conf"),
		tfile("bin/suid", "#!", mode(0o4755)),
		tfile("./dot/slash", "x"),
		tfile("big", "", content(big)),
		tfile("empty", ""),
		tfifo("run/fifo", mode(0o600), owner(7, 8), mtime(t1)),
		tdir("deep/a/b/c/", mode(0o711), mtime(t3)),
		tfile("deep/a/b/c/f", "deep"),
		tdir("deep/", mode(0o700), mtime(t1)),
	)
	if want := int64(5 + 2 + 1 + 4 + len(big)); st.Size != want {
		t.Errorf("Size = %d, want %d", st.Size, want)
	}
	if st.Entries != 13 {
		t.Errorf("Entries = %d, want 13", st.Entries)
	}
	// Reading a file may move its atime (relatime), so look first.
	if got := lstat(t, filepath.Join(d.DiffPath("base"), "etc/conf")).Atim; got.Sec != t3.Unix() {
		t.Errorf("atime %d, want %d", got.Sec, t3.Unix())
	}
	for _, root := range []string{d.DiffPath("base"), mountView(t, d, "base")} {
		p := func(s string) string { return filepath.Join(root, s) }
		assertMeta(t, p("etc"), unix.S_IFDIR, 0o750, 1000, 1001, t1)
		assertMeta(t, p("etc/conf"), unix.S_IFREG, 0o640, 1000, 1001, t2)
		assertContent(t, p("etc/conf"), "hello")
		if got := lstat(t, p("etc/conf")).Mtim.Nsec; got != 123456789 {
			t.Errorf("mtime nanoseconds %d lost", got)
		}
		assertXattr(t, p("etc/conf"), "user.test", "v1")
		assertXattr(t, p("etc"), "user.dir", "d")
		assertMeta(t, p("etc/link"), unix.S_IFLNK, 0, 5, 6, t1)
		if target, _ := os.Readlink(p("etc/link")); target != "conf" {
			t.Errorf("etc/link -> %q", target)
		}
		if target, _ := os.Readlink(p("abs")); target != "/etc/passwd" {
			t.Errorf("abs -> %q", target)
		}
		if a, b := lstat(t, p("etc/conf")), lstat(t, p("etc/hard")); a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("etc/hard is not a hard link of etc/conf (ino %d/%d nlink %d)", a.Ino, b.Ino, a.Nlink)
		}
		assertMeta(t, p("bin/suid"), unix.S_IFREG, 0o4755, 0, 0, t0)
		// A parent without an entry is made like Docker makes it.
		if m := lstat(t, p("bin")).Mode & 0o7777; m != 0o755 {
			t.Errorf("implicit parent mode %o", m)
		}
		assertContent(t, p("dot/slash"), "x")
		if got, _ := os.ReadFile(p("big")); !bytes.Equal(got, big) {
			t.Errorf("big file content differs")
		}
		assertContent(t, p("empty"), "")
		assertMeta(t, p("run/fifo"), unix.S_IFIFO, 0o600, 7, 8, t1)
		// Directory times are set after their content is written.
		assertMeta(t, p("deep"), unix.S_IFDIR, 0o700, 0, 0, t1)
		assertMeta(t, p("deep/a/b/c"), unix.S_IFDIR, 0o711, 0, 0, t3)
		assertContent(t, p("deep/a/b/c/f"), "deep")
	}
}

// testOwnersAndModes covers what the umask and setgid directories would
// change if the extractor trusted creation alone.
func testOwnersAndModes(t *testing.T, f factory) {
	d := openDriver(t, f)
	layer(t, d, "l1", "",
		tdir("g/", mode(0o2775), owner(0, 1234)),
		tfile("g/f", "f", owner(0, 0)),
		tdir("g/sub/", owner(0, 0)),
		tsymlink("g/ln", "f", owner(0, 0)),
		tfile("open", "o", mode(0o777)),
		tdir("tmp/", mode(0o1777)),
		tfile("none", "n", mode(0)),
		tfile("sgid", "s", mode(0o2711), owner(0, 50)),
		tdir("ro/", mode(0o555)),
		tfile("ro/inside", "i", mode(0o444)),
	)
	v := mountView(t, d, "l1")
	assertMeta(t, filepath.Join(v, "g"), unix.S_IFDIR, 0o2775, 0, 1234, t0)
	assertMeta(t, filepath.Join(v, "g/f"), unix.S_IFREG, 0o644, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "g/sub"), unix.S_IFDIR, 0o755, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "g/ln"), unix.S_IFLNK, 0, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "open"), unix.S_IFREG, 0o777, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "tmp"), unix.S_IFDIR, 0o1777, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "none"), unix.S_IFREG, 0, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "sgid"), unix.S_IFREG, 0o2711, 0, 50, t0)
	assertMeta(t, filepath.Join(v, "ro"), unix.S_IFDIR, 0o555, 0, 0, t0)
	assertMeta(t, filepath.Join(v, "ro/inside"), unix.S_IFREG, 0o444, 0, 0, t0)
}

func assertXattr(t *testing.T, p, name, want string) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		t.Errorf("%s: xattr %s: %v", p, name, err)
		return
	}
	if string(buf[:n]) != want {
		t.Errorf("%s: xattr %s = %q, want %q", p, name, buf[:n], want)
	}
}

func testWhiteouts(t *testing.T, f factory) {
	d := openDriver(t, f)
	layer(t, d, "l1", "",
		tfile("a", "a"), tfile("b", "b"),
		tdir("d/"), tfile("d/x", "x"), tdir("d/sub/"), tfile("d/sub/y", "y"),
		tdir("gone/"), tfile("gone/deep", "z"),
	)
	layer(t, d, "l2", "l1",
		twhiteout(".wh.a"),
		twhiteout("d/.wh.x"),
		twhiteout(".wh.gone"),
		twhiteout(".wh.never-existed"),
	)
	layer(t, d, "l3", "l2", tfile("a", "again"))
	v2 := mountView(t, d, "l2")
	assertAbsent(t, filepath.Join(v2, "a"))
	assertAbsent(t, filepath.Join(v2, "d/x"))
	assertAbsent(t, filepath.Join(v2, "gone"))
	assertContent(t, filepath.Join(v2, "b"), "b")
	assertContent(t, filepath.Join(v2, "d/sub/y"), "y")
	if got := names(t, v2); !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("l2 root = %v", got)
	}
	v3 := mountView(t, d, "l3")
	assertContent(t, filepath.Join(v3, "a"), "again")
	assertAbsent(t, filepath.Join(v3, "gone"))
}

func testOpaque(t *testing.T, f factory) {
	d := openDriver(t, f)
	layer(t, d, "l1", "",
		tdir("o/"), tfile("o/x", "x"), tdir("o/sub/"), tfile("o/sub/y", "y"),
		tdir("p/"), tfile("p/old", "old"), tdir("p/keep/"), tfile("p/keep/old", "old"),
		tfile("other", "other"),
	)
	layer(t, d, "l2", "l1",
		// Docker's order: the marker right after its directory.
		tdir("o/", mode(0o711)), twhiteout("o/.wh..wh..opq"), tfile("o/new", "new"),
		// The marker after content of the same tar keeps that content.
		tdir("p/"), tfile("p/kept", "kept"), tdir("p/keep/"), tfile("p/keep/new", "new"),
		twhiteout("p/.wh..wh..opq"),
	)
	v := mountView(t, d, "l2")
	if got := names(t, filepath.Join(v, "o")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("o = %v, want [new]", got)
	}
	if m := lstat(t, filepath.Join(v, "o")).Mode & 0o7777; m != 0o711 {
		t.Errorf("o mode %o", m)
	}
	if got := names(t, filepath.Join(v, "p")); !slices.Equal(got, []string{"keep", "kept"}) {
		t.Errorf("p = %v, want [keep kept]", got)
	}
	if got := names(t, filepath.Join(v, "p/keep")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("p/keep = %v, want [new]", got)
	}
	assertContent(t, filepath.Join(v, "other"), "other")
	for _, n := range []string{"o/.wh..wh..opq", "p/.wh..wh..opq"} {
		assertAbsent(t, filepath.Join(v, n))
		assertAbsent(t, filepath.Join(d.DiffPath("l2"), n))
	}
}

func testReplace(t *testing.T, f factory) {
	d := openDriver(t, f)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	layer(t, d, "l1", "",
		tfile("f", "file"), tdir("d/"), tfile("d/c", "c"), tsymlink("s", "f"),
		// The same name twice in one tar: the last entry wins.
		tfile("x", "x"), tdir("x/"), tfile("x/y", "y"),
		tsymlink("z", "x"), tfile("z", "z"),
		// A symlink pointing outside is replaced, never written through.
		tsymlink("evil", secret), tfile("evil", "mine"),
		tdir("dd/"), tsymlink("dd", "x"),
	)
	layer(t, d, "l2", "l1", tdir("f/"), tfile("f/in", "in"), tfile("d", "now a file"), tfile("s", "not a link"))
	v1 := mountView(t, d, "l1")
	assertMeta(t, filepath.Join(v1, "x"), unix.S_IFDIR, 0o755, 0, 0, t0)
	assertContent(t, filepath.Join(v1, "x/y"), "y")
	assertMeta(t, filepath.Join(v1, "z"), unix.S_IFREG, 0o644, 0, 0, t0)
	assertContent(t, filepath.Join(v1, "z"), "z")
	assertMeta(t, filepath.Join(v1, "evil"), unix.S_IFREG, 0o644, 0, 0, t0)
	assertContent(t, filepath.Join(v1, "evil"), "mine")
	assertMeta(t, filepath.Join(v1, "dd"), unix.S_IFLNK, 0, 0, 0, t0)
	assertContent(t, secret, "secret")
	v2 := mountView(t, d, "l2")
	assertContent(t, filepath.Join(v2, "f/in"), "in")
	assertContent(t, filepath.Join(v2, "d"), "now a file")
	assertMeta(t, filepath.Join(v2, "s"), unix.S_IFREG, 0o644, 0, 0, t0)
	assertContent(t, filepath.Join(v2, "f/../f/in"), "in")
}

// testSymlinkParentsInside: a symlink that stays in the layer is followed
// like the kernel would in a chroot, and a resolved parent is forgotten
// when the link is replaced.
func testSymlinkParentsInside(t *testing.T, f factory) {
	d := openDriver(t, f)
	layer(t, d, "l1", "",
		tdir("usr/"), tdir("usr/lib/"),
		tsymlink("lib", "usr/lib"),
		tfile("lib/a", "a"),
		tdir("a/"), tdir("a/b/"), tsymlink("a/b/up", "../../usr"),
		tfile("a/b/up/viaup", "up"),
		tdir("lib/"),
		tfile("lib/b", "b"),
	)
	v := mountView(t, d, "l1")
	assertContent(t, filepath.Join(v, "usr/lib/a"), "a")
	assertContent(t, filepath.Join(v, "usr/viaup"), "up")
	assertMeta(t, filepath.Join(v, "lib"), unix.S_IFDIR, 0o755, 0, 0, t0)
	assertContent(t, filepath.Join(v, "lib/b"), "b")
	assertAbsent(t, filepath.Join(v, "usr/lib/b"))
}

func testDevices(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx := context.Background()
	if err := d.Create(ctx, "dev", ""); err != nil {
		t.Fatal(err)
	}
	tb := buildTar(t, tdev(tar.TypeChar, "dev/null", 1, 3), tdev(tar.TypeBlock, "dev/loop9", 7, 9))
	if _, err := d.ApplyDiff(ctx, "dev", bytes.NewReader(tb), ApplyOptions{AllowDeviceNodes: true}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(d.DiffPath("dev"), "dev/null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	st = lstat(t, filepath.Join(d.DiffPath("dev"), "dev/loop9"))
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
		t.Errorf("dev/loop9: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

// testAUFSHardLinks covers old AUFS-made layers whose hard links point into
// /.wh..wh.plnk, a directory that is not extracted.
func testAUFSHardLinks(t *testing.T, f factory) {
	d := openDriver(t, f)
	layer(t, d, "l1", "",
		tdir(".wh..wh.plnk/"),
		tfile(".wh..wh.plnk/123.456", "shared", mode(0o755)),
		tfile(".wh..wh.aufs", ""),
		thardlink("usr/a", ".wh..wh.plnk/123.456"),
		thardlink("usr/b", ".wh..wh.plnk/123.456"),
	)
	diff := d.DiffPath("l1")
	assertContent(t, filepath.Join(diff, "usr/a"), "shared")
	assertContent(t, filepath.Join(diff, "usr/b"), "shared")
	if got := names(t, diff); !slices.Equal(got, []string{"usr"}) {
		t.Errorf("layer root = %v, want [usr]", got)
	}
}

func testStopsAtEnd(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx := context.Background()
	if err := d.Create(ctx, "lay", ""); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(append(buildTar(t, tfile("a", "a")), "TRAILER"...))
	if _, err := d.ApplyDiff(ctx, "lay", r, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "TRAILER" {
		t.Errorf("left unread %q, want TRAILER", rest)
	}
}

func testCancel(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Create(ctx, "lay", ""); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err := d.ApplyDiff(ctx, "lay", bytes.NewReader(buildTar(t, tfile("a", "a"))), ApplyOptions{})
	if err == nil {
		t.Fatal("apply with a cancelled context succeeded")
	}
	if got := names(t, d.DiffPath("lay")); len(got) != 0 {
		t.Errorf("diff after cancel = %v", got)
	}
}

func testMountRefCount(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx := context.Background()
	layer(t, d, "base", "", tfile("a", "a"))
	layer(t, d, "top", "base", tfile("b", "b"))
	for _, id := range []string{"base", "top"} {
		p1, err := d.Mount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := d.Mount(ctx, id)
		if err != nil || p2 != p1 {
			t.Fatalf("second mount: %q %v, want %q", p2, err, p1)
		}
		if err := d.Unmount(ctx, id); err != nil {
			t.Fatal(err)
		}
		assertContent(t, filepath.Join(p1, "a"), "a")
		if err := d.Unmount(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := d.Unmount(ctx, id); err != nil {
			t.Fatalf("unmount of an unmounted layer: %v", err)
		}
	}
	if _, err := d.Mount(ctx, "missing"); err == nil {
		t.Error("mount of a missing layer succeeded")
	}
}

func testRemoveListExists(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx := context.Background()
	layer(t, d, "aaa", "", tfile("a", "a"))
	layer(t, d, "bbb", "aaa", tfile("b", "b"))
	layer(t, d, "bbb-init", "bbb", tfile("etc/hosts", ""))
	ids, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"aaa", "bbb", "bbb-init"}) {
		t.Errorf("List = %v", ids)
	}
	if err := d.Sync(ctx, "bbb"); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if !d.Exists("bbb") || d.Exists("ccc") || d.Exists("../bbb") {
		t.Error("Exists is wrong")
	}
	if err := d.Create(ctx, "bbb", ""); err == nil {
		t.Error("Create of an existing id succeeded")
	}
	if err := d.Create(ctx, "ccc", "nothere"); err == nil {
		t.Error("Create on a missing parent succeeded")
	}
	mountView(t, d, "bbb-init")
	for range 2 {
		if err := d.Remove(ctx, "bbb-init"); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if d.Exists("bbb-init") {
		t.Error("removed layer exists")
	}
	if err := d.Remove(ctx, "never"); err != nil {
		t.Errorf("Remove of a missing layer: %v", err)
	}
	ids, _ = d.List(ctx)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"aaa", "bbb"}) {
		t.Errorf("List after Remove = %v", ids)
	}
}

func testBadIDs(t *testing.T, f factory) {
	d := openDriver(t, f)
	ctx := context.Background()
	for _, id := range []string{"", "l", ".", "..", "../x", "a/b", ".hidden", "a:b", "a,b", strings.Repeat("a", 200)} {
		if err := d.Create(ctx, id, ""); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
		if err := d.Remove(ctx, id); err == nil {
			t.Errorf("Remove(%q) succeeded", id)
		}
	}
}

// testBreakouts applies one hostile tar per class. Each must fail with an
// error naming the entry and leave the layer directory empty and the
// directory next to it untouched.
func testBreakouts(t *testing.T, f factory) {
	for _, tc := range breakoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := openDriver(t, f)
			ctx := context.Background()
			outside := t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(outside, "dir"), 0o755); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, outside)
			layer(t, d, "parent", "", tfile("lower", "lower"), tdir("ok/"), tfile("ok/f", "f"))
			if err := d.Create(ctx, "lay", "parent"); err != nil {
				t.Fatal(err)
			}
			diff := d.DiffPath("lay")
			rel, err := filepath.Rel(diff, outside)
			if err != nil {
				t.Fatal(err)
			}
			entries := append([]te{tdir("ok/"), tfile("ok/first", "written before")}, tc.entries(outside, rel)...)
			_, err = d.ApplyDiff(ctx, "lay", bytes.NewReader(buildTar(t, entries...)), ApplyOptions{})
			if err == nil {
				t.Fatal("hostile tar applied without error")
			}
			bad := entries[len(entries)-1].hdr.Name
			if want := fmt.Sprintf("entry %q", bad); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %v", err, tc.want)
			}
			if got := names(t, diff); len(got) != 0 {
				t.Errorf("layer left with %v", got)
			}
			if after := snapshot(t, outside); !maps.Equal(before, after) {
				t.Errorf("outside dir changed: %v -> %v", before, after)
			}
			// The parent is unharmed whatever the driver.
			assertContent(t, filepath.Join(d.DiffPath("parent"), "ok/f"), "f")
		})
	}
}

type breakoutCase struct {
	name string
	// entries returns the hostile entries (the last one is the one to be
	// refused) given the outside directory and its path relative to the
	// layer's diff dir.
	entries func(outside, rel string) []te
	want    error
}

func breakoutCases() []breakoutCase {
	return []breakoutCase{
		{"AbsoluteName", func(o, rel string) []te { return []te{tfile(o+"/pwned", "x")} }, ErrBreakout},
		{"DotDot", func(o, rel string) []te { return []te{tfile(rel+"/pwned", "x")} }, ErrBreakout},
		{"DotDotInMiddle", func(o, rel string) []te { return []te{tfile("ok/../../"+rel+"/pwned", "x")} }, ErrBreakout},
		{"DotDotDir", func(o, rel string) []te { return []te{tdir(rel + "/newdir/")} }, ErrBreakout},
		{"SymlinkParentAbsolute", func(o, rel string) []te {
			return []te{tsymlink("evil", o), tfile("evil/pwned", "x")}
		}, ErrBreakout},
		{"SymlinkParentRelative", func(o, rel string) []te {
			return []te{tsymlink("evil", rel), tfile("evil/pwned", "x")}
		}, ErrBreakout},
		{"SymlinkParentDeep", func(o, rel string) []te {
			return []te{tsymlink("evil", o), tfile("evil/sub/dir/pwned", "x")}
		}, ErrBreakout},
		{"SymlinkChain", func(o, rel string) []te {
			return []te{tdir("a/"), tsymlink("a/up", "../.."), tsymlink("hop", "a/up"), tfile("hop/pwned", "x")}
		}, ErrBreakout},
		{"SymlinkParentDir", func(o, rel string) []te {
			return []te{tsymlink("evil", o), tdir("evil/dir/", mode(0o777))}
		}, ErrBreakout},
		{"SymlinkParentSymlink", func(o, rel string) []te {
			return []te{tsymlink("evil", o), tsymlink("evil/pwned", "/etc/passwd")}
		}, ErrBreakout},
		{"HardlinkAbsolute", func(o, rel string) []te { return []te{thardlink("h", o+"/secret")} }, ErrBreakout},
		{"HardlinkDotDot", func(o, rel string) []te { return []te{thardlink("h", rel+"/secret")} }, ErrBreakout},
		{"HardlinkThroughSymlink", func(o, rel string) []te {
			return []te{tsymlink("evil", o), thardlink("h", "evil/secret")}
		}, ErrBreakout},
		{"WhiteoutDot", func(o, rel string) []te { return []te{twhiteout("ok/.wh..")} }, ErrBreakout},
		{"WhiteoutDotDot", func(o, rel string) []te { return []te{twhiteout("ok/.wh...")} }, ErrBreakout},
		{"WhiteoutRootDotDot", func(o, rel string) []te { return []te{twhiteout(".wh...")} }, ErrBreakout},
		{"WhiteoutThroughSymlink", func(o, rel string) []te {
			return []te{tsymlink("evil", o), twhiteout("evil/.wh.secret")}
		}, ErrBreakout},
		{"OpaqueThroughSymlink", func(o, rel string) []te {
			return []te{tsymlink("evil", o), twhiteout("evil/.wh..wh..opq")}
		}, ErrBreakout},
		{"WhiteoutDotDotPath", func(o, rel string) []te { return []te{twhiteout(rel + "/.wh.secret")} }, ErrBreakout},
		{"CharDevice", func(o, rel string) []te { return []te{tdev(tar.TypeChar, "dev/mem", 1, 1)} }, ErrDeviceNode},
		{"BlockDevice", func(o, rel string) []te { return []te{tdev(tar.TypeBlock, "dev/sda", 8, 0)} }, ErrDeviceNode},
	}
}
