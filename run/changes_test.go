package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func changeLines(ch []container.FilesystemChange) string {
	var b strings.Builder
	for _, c := range ch {
		fmt.Fprintf(&b, "%s %s\n", c.Kind, c.Path)
	}
	return b.String()
}

func TestChangesOverlay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fresh := e.create([]string{"true"})
	ch, err := e.m.Changes(ctx, fresh)
	if err != nil || len(ch) != 0 || ch == nil {
		t.Errorf("a new container has changes: %v %q", err, changeLines(ch))
	}
	id, _ := e.runOut(t, "differ", []string{"sh", "-c", "touch /tmp/new; rm /etc/group; mkdir -p /root/sub/deeper; echo more >> /etc/passwd; rm -r /var"})
	ch, err = e.m.Changes(ctx, "differ")
	if err != nil {
		t.Fatal(err)
	}
	want := "C /etc\nD /etc/group\nC /etc/passwd\nC /root\nA /root/sub\nA /root/sub/deeper\nC /tmp\nA /tmp/new\nD /var\n"
	if got := changeLines(ch); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	// Files copied in are changes too.
	if err := e.m.ExtractToDir(ctx, id, "/home", ExtractOptions{}, makeTar(t, file("cp", "x", 0o644))); err != nil {
		t.Fatal(err)
	}
	ch, _ = e.m.Changes(ctx, id)
	if got := changeLines(ch); !strings.Contains(got, "C /home\nA /home/cp\n") {
		t.Errorf("after cp:\n%s", got)
	}
	if err := e.m.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Changes(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("changes of a removed container: %v", err)
	}
}

// TestChangesNaive checks the vfs comparison of two full trees.
func TestChangesNaive(t *testing.T) {
	oldRoot, newRoot := t.TempDir(), t.TempDir()
	mk := func(root string) {
		for _, d := range []string{"etc", "tmp", "var/lib/x", "same"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		for _, f := range []string{"etc/passwd", "etc/group", "same/f"} {
			os.WriteFile(filepath.Join(root, f), []byte("content"), 0o644)
		}
	}
	mk(oldRoot)
	mk(newRoot)
	// Same times everywhere, as a copy of the parent keeps them.
	for _, root := range []string{oldRoot, newRoot} {
		filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
			return unix.UtimesNano(p, []unix.Timespec{{Sec: 1700000000}, {Sec: 1700000000}})
		})
	}
	os.Remove(filepath.Join(newRoot, "etc/group"))
	os.WriteFile(filepath.Join(newRoot, "etc/passwd"), []byte("changed!"), 0o644)
	os.WriteFile(filepath.Join(newRoot, "tmp/new"), nil, 0o644)
	os.RemoveAll(filepath.Join(newRoot, "var"))
	ch, err := naiveChanges(context.Background(), oldRoot, newRoot)
	if err != nil {
		t.Fatal(err)
	}
	sortChanges(ch)
	want := "C /etc\nD /etc/group\nC /etc/passwd\nC /tmp\nA /tmp/new\nD /var\n"
	if got := changeLines(ch); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}
