package mount

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// te is one tar entry of a test layer.
type te struct {
	hdr  tar.Header
	body []byte
}

type opt func(*te)

var t0 = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func newEntry(typ byte, name string, opts []opt) te {
	e := te{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o644, ModTime: t0, Format: tar.FormatPAX}}
	if typ == tar.TypeDir {
		e.hdr.Mode = 0o755
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func tfile(name, body string, opts ...opt) te {
	e := newEntry(tar.TypeReg, name, opts)
	if e.body == nil {
		e.body = []byte(body)
	}
	e.hdr.Size = int64(len(e.body))
	return e
}

func tdir(name string, opts ...opt) te { return newEntry(tar.TypeDir, name, opts) }

func tsymlink(name, target string, opts ...opt) te {
	e := newEntry(tar.TypeSymlink, name, opts)
	e.hdr.Linkname = target
	e.hdr.Mode = 0o777
	return e
}

func thardlink(name, target string) te {
	e := newEntry(tar.TypeLink, name, nil)
	e.hdr.Linkname = target
	return e
}

func tfifo(name string, opts ...opt) te { return newEntry(tar.TypeFifo, name, opts) }

func tdev(typ byte, name string, major, minor int64) te {
	e := newEntry(typ, name, nil)
	e.hdr.Devmajor, e.hdr.Devminor = major, minor
	return e
}

// twhiteout is how Docker writes whiteouts: an empty regular file.
func twhiteout(name string) te { return tfile(name, "", mode(0o600)) }

func mode(m int64) opt { return func(e *te) { e.hdr.Mode = m } }

func owner(uid, gid int) opt { return func(e *te) { e.hdr.Uid, e.hdr.Gid = uid, gid } }

func mtime(t time.Time) opt { return func(e *te) { e.hdr.ModTime = t } }

func atime(t time.Time) opt { return func(e *te) { e.hdr.AccessTime = t } }

func content(b []byte) opt { return func(e *te) { e.body = b } }

func xattr(k, v string) opt {
	return func(e *te) {
		if e.hdr.PAXRecords == nil {
			e.hdr.PAXRecords = map[string]string{}
		}
		e.hdr.PAXRecords["SCHILY.xattr."+k] = v
	}
}

func buildTar(t testing.TB, entries ...te) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar header %s: %v", hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("tar body %s: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// factory opens a driver of one kind on a fresh layers dir, removing every
// layer (and so every mount) when the test ends.
type factory struct {
	name string
	open func(root string) (Driver, error)
}

var factories = []factory{
	{"overlay2", func(root string) (Driver, error) { return NewOverlay2(root) }},
	{"vfs", func(root string) (Driver, error) { return NewVFS(root) }},
}

func openDriver(t *testing.T, f factory) Driver {
	t.Helper()
	root := filepath.Join(t.TempDir(), "layers")
	d, err := f.open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAllLayers(t, d) })
	return d
}

func removeAllLayers(t testing.TB, d Driver) {
	ctx := context.Background()
	ids, err := d.List(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, id := range ids {
		if err := d.Remove(ctx, id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// layer creates id on parent and applies entries to it.
func layer(t *testing.T, d Driver, id, parent string, entries ...te) ApplyStats {
	t.Helper()
	ctx := context.Background()
	if err := d.Create(ctx, id, parent); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	st, err := d.ApplyDiff(ctx, id, bytes.NewReader(buildTar(t, entries...)), ApplyOptions{})
	if err != nil {
		t.Fatalf("apply %s: %v", id, err)
	}
	return st
}

// mountView mounts id for the rest of the test.
func mountView(t *testing.T, d Driver, id string) string {
	t.Helper()
	ctx := context.Background()
	p, err := d.Mount(ctx, id)
	if err != nil {
		t.Fatalf("mount %s: %v", id, err)
	}
	t.Cleanup(func() {
		if err := d.Unmount(ctx, id); err != nil {
			t.Errorf("unmount %s: %v", id, err)
		}
	})
	return p
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

func assertContent(t *testing.T, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != want {
		t.Fatalf("%s = %q, want %q", p, got, want)
	}
}

func assertAbsent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: want absent, got err=%v", p, err)
	}
}

func assertMeta(t *testing.T, p string, typ uint32, perm uint32, uid, gid int, mt time.Time) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != typ {
		t.Errorf("%s: type %o, want %o", p, st.Mode&unix.S_IFMT, typ)
	}
	if typ != unix.S_IFLNK && st.Mode&0o7777 != perm {
		t.Errorf("%s: mode %o, want %o", p, st.Mode&0o7777, perm)
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
		t.Errorf("%s: mtime %v, want %v", p, got, mt)
	}
}

// names lists a directory, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// snapshot records every path under dir with its size and mode, to show a
// directory was not touched.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
