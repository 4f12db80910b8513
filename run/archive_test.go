package run

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

type tarEntry struct {
	hdr  tar.Header
	data string
}

// readTar reads a whole archive into entries by name, and the names in
// order.
func readTar(t *testing.T, r io.Reader) (map[string]tarEntry, []string) {
	t.Helper()
	out := map[string]tarEntry{}
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = tarEntry{hdr: *hdr, data: string(b)}
		names = append(names, hdr.Name)
	}
}

// makeTar builds an archive; entries are given as headers with their
// content in data.
func makeTar(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func file(name, data string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: data}
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}}
}

// archive reads path out of the container.
func (e *testEnv) archive(id, p string) (map[string]tarEntry, []string, container.PathStat, error) {
	e.t.Helper()
	rc, st, err := e.m.ArchivePath(context.Background(), id, p)
	if err != nil {
		return nil, nil, st, err
	}
	defer rc.Close()
	ents, names := readTar(e.t.(*testing.T), rc)
	return ents, names, st, nil
}

// catFile is the content of a regular file in the container.
func (e *testEnv) catFile(id, p string) (string, error) {
	e.t.Helper()
	ents, _, _, err := e.archive(id, p)
	if err != nil {
		return "", err
	}
	ent, ok := ents[filepath.Base(p)]
	if !ok {
		e.t.Fatalf("archive of %s has no %s entry", p, filepath.Base(p))
	}
	return ent.data, nil
}

func TestArchiveStatGetPutStopped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"sh", "-c", "cat /tmp/x /tmp/d/y; echo; stat -c %A /tmp/x"}, func(r *CreateRequest) { r.Name = "cp1" })

	st, err := e.m.StatPath(ctx, "cp1", "/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "passwd" || !st.Mode.IsRegular() || st.Size != int64(len(fixtures.BusyboxPasswd)) || st.Mtime.IsZero() {
		t.Errorf("stat /etc/passwd: %+v", st)
	}
	if st, err = e.m.StatPath(ctx, "cp1", "/etc"); err != nil || !st.Mode.IsDir() || st.Name != "etc" {
		t.Errorf("stat /etc: %+v %v", st, err)
	}
	if st, err = e.m.StatPath(ctx, "cp1", "/bin/sh"); err != nil || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/bin/busybox" {
		t.Errorf("stat /bin/sh: %+v %v", st, err)
	}
	_, err = e.m.StatPath(ctx, "cp1", "/nope")
	if !errdefs.IsNotFound(err) || err.Error() != "Could not find the file /nope in container cp1" {
		t.Errorf("stat missing: %v", err)
	}
	if _, err = e.m.StatPath(ctx, "nosuch", "/"); !errdefs.IsNotFound(err) {
		t.Errorf("stat in a missing container: %v", err)
	}

	// A file: one entry named after it.
	ents, names, st, err := e.archive(id, "/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || ents["passwd"].data != fixtures.BusyboxPasswd || ents["passwd"].hdr.Mode&0o777 != 0o644 || st.Name != "passwd" {
		t.Errorf("archive /etc/passwd: %v %+v", names, st)
	}
	// A directory: its tree under its base name.
	ents, names, _, err = e.archive(id, "/etc")
	if err != nil {
		t.Fatal(err)
	}
	if names[0] != "etc/" || ents["etc/group"].data != fixtures.BusyboxGroup || ents["etc/hostname"].data != id[:12]+"\n" {
		t.Errorf("archive /etc: %v", names)
	}
	// "/." is the content.
	_, names, st, err = e.archive(id, "/etc/.")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "./ ./group ./hostname ./hosts ./mtab ./passwd ./resolv.conf" || st.Name != "." {
		t.Errorf("archive /etc/.: %v %+v", names, st)
	}
	// The network files are the container's, not the init layer's
	// placeholders.
	if got, _ := e.catFile(id, "/etc/hostname"); got != id[:12]+"\n" {
		t.Errorf("/etc/hostname: %q", got)
	}
	if _, _, _, err = e.archive(id, "/nope/x"); !errdefs.IsNotFound(err) {
		t.Errorf("archive missing: %v", err)
	}

	// Extract: files with modes, a directory, a symlink, into /tmp.
	err = e.m.ExtractToDir(ctx, "cp1", "/tmp", ExtractOptions{NoOverwriteDirNonDir: true}, makeTar(t,
		file("x", "hello\n", 0o640),
		dir("d/"),
		file("d/y", "deep", 0o600),
		symlink("d/l", "y"),
		file("new/parents/z", "z", 0o644),
	))
	if err != nil {
		t.Fatal(err)
	}
	ents, _, _, err = e.archive(id, "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	if x := ents["tmp/x"]; x.data != "hello\n" || x.hdr.Mode&0o7777 != 0o640 || !x.hdr.ModTime.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("tmp/x: %+v %q", x.hdr, x.data)
	}
	if y := ents["tmp/d/y"]; y.data != "deep" || y.hdr.Mode&0o777 != 0o600 {
		t.Errorf("tmp/d/y: %+v", y.hdr)
	}
	if l := ents["tmp/d/l"]; l.hdr.Typeflag != tar.TypeSymlink || l.hdr.Linkname != "y" {
		t.Errorf("tmp/d/l: %+v", l.hdr)
	}
	if ents["tmp/new/parents/z"].data != "z" {
		t.Errorf("missing parents not made: %v", ents["tmp/new/parents/z"])
	}
	// Overwrite a file; refuse a directory over a file with
	// noOverwriteDirNonDir.
	if err := e.m.ExtractToDir(ctx, "cp1", "/tmp", ExtractOptions{}, makeTar(t, file("x", "again", 0o644))); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.catFile(id, "/tmp/x"); got != "again" {
		t.Errorf("overwritten: %q", got)
	}
	err = e.m.ExtractToDir(ctx, "cp1", "/tmp", ExtractOptions{NoOverwriteDirNonDir: true}, makeTar(t, dir("x/")))
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite non-directory") {
		t.Errorf("dir over file: %v", err)
	}
	// Errors as dockerd words them.
	err = e.m.ExtractToDir(ctx, "cp1", "/etc/passwd", ExtractOptions{}, makeTar(t, file("a", "a", 0o644)))
	if !errdefs.IsInvalidArgument(err) || err.Error() != "extraction point is not a directory" {
		t.Errorf("extract to a file: %v", err)
	}
	err = e.m.ExtractToDir(ctx, "cp1", "/nope", ExtractOptions{}, makeTar(t, file("a", "a", 0o644)))
	if !errdefs.IsNotFound(err) || err.Error() != "Could not find the file /nope in container cp1" {
		t.Errorf("extract to a missing dir: %v", err)
	}
	err = e.m.ExtractToDir(ctx, "cp1", "/tmp", ExtractOptions{}, makeTar(t, file("../../escape", "a", 0o644)))
	if err == nil || !strings.Contains(err.Error(), "is outside of") {
		t.Errorf("breakout name: %v", err)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Errorf("a stopped container's layer stays mounted: %v", mnts)
	}
	// What was copied in is what the container sees.
	if code, out := e.startAndWait(id); code != 0 || out != "againdeep\n-rw-r--r--\n" {
		t.Errorf("the container sees: %d %q", code, out)
	}
}

// runOut runs cmd in a new container and returns its id and output.
func (e *testEnv) runOut(t *testing.T, name string, cmd []string, edit ...func(*CreateRequest)) (string, string) {
	t.Helper()
	id := e.create(cmd, append([]func(*CreateRequest){func(r *CreateRequest) { r.Name = name }}, edit...)...)
	code, out := e.startAndWait(id)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", cmd, code, out)
	}
	return id, out
}

// hostSecret makes a host file that the container does not have, and
// returns its path and content.
func hostSecret(t *testing.T) (string, string) {
	t.Helper()
	f, err := os.CreateTemp("/tmp", "berth-cp-secret-")
	if err != nil {
		t.Fatal(err)
	}
	secret := "HOST SECRET " + filepath.Base(f.Name())
	f.WriteString(secret)
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name(), secret
}

// escapeName is a unique name that must appear nowhere on the host.
func escapeName(t *testing.T, tag string) string {
	t.Helper()
	n := "berth-cp-escape-" + tag + "-" + newID()[:12]
	t.Cleanup(func() {
		if _, err := os.Lstat("/tmp/" + n); err == nil {
			os.RemoveAll("/tmp/" + n)
			t.Errorf("a write through a container symlink reached the host: /tmp/%s", n)
		}
	})
	return n
}

// linkScript makes, inside the container, the symlinks a container could
// use to point cp at the host.
const linkScript = `ln -s / /tmp/hostroot; ln -s ../../../../../../../.. /tmp/rel; ln -s /tmp/hostroot/tmp /tmp/hosttmp;
mkdir -p /tmp/deep/a; ln -s ../../../../../../etc /tmp/deep/a/etc; ln -s /etc/passwd /tmp/pw`

// checkNoEscape runs the read and write escape attempts against a
// container (running or stopped) and checks that every one stays in it.
func checkNoEscape(t *testing.T, e *testEnv, id string) {
	t.Helper()
	ctx := context.Background()
	secretPath, secret := hostSecret(t)
	base := filepath.Base(secretPath)

	// Reads: the host's file is never what comes back.
	for _, p := range []string{
		"/tmp/hostroot" + secretPath,
		"/tmp/rel" + secretPath,
		"/tmp/hosttmp/" + base,
		"/tmp/hostroot/tmp/../../../../" + secretPath,
		"/../../../../" + secretPath,
	} {
		if _, err := e.m.StatPath(ctx, id, p); !errdefs.IsNotFound(err) {
			t.Errorf("stat %s: want not found, got %v", p, err)
		}
		ents, _, _, err := e.archive(id, p)
		if err == nil {
			for _, en := range ents {
				if strings.Contains(en.data, secret) {
					t.Fatalf("archive %s read the host's file", p)
				}
			}
			t.Errorf("archive %s: want not found, got %d entries", p, len(ents))
		} else if !errdefs.IsNotFound(err) {
			t.Errorf("archive %s: %v", p, err)
		}
	}
	// Through a link to "/", /etc/passwd is the container's.
	for _, p := range []string{"/tmp/hostroot/etc/passwd", "/tmp/rel/etc/passwd", "/tmp/deep/a/etc/passwd"} {
		got, err := e.catFile(id, p)
		if err != nil || got != fixtures.BusyboxPasswd {
			t.Errorf("%s: %v %q", p, err, got)
		}
	}
	// A symlink itself is archived as a link, its target reported in the
	// container.
	if st, err := e.m.StatPath(ctx, id, "/tmp/hostroot"); err != nil || st.LinkTarget != "/" {
		t.Errorf("stat /tmp/hostroot: %+v %v", st, err)
	}
	if st, err := e.m.StatPath(ctx, id, "/tmp/rel"); err != nil || st.LinkTarget != "/" {
		t.Errorf("stat /tmp/rel: %+v %v", st, err)
	}
	if ents, _, _, err := e.archive(id, "/tmp/pw"); err != nil || ents["pw"].hdr.Typeflag != tar.TypeSymlink || ents["pw"].hdr.Linkname != "/etc/passwd" {
		t.Errorf("archive of a symlink: %v %+v", err, ents["pw"].hdr)
	}
	// A directory archive does not follow the links in it.
	ents, _, _, err := e.archive(id, "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	for name, en := range ents {
		if strings.Contains(en.data, secret) || strings.HasPrefix(name, "tmp/hostroot/") {
			t.Fatalf("archive /tmp went through a link: %s", name)
		}
	}

	// Writes: through symlinked extraction points, symlinked parents in
	// entry names and links the archive itself makes.
	type attempt struct {
		dir  string
		tar  *bytes.Buffer
		name string // written where the container sees /tmp/<name>
	}
	var attempts []attempt
	for i, d := range []string{"/tmp/hostroot/tmp", "/tmp/rel/tmp", "/tmp/hosttmp", "/tmp/hostroot/tmp/", "/tmp/rel/tmp/."} {
		n := escapeName(t, "dir"+string(rune('a'+i)))
		attempts = append(attempts, attempt{dir: d, tar: makeTar(t, file(n, "x", 0o644)), name: n})
	}
	n := escapeName(t, "parent")
	attempts = append(attempts, attempt{dir: "/tmp", tar: makeTar(t, file("hostroot/tmp/"+n, "x", 0o644)), name: n})
	n = escapeName(t, "relparent")
	attempts = append(attempts, attempt{dir: "/", tar: makeTar(t, file("tmp/rel/tmp/"+n, "x", 0o644)), name: n})
	n = escapeName(t, "tarlink")
	attempts = append(attempts, attempt{dir: "/tmp", tar: makeTar(t, symlink("evil"+n, "/"), file("evil"+n+"/tmp/"+n, "x", 0o644)), name: n})
	for _, a := range attempts {
		if err := e.m.ExtractToDir(ctx, id, a.dir, ExtractOptions{}, a.tar); err != nil {
			t.Errorf("extract into %s: %v", a.dir, err)
			continue
		}
		if got, err := e.catFile(id, "/tmp/"+a.name); err != nil || got != "x" {
			t.Errorf("extract into %s: the container's /tmp/%s: %q %v", a.dir, a.name, got, err)
		}
		if _, err := os.Lstat("/tmp/" + a.name); err == nil {
			t.Fatalf("extract into %s wrote the host's /tmp/%s", a.dir, a.name)
		}
	}
	// Replacing a symlink with a file replaces the link, not its target.
	if err := e.m.ExtractToDir(ctx, id, "/tmp", ExtractOptions{}, makeTar(t, file("hosttmp", "plain", 0o644))); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.catFile(id, "/tmp/hosttmp"); got != "plain" {
		t.Errorf("/tmp/hosttmp: %q", got)
	}
	if st, err := os.Stat("/tmp"); err != nil || !st.IsDir() {
		t.Fatalf("the host's /tmp: %v", err)
	}
	// An archive's own hard link to a name outside is refused.
	hl := tarEntry{hdr: tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../../../../" + secretPath}}
	if err := e.m.ExtractToDir(ctx, id, "/tmp", ExtractOptions{}, makeTar(t, hl)); err == nil {
		t.Error("hard link out of the extraction dir accepted")
	}
}

func TestArchiveSymlinkEscapesRunning(t *testing.T) {
	e := newEnv(t)
	id := e.create([]string{"sh", "-c", linkScript + "; touch /tmp/ready; sleep 60"}, func(r *CreateRequest) { r.Name = "esc" })
	if err := e.m.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the container's links", func() bool {
		_, err := e.m.StatPath(context.Background(), id, "/tmp/ready")
		return err == nil
	})
	checkNoEscape(t, e, id)
}

func TestArchiveSymlinkEscapesStopped(t *testing.T) {
	e := newEnv(t)
	id, _ := e.runOut(t, "esc", []string{"sh", "-c", linkScript})
	checkNoEscape(t, e, id)
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Errorf("a stopped container's layer stays mounted: %v", mnts)
	}
}

func TestArchiveThroughVolumesAndReadOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bind, robind := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(bind, "in.txt"), []byte("from host\n"), 0o644)
	withMounts := func(r *CreateRequest) {
		r.HostConfig.Binds = []string{bind + ":/data", robind + ":/ro:ro", "cpvol:/v"}
	}
	check := func(id, tag string) {
		t.Helper()
		if got, err := e.catFile(id, "/data/in.txt"); err != nil || got != "from host\n" {
			t.Errorf("%s: read through a bind: %q %v", tag, got, err)
		}
		if err := e.m.ExtractToDir(ctx, id, "/data", ExtractOptions{}, makeTar(t, file("out-"+tag, tag, 0o644))); err != nil {
			t.Fatalf("%s: extract into a bind: %v", tag, err)
		}
		if b, err := os.ReadFile(filepath.Join(bind, "out-"+tag)); err != nil || string(b) != tag {
			t.Errorf("%s: the bind source did not get the file: %q %v", tag, b, err)
		}
		if err := e.m.ExtractToDir(ctx, id, "/v", ExtractOptions{}, makeTar(t, file("vol-"+tag, tag, 0o644))); err != nil {
			t.Fatalf("%s: extract into a volume: %v", tag, err)
		}
		if got, err := e.catFile(id, "/v/vol-"+tag); err != nil || got != tag {
			t.Errorf("%s: read back from the volume: %q %v", tag, got, err)
		}
		err := e.m.ExtractToDir(ctx, id, "/ro", ExtractOptions{}, makeTar(t, file("no", "no", 0o644)))
		if !errdefs.IsInvalidArgument(err) || err.Error() != "mounted volume is marked read-only" {
			t.Errorf("%s: extract into a read-only bind: %v", tag, err)
		}
		if _, err := os.Stat(filepath.Join(robind, "no")); err == nil {
			t.Errorf("%s: a read-only bind was written", tag)
		}
	}
	stopped := e.create([]string{"true"}, withMounts)
	check(stopped, "stopped")
	// A running container is seen as it sees itself, tmpfs included.
	running := e.create([]string{"sh", "-c", "echo t > /scratch/f; sleep 60"}, withMounts, func(r *CreateRequest) {
		r.HostConfig.Tmpfs = map[string]string{"/scratch": ""}
	})
	if err := e.m.Start(ctx, running); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the tmpfs file", func() bool {
		got, err := e.catFile(running, "/scratch/f")
		return err == nil && got == "t\n"
	})
	check(running, "running")
	if got, err := e.catFile(running, "/v/vol-stopped"); err != nil || got != "stopped" {
		t.Errorf("the volume written while stopped, seen running: %q %v", got, err)
	}

	ro := e.create([]string{"true"}, func(r *CreateRequest) { r.HostConfig.ReadonlyRootfs = true })
	err := e.m.ExtractToDir(ctx, ro, "/tmp", ExtractOptions{}, makeTar(t, file("no", "no", 0o644)))
	if !errdefs.IsInvalidArgument(err) || err.Error() != "container rootfs is marked read-only" {
		t.Errorf("extract into a read-only rootfs: %v", err)
	}
}

func TestArchiveCopyUIDGID(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.create([]string{"true"}, func(r *CreateRequest) { r.Config.User = "www-data" })
	tarball := func() *bytes.Buffer {
		f := file("owned", "x", 0o644)
		f.hdr.Uid, f.hdr.Gid = 1234, 5678
		return makeTar(t, f)
	}
	if err := e.m.ExtractToDir(ctx, id, "/tmp", ExtractOptions{}, tarball()); err != nil {
		t.Fatal(err)
	}
	ents, _, _, err := e.archive(id, "/tmp/owned")
	if err != nil || ents["owned"].hdr.Uid != 1234 || ents["owned"].hdr.Gid != 5678 {
		t.Errorf("without copyUIDGID the archive's owner is kept: %+v %v", ents["owned"].hdr, err)
	}
	if err := e.m.ExtractToDir(ctx, id, "/tmp", ExtractOptions{CopyUIDGID: true}, tarball()); err != nil {
		t.Fatal(err)
	}
	ents, _, _, err = e.archive(id, "/tmp/owned")
	if err != nil || ents["owned"].hdr.Uid != 33 || ents["owned"].hdr.Gid != 33 {
		t.Errorf("copyUIDGID: the container user's owner: %+v %v", ents["owned"].hdr, err)
	}
}

func TestAbsContainerPath(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/passwd": "/etc/passwd", "etc": "/etc", "/etc/": "/etc/", "/etc/.": "/etc/.",
		".": "/.", "/": "/", "/.": "/.", "a/../../b": "/b", "/tmp//x/": "/tmp/x/",
	} {
		if got := absContainerPath(in); got != want {
			t.Errorf("absContainerPath(%q) = %q, want %q", in, got, want)
		}
	}
}
