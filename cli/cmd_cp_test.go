package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitCpArg(t *testing.T) {
	for _, c := range []struct{ arg, ctr, path string }{
		{"c1:/tmp/x", "c1", "/tmp/x"},
		{"c1:", "c1", ""},
		{"/abs/with:colon", "", "/abs/with:colon"},
		{"./rel:colon", "", "./rel:colon"},
		{"plain", "", "plain"},
		{"-", "", "-"},
	} {
		if ctr, p := splitCpArg(c.arg); ctr != c.ctr || p != c.path {
			t.Errorf("splitCpArg(%q) = %q, %q", c.arg, ctr, p)
		}
	}
}

func TestCopyPathRules(t *testing.T) {
	if got := preserveTrailingDotOrSeparator("/a/b", "b/."); got != "/a/b/." {
		t.Errorf("trailing dot: %q", got)
	}
	if got := preserveTrailingDotOrSeparator("/a/b", "b/"); got != "/a/b/" {
		t.Errorf("trailing slash: %q", got)
	}
	if d, b := splitPathDirEntry("/a/b/."); d != "/a/b" || b != "." {
		t.Errorf("split /a/b/.: %q %q", d, b)
	}
	if p, r := getRebaseName("/tmp/link", "/etc/passwd"); p != "/etc/passwd" || r != "link" {
		t.Errorf("rebase: %q %q", p, r)
	}
	if p, r := getRebaseName("/tmp/link/", "/data"); p != "/data/" || r != "link" {
		t.Errorf("rebase with slash: %q %q", p, r)
	}
	empty := func() io.Reader { return bytes.NewReader(nil) }
	for _, c := range []struct {
		src, dst copyInfo
		dir      string
		err      error
	}{
		{copyInfo{Path: "/s/f"}, copyInfo{Path: "/d", Exists: true, IsDir: true}, "/d", nil},
		{copyInfo{Path: "/s/dir", IsDir: true}, copyInfo{Path: "/d/file", Exists: true}, "", errCannotCopyDir},
		{copyInfo{Path: "/s/f"}, copyInfo{Path: "/d/file", Exists: true}, "/d", nil},
		{copyInfo{Path: "/s/dir", IsDir: true}, copyInfo{Path: "/d/new"}, "/d", nil},
		{copyInfo{Path: "/s/f"}, copyInfo{Path: "/d/new/"}, "", errDirNotExists},
		{copyInfo{Path: "/s/f"}, copyInfo{Path: "/d/new"}, "/d", nil},
	} {
		dir, rc, err := prepareArchiveCopy(empty(), c.src, c.dst)
		if dir != c.dir || !errors.Is(err, c.err) {
			t.Errorf("prepareArchiveCopy(%+v, %+v) = %q, %v", c.src, c.dst, dir, err)
		}
		if rc != nil {
			rc.Close()
		}
	}
	if got := copySummary(2048, "c1:/tmp"); got != "Successfully copied 2.05kB to c1:/tmp\n" {
		t.Errorf("summary: %q", got)
	}
}

// A local copy round trip: archive a tree, rebase it, extract it.
func TestLocalTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "tree/sub"), 0o750)
	os.WriteFile(filepath.Join(src, "tree/sub/f"), []byte("f"), 0o640)
	os.Symlink("sub/f", filepath.Join(src, "tree/l"))
	os.Link(filepath.Join(src, "tree/sub/f"), filepath.Join(src, "tree/hard"))
	info, err := copyInfoSourcePath(filepath.Join(src, "tree"), false)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := tarResource(info)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := copyTo(rc, info, filepath.Join(dst, "copy")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "copy/sub/f")); string(b) != "f" {
		t.Errorf("copy/sub/f: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "copy/l")); l != "sub/f" {
		t.Errorf("copy/l -> %q", l)
	}
	a, _ := os.Stat(filepath.Join(dst, "copy/sub/f"))
	b, _ := os.Stat(filepath.Join(dst, "copy/hard"))
	if !os.SameFile(a, b) || a.Mode().Perm() != 0o640 {
		t.Errorf("hard link or mode lost: %v %v", a, b)
	}
	if st, _ := os.Stat(filepath.Join(dst, "copy/sub")); st.Mode().Perm() != 0o750 {
		t.Errorf("dir mode: %v", st.Mode())
	}
}

// What a daemon sends cannot write outside the destination.
func TestUntarLocalStaysInside(t *testing.T) {
	outside := t.TempDir()
	dest := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: outside})
	tw.WriteHeader(&tar.Header{Name: "esc/owned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if err := untarLocal(&buf, dest); err == nil {
		t.Error("a write through an archive's symlink was accepted")
	}
	if _, err := os.Stat(filepath.Join(outside, "owned")); err == nil {
		t.Fatal("the archive wrote outside the destination")
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../up", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	if err := untarLocal(&buf, dest); err == nil || !strings.Contains(err.Error(), "is outside of") {
		t.Errorf("../ name: %v", err)
	}
}

// fakeDiffDaemon answers /_ping and one container's /changes.
func fakeDiffDaemon(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/containers/c1/changes"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[{"Path":"/tmp","Kind":0},{"Path":"/tmp/x","Kind":1},{"Path":"/etc/y","Kind":2}]`))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such container: nope"}`))
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

func TestDiffCommand(t *testing.T) {
	host := fakeDiffDaemon(t)
	var out, errOut bytes.Buffer
	env := func(string) string { return "" }
	code := run(context.Background(), []string{"-H", host, "diff", "c1"}, nil, &out, &errOut, env)
	if code != 0 || out.String() != "C /tmp\nA /tmp/x\nD /etc/y\n" {
		t.Errorf("diff: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"-H", host, "container", "diff", "nope"}, nil, &out, &errOut, env)
	if code != 1 || errOut.String() != "Error response from daemon: No such container: nope\n" {
		t.Errorf("diff missing: %d %q", code, errOut.String())
	}
}
