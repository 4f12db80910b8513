package mount

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func openOverlay(t *testing.T) *Overlay2 {
	t.Helper()
	d := openDriver(t, factories[0]).(*Overlay2)
	return d
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func isMounted(t *testing.T, p string) bool {
	t.Helper()
	ok, err := mountinfo.Mounted(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return ok
}

var shortRE = regexp.MustCompile(`^[A-Z2-7]{26}$`)

func TestOverlay2Layout(t *testing.T) {
	d := openOverlay(t)
	ctx := context.Background()
	ids := []string{"base", "mid", "top"}
	parent := ""
	for _, id := range ids {
		if err := d.Create(ctx, id, parent); err != nil {
			t.Fatal(err)
		}
		parent = id
	}
	short := map[string]string{}
	for _, id := range ids {
		dir := filepath.Join(d.root, id)
		s := readString(t, filepath.Join(dir, "link"))
		if !shortRE.MatchString(s) {
			t.Fatalf("%s/link = %q", id, s)
		}
		short[id] = s
		target, err := os.Readlink(filepath.Join(d.root, "l", s))
		if err != nil || target != "../"+id+"/diff" {
			t.Errorf("l/%s -> %q (%v), want ../%s/diff", s, target, err, id)
		}
		if st := lstat(t, filepath.Join(dir, "diff")); st.Mode&0o7777 != 0o755 {
			t.Errorf("%s/diff mode %o", id, st.Mode&0o7777)
		}
		assertAbsent(t, filepath.Join(dir, "merged"))
	}
	assertAbsent(t, filepath.Join(d.root, "base", "lower"))
	assertAbsent(t, filepath.Join(d.root, "base", "work"))
	if got := readString(t, filepath.Join(d.root, "mid", "lower")); got != "l/"+short["base"] {
		t.Errorf("mid/lower = %q", got)
	}
	if got, want := readString(t, filepath.Join(d.root, "top", "lower")), "l/"+short["mid"]+":l/"+short["base"]; got != want {
		t.Errorf("top/lower = %q, want %q", got, want)
	}
	if st := lstat(t, filepath.Join(d.root, "top", "work")); st.Mode&0o7777 != 0o700 {
		t.Errorf("work mode %o", st.Mode&0o7777)
	}

	merged := mountView(t, d, "top")
	if merged != filepath.Join(d.root, "top", "merged") || !isMounted(t, merged) {
		t.Fatalf("merged %s not mounted", merged)
	}
	if err := d.Unmount(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, merged)
	if _, err := d.Mount(ctx, "top"); err != nil { // for the cleanup's Unmount
		t.Fatal(err)
	}

	if err := d.Remove(ctx, "mid"); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, filepath.Join(d.root, "l", short["mid"]))
	assertAbsent(t, filepath.Join(d.root, "mid"))
	if got := names(t, filepath.Join(d.root, "l")); len(got) != 2 {
		t.Errorf("l/ = %v, want 2 links", got)
	}
	ids2, _ := d.List(ctx)
	slices.Sort(ids2)
	if !slices.Equal(ids2, []string{"base", "top"}) {
		t.Errorf("List = %v", ids2)
	}
}

func TestOverlay2PrunesDanglingLinks(t *testing.T) {
	d := openOverlay(t)
	layer(t, d, "kept", "")
	// What a crash between removing a layer and its link leaves.
	if err := os.Symlink("../gone/diff", filepath.Join(d.root, "l", "AAAAAAAAAAAAAAAAAAAAAAAAAA")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewOverlay2(d.root); err != nil {
		t.Fatal(err)
	}
	got := names(t, filepath.Join(d.root, "l"))
	if want := []string{readString(t, filepath.Join(d.root, "kept", "link"))}; !slices.Equal(got, want) {
		t.Errorf("l/ = %v, want %v", got, want)
	}
}

func TestOverlay2WhiteoutFormatOnDisk(t *testing.T) {
	d := openOverlay(t)
	layer(t, d, "base", "", tdir("d/"), tfile("d/x", "x"), tfile("a", "a"))
	layer(t, d, "up", "base",
		twhiteout(".wh.a"),
		tdir("d/", xattr("trusted.overlay.redirect", "/elsewhere")),
		twhiteout("d/.wh..wh..opq"),
		tfile("d/new", "new", xattr("trusted.overlay.origin", "x")),
		twhiteout(".wh.re"), tdir("re/"),
	)
	diff := d.DiffPath("up")
	st := lstat(t, filepath.Join(diff, "a"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout a: mode %o rdev %d, want char 0/0", st.Mode, st.Rdev)
	}
	assertXattr(t, filepath.Join(diff, "d"), "trusted.overlay.opaque", "y")
	// A directory replacing a whiteout hides the lower one: it is opaque.
	assertXattr(t, filepath.Join(diff, "re"), "trusted.overlay.opaque", "y")
	for _, p := range []string{"d", "d/new"} {
		buf := make([]byte, 1024)
		n, _ := unix.Llistxattr(filepath.Join(diff, p), buf)
		for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
			if strings.HasPrefix(name, "trusted.overlay.") && name != "trusted.overlay.opaque" {
				t.Errorf("%s: tar planted %s", p, name)
			}
		}
	}
	if got := names(t, diff); !slices.Equal(got, []string{"a", "d", "re"}) {
		t.Errorf("diff = %v", got)
	}
	if got := names(t, filepath.Join(diff, "d")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("diff/d = %v", got)
	}
}

// TestOverlay2ThreeLayerMount mounts a real chain and reads it as a
// container would.
func TestOverlay2ThreeLayerMount(t *testing.T) {
	d := openOverlay(t)
	layer(t, d, "l1", "",
		tfile("a", "a1"), tfile("b", "b1"), tfile("keep", "keep"),
		tdir("opq/"), tfile("opq/old", "old"), tdir("opq/sub/"), tfile("opq/sub/deep", "deep"),
		tdir("w/"), tfile("w/x", "x"), tfile("w/y", "y"),
	)
	layer(t, d, "l2", "l1",
		twhiteout(".wh.a"),
		tfile("b", "b2"),
		tdir("opq/"), twhiteout("opq/.wh..wh..opq"), tfile("opq/new", "new"),
		twhiteout("w/.wh.x"),
	)
	layer(t, d, "l3", "l2",
		tfile("a", "a3"),
		twhiteout(".wh.keep"),
		tfile("opq/newer", "newer"),
	)
	m2 := mountView(t, d, "l2")
	assertAbsent(t, filepath.Join(m2, "a"))
	assertContent(t, filepath.Join(m2, "b"), "b2")
	if got := names(t, filepath.Join(m2, "opq")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("l2 opq = %v, want [new]", got)
	}
	if got := names(t, filepath.Join(m2, "w")); !slices.Equal(got, []string{"y"}) {
		t.Errorf("l2 w = %v, want [y]", got)
	}

	m3 := mountView(t, d, "l3")
	if got := names(t, m3); !slices.Equal(got, []string{"a", "b", "opq", "w"}) {
		t.Errorf("l3 root = %v", got)
	}
	assertContent(t, filepath.Join(m3, "a"), "a3")
	assertContent(t, filepath.Join(m3, "b"), "b2")
	if got := names(t, filepath.Join(m3, "opq")); !slices.Equal(got, []string{"new", "newer"}) {
		t.Errorf("l3 opq = %v, want [new newer]", got)
	}
	// Writes land in the top layer's diff, lower layers stay as they are.
	if err := os.WriteFile(filepath.Join(m3, "w", "y"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m3, "b")); err != nil {
		t.Fatal(err)
	}
	assertContent(t, filepath.Join(d.DiffPath("l3"), "w", "y"), "changed")
	assertContent(t, filepath.Join(d.DiffPath("l1"), "w", "y"), "y")
	if st := lstat(t, filepath.Join(d.DiffPath("l3"), "b")); st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("deleting b did not leave a whiteout in l3's diff")
	}
}

// TestOverlay2ManyLayers mounts 125 layers, more than absolute paths fit in
// a page of mount options.
func TestOverlay2ManyLayers(t *testing.T) {
	d := openOverlay(t)
	ctx := context.Background()
	const n = 125
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i+1)
		parent := ""
		if i > 0 {
			parent = ids[i-1]
		}
		if err := d.Create(ctx, ids[i], parent); err != nil {
			t.Fatal(err)
		}
	}
	// Layers are independent: apply them all at once.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		tb := buildTar(t, tfile(fmt.Sprintf("f%03d", i), id), tfile("top", id))
		wg.Go(func() {
			_, errs[i] = d.ApplyDiff(ctx, id, bytes.NewReader(tb), ApplyOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	top := ids[n-1]
	lowers := readString(t, filepath.Join(d.root, top, "lower"))
	if got := strings.Count(lowers, ":") + 1; got != n-1 {
		t.Fatalf("lower has %d entries", got)
	}
	var abs []string
	for _, l := range strings.Split(lowers, ":") {
		abs = append(abs, filepath.Join(d.root, l))
	}
	if long := len(strings.Join(abs, ":")); long < unix.Getpagesize() {
		t.Fatalf("absolute lowerdir is only %d bytes: the relative mount path is not exercised", long)
	}
	m := mountView(t, d, top)
	if !isMounted(t, m) {
		t.Fatal("not mounted")
	}
	got := names(t, m)
	if len(got) != n+1 {
		t.Fatalf("merged has %d entries, want %d", len(got), n+1)
	}
	for i, id := range ids {
		assertContent(t, filepath.Join(m, fmt.Sprintf("f%03d", i)), id)
	}
	assertContent(t, filepath.Join(m, "top"), top)
	// The process's working directory is untouched by the relative mount.
	if wd, err := os.Getwd(); err != nil || strings.HasPrefix(wd, d.root) {
		t.Errorf("working directory %q (%v) moved into the layers root", wd, err)
	}
}

func TestOverlay2MaxDepth(t *testing.T) {
	d := openOverlay(t)
	ctx := context.Background()
	parent := ""
	for i := range maxDepth + 1 {
		id := fmt.Sprintf("x%03d", i)
		if err := d.Create(ctx, id, parent); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		parent = id
	}
	if err := d.Create(ctx, "toodeep", parent); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("layer %d: err = %v, want a depth error", maxDepth+1, err)
	}
	assertAbsent(t, filepath.Join(d.root, "toodeep"))
}

func TestOverlay2LoneLayerMount(t *testing.T) {
	d := openOverlay(t)
	layer(t, d, "base", "", tfile("a", "a"))
	p := mountView(t, d, "base")
	if p != d.DiffPath("base") {
		t.Errorf("lone layer mounted at %s, want its diff dir", p)
	}
	assertContent(t, filepath.Join(p, "a"), "a")
}

// TestOverlay2AdoptsExistingMount plays a daemon restart: a second driver
// on the same root finds the mount the first one left.
func TestOverlay2AdoptsExistingMount(t *testing.T) {
	d := openOverlay(t)
	ctx := context.Background()
	layer(t, d, "base", "", tfile("a", "a"))
	layer(t, d, "top", "base")
	merged, err := d.Mount(ctx, "top")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := NewOverlay2(d.root)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := d2.Mount(ctx, "top")
	if err != nil || m2 != merged {
		t.Fatalf("second driver mount: %s %v", m2, err)
	}
	if n := countMounts(t, merged); n != 1 {
		t.Fatalf("%d mounts on %s, want 1", n, merged)
	}
	if err := d2.Unmount(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	if isMounted(t, merged) {
		t.Fatal("still mounted after the adopting driver's last unmount")
	}
}

func countMounts(t *testing.T, p string) int {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p))
	if err != nil {
		t.Fatal(err)
	}
	return len(infos)
}

func TestOverlay2RemoveMounted(t *testing.T) {
	d := openOverlay(t)
	ctx := context.Background()
	layer(t, d, "base", "", tfile("a", "a"))
	layer(t, d, "top", "base")
	merged, err := d.Mount(ctx, "top")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mount(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	if isMounted(t, merged) {
		t.Error("still mounted after Remove")
	}
	assertAbsent(t, filepath.Join(d.root, "top"))
}

func TestNew(t *testing.T) {
	ctx := context.Background()
	if err := OverlaySupported(t.TempDir()); err != nil {
		t.Fatalf("OverlaySupported: %v", err)
	}
	root := filepath.Join(t.TempDir(), "layers")
	d, err := New(ctx, "", root)
	if err != nil || d.Name() != "overlay2" || !d.IndependentLayers() {
		t.Fatalf("New(\"\") = %v, %v", d, err)
	}
	if got := names(t, root); !slices.Equal(got, []string{"l"}) {
		t.Errorf("layers root after New = %v (scratch dirs left?)", got)
	}
	if d, err := New(ctx, "vfs", filepath.Join(t.TempDir(), "layers")); err != nil || d.Name() != "vfs" || d.IndependentLayers() {
		t.Fatalf("New(vfs) = %v, %v", d, err)
	}
	if _, err := New(ctx, "aufs", root); err == nil {
		t.Error("New(aufs) succeeded")
	}
	// A store made by vfs stays vfs when no driver is named.
	vroot := filepath.Join(t.TempDir(), "layers")
	v, err := NewVFS(vroot)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Create(ctx, "one", ""); err != nil {
		t.Fatal(err)
	}
	if d, err := New(ctx, "", vroot); err != nil || d.Name() != "vfs" {
		t.Fatalf("New(\"\") on a vfs store = %v, %v", d, err)
	}
}
