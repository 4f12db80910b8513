package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cpDaemon is a berthd with busybox loaded.
func cpDaemon(t *testing.T) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	seedImages(t, filepath.Join(dir, "data"), map[string]v1.Image{"busybox:latest": busybox(t)})
	return startDaemon(t, dir)
}

// untarEntries reads an archive into name → (header, content).
func untarEntries(t *testing.T, b []byte) map[string]struct {
	hdr  tar.Header
	data string
} {
	t.Helper()
	out := map[string]struct {
		hdr  tar.Header
		data string
	}{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		d, _ := io.ReadAll(tr)
		out[h.Name] = struct {
			hdr  tar.Header
			data string
		}{*h, string(d)}
	}
}

// treeOf lists a local tree as "path mode [content|-> target]" lines.
func treeOf(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		b.WriteString(rel + " " + fi.Mode().String())
		switch {
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			if len(c) > 64 {
				c = append(c[:64:64], []byte(fmt.Sprintf("...(%d bytes)", len(c)))...)
			}
			b.WriteString(" " + strings.ReplaceAll(string(c), "\n", "\\n"))
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			b.WriteString(" -> " + l)
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func TestDockerCpInAndOut(t *testing.T) {
	d := cpDaemon(t)
	local := t.TempDir()
	os.WriteFile(filepath.Join(local, "hello.txt"), []byte("hello from the host\n"), 0o640)
	os.Chmod(filepath.Join(local, "hello.txt"), 0o640)
	os.MkdirAll(filepath.Join(local, "tree/sub"), 0o750)
	os.WriteFile(filepath.Join(local, "tree/a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(local, "tree/sub/b.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("a.txt", filepath.Join(local, "tree/link"))

	if out, errOut, code := d.docker("run", "-d", "--name", "c1", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errOut)
	}
	// A file in, then out: content and mode.
	if _, errOut, code := d.docker("cp", filepath.Join(local, "hello.txt"), "c1:/tmp/"); code != 0 {
		t.Fatalf("cp in: %s", errOut)
	}
	out, _, code := d.docker("cp", "c1:/tmp/hello.txt", "-")
	ents := untarEntries(t, []byte(out))
	if e := ents["hello.txt"]; code != 0 || e.data != "hello from the host\n" || e.hdr.Mode&0o777 != 0o640 {
		t.Fatalf("cp out to stdout: %d %+v", code, e.hdr)
	}
	if _, errOut, code := d.docker("cp", "c1:/tmp/hello.txt", filepath.Join(local, "back.txt")); code != 0 {
		t.Fatalf("cp out: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(local, "back.txt")); string(b) != "hello from the host\n" {
		t.Errorf("copied back: %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(local, "back.txt")); fi == nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("copied back mode: %v", fi)
	}
	// A file from the image.
	out, _, _ = d.docker("cp", "c1:/etc/passwd", "-")
	if e := untarEntries(t, []byte(out))["passwd"]; e.data != fixtures.BusyboxPasswd {
		t.Errorf("/etc/passwd: %q", e.data)
	}
	// A directory in (to a new name), then out (to a new name), its
	// content into an existing directory.
	if _, errOut, code := d.docker("cp", filepath.Join(local, "tree"), "c1:/tmp/tree2"); code != 0 {
		t.Fatalf("cp dir in: %s", errOut)
	}
	if _, errOut, code := d.docker("cp", "c1:/tmp/tree2", filepath.Join(local, "tree3")); code != 0 {
		t.Fatalf("cp dir out: %s", errOut)
	}
	if got, want := treeOf(t, filepath.Join(local, "tree3")), treeOf(t, filepath.Join(local, "tree")); got != want {
		t.Errorf("directory round trip:\n%s\nwant:\n%s", got, want)
	}
	os.Mkdir(filepath.Join(local, "content"), 0o755)
	if _, errOut, code := d.docker("cp", "c1:/tmp/tree2/.", filepath.Join(local, "content")); code != 0 {
		t.Fatalf("cp dir content out: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(local, "content/sub/b.sh")); string(b) != "#!/bin/sh\n" {
		t.Errorf("content copy: %q", b)
	}
	// A tar on stdin.
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "piped.txt", Mode: 0o600, Size: 5, Typeflag: tar.TypeReg, ModTime: time.Now()})
	tw.Write([]byte("piped"))
	tw.Close()
	if _, errOut, code := runDockerIn(t, d.host, nil, &in, "cp", "-", "c1:/tmp"); code != 0 {
		t.Fatalf("cp - : %s", errOut)
	}
	out, _, _ = d.docker("cp", "c1:/tmp/piped.txt", "-")
	if e := untarEntries(t, []byte(out))["piped.txt"]; e.data != "piped" || e.hdr.Mode&0o777 != 0o600 {
		t.Errorf("piped: %+v %q", e.hdr, e.data)
	}
	// Errors as docker words them.
	_, errOut, code := d.docker("cp", "c1:/nope", filepath.Join(local, "x"))
	if code != 1 || errOut != "Error response from daemon: Could not find the file /nope in container c1\n" {
		t.Errorf("cp missing: %d %q", code, errOut)
	}
	_, errOut, code = d.docker("cp", filepath.Join(local, "hello.txt"), "c1:/nodir/")
	if code != 1 || !strings.HasSuffix(errOut, "no such directory\n") {
		t.Errorf("cp into a missing dir: %d %q", code, errOut)
	}
	_, errOut, code = d.docker("cp", filepath.Join(local, "hello.txt"), "nosuch:/tmp")
	if code != 1 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("cp to a missing container: %d %q", code, errOut)
	}
	// A stopped container works the same.
	d.docker("kill", "c1")
	if _, errOut, code := d.docker("cp", filepath.Join(local, "hello.txt"), "c1:/root/"); code != 0 {
		t.Fatalf("cp into a stopped container: %s", errOut)
	}
	out, _, _ = d.docker("cp", "c1:/root/hello.txt", "-")
	if e := untarEntries(t, []byte(out))["hello.txt"]; e.data != "hello from the host\n" {
		t.Errorf("stopped: %q", e.data)
	}
}

func TestDockerDiff(t *testing.T) {
	d := cpDaemon(t)
	if _, errOut, code := d.docker("run", "--name", "c2", "busybox", "sh", "-c", "touch /tmp/new; rm /etc/group; mkdir -p /root/a/b"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := d.docker("diff", "c2")
	want := "C /etc\nD /etc/group\nC /root\nA /root/a\nA /root/a/b\nC /tmp\nA /tmp/new\n"
	if code != 0 || out != want {
		t.Errorf("docker diff: %d %q %q, want %q", code, out, errOut, want)
	}
	if bout, berr, bcode := d.berth("diff", "c2"); bout != out || berr != errOut || bcode != code {
		t.Errorf("berth diff: %d %q %q", bcode, bout, berr)
	}
	if bout, _, _ := d.berth("container", "diff", "c2"); bout != out {
		t.Errorf("berth container diff: %q", bout)
	}
	d.docker("create", "--name", "fresh", "busybox")
	if out, _, code := d.docker("diff", "fresh"); code != 0 || out != "" {
		t.Errorf("diff of a new container: %d %q", code, out)
	}
	d.docker("rm", "c2")
	_, errOut, code = d.docker("diff", "c2")
	if code != 1 || !strings.Contains(errOut, "No such container: c2") {
		t.Errorf("diff of a removed container: %d %q", code, errOut)
	}
}

// TestDockerCpSymlinkEscape is the acceptance test: links a
// container made never let cp read or write a host file, whether the
// container runs or not.
func TestDockerCpSymlinkEscape(t *testing.T) {
	d := cpDaemon(t)
	local := t.TempDir()
	secret, err := os.CreateTemp("/tmp", "berth-e2e-secret-")
	if err != nil {
		t.Fatal(err)
	}
	secret.WriteString("HOST SECRET")
	secret.Close()
	t.Cleanup(func() { os.Remove(secret.Name()) })
	os.WriteFile(filepath.Join(local, "payload"), []byte("payload"), 0o644)

	script := "ln -s / /tmp/hostroot; ln -s ../../../../../../.. /tmp/rel; ln -s /etc/passwd /tmp/pw; touch /tmp/ready"
	if _, errOut, code := d.docker("run", "-d", "--name", "esc", "busybox", "sh", "-c", script+"; sleep 300"); code != 0 {
		t.Fatal(errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, code := d.docker("cp", "esc:/tmp/ready", "-"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not make its links")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := 0
	attempt := func(state string) {
		t.Helper()
		// Reads.
		for _, p := range []string{"/tmp/hostroot" + secret.Name(), "/tmp/rel" + secret.Name()} {
			dst := filepath.Join(local, "got-"+state)
			out, errOut, code := d.docker("cp", "esc:"+p, dst)
			if b, _ := os.ReadFile(dst); strings.Contains(string(b), "HOST SECRET") || strings.Contains(out, "HOST SECRET") {
				t.Fatalf("%s: docker cp esc:%s read the host's file", state, p)
			}
			if code != 1 || !strings.Contains(errOut, "Could not find the file "+p) {
				t.Errorf("%s: docker cp esc:%s: %d %q", state, p, code, errOut)
			}
		}
		for _, p := range []string{"/tmp/hostroot/etc/passwd", "/tmp/rel/etc/passwd"} {
			out, _, code := d.docker("cp", "esc:"+p, "-")
			if e := untarEntries(t, []byte(out))["passwd"]; code != 0 || e.data != fixtures.BusyboxPasswd {
				t.Errorf("%s: %s is not the container's passwd: %d %q", state, p, code, e.data)
			}
		}
		dst := filepath.Join(local, "pw-"+state)
		if _, errOut, code := d.docker("cp", "-L", "esc:/tmp/pw", dst); code != 0 {
			t.Errorf("%s: cp -L: %s", state, errOut)
		} else if b, _ := os.ReadFile(dst); string(b) != fixtures.BusyboxPasswd {
			t.Errorf("%s: cp -L of a link to /etc/passwd: %q", state, b)
		}
		// Writes.
		for _, dest := range []string{"/tmp/hostroot/tmp/", "/tmp/rel/tmp/", "/tmp/hostroot/tmp/NAME", "/tmp/rel/tmp/NAME"} {
			n++
			name := "berth-e2e-escape-" + state + "-" + string(rune('a'+n))
			t.Cleanup(func() { os.Remove("/tmp/" + name) })
			src := filepath.Join(local, name)
			os.WriteFile(src, []byte("payload"), 0o644)
			dest = strings.Replace(dest, "NAME", name, 1)
			if _, errOut, code := d.docker("cp", src, "esc:"+dest); code != 0 {
				t.Errorf("%s: cp to %s: %s", state, dest, errOut)
				continue
			}
			if _, err := os.Lstat("/tmp/" + name); err == nil {
				t.Fatalf("%s: docker cp to esc:%s wrote the host's /tmp/%s", state, dest, name)
			}
			out, _, code := d.docker("cp", "esc:/tmp/"+name, "-")
			if e := untarEntries(t, []byte(out))[name]; code != 0 || e.data != "payload" {
				t.Errorf("%s: cp to %s did not land in the container's /tmp: %d", state, dest, code)
			}
		}
	}
	attempt("running")
	if _, errOut, code := d.docker("stop", "-t", "1", "esc"); code != 0 {
		t.Fatal(errOut)
	}
	attempt("stopped")
}

// TestBerthCpLikeDockerCp runs the same copies with both CLIs, each on
// its own identical container, and wants the same results and messages.
func TestBerthCpLikeDockerCp(t *testing.T) {
	d := cpDaemon(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f.txt"), bytes.Repeat([]byte("x"), 2050), 0o604)
	os.Chmod(filepath.Join(src, "f.txt"), 0o604)
	os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "dir/sub/g"), []byte("g"), 0o644)
	os.Symlink("sub/g", filepath.Join(src, "dir/lnk"))
	var piped bytes.Buffer
	tw := tar.NewWriter(&piped)
	tw.WriteHeader(&tar.Header{Name: "piped.txt", Mode: 0o600, Size: 5, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
	tw.Write([]byte("piped"))
	tw.Close()

	type cliRun func(stdin string, args ...string) (string, string, int)
	clis := map[string]cliRun{
		"docker": func(stdin string, args ...string) (string, string, int) {
			return runDockerStdin(t, d.host, stdin, args...)
		},
		"berth": d.berthStdin,
	}
	results := map[string][]string{}
	for _, name := range []string{"docker", "berth"} {
		run := clis[name]
		ctr := "cp-" + name
		if _, errOut, code := d.docker("run", "-d", "--name", ctr, "busybox", "sh", "-c", "mkdir /out; ln -s /etc/passwd /tmp/pw; ln -s /out /tmp/outlink; sleep 300"); code != 0 {
			t.Fatal(errOut)
		}
		time.Sleep(300 * time.Millisecond)
		local := filepath.Join(t.TempDir(), name)
		os.Mkdir(local, 0o755)
		cases := []struct {
			stdin string
			args  []string
		}{
			{"", []string{"cp", "-q=false", filepath.Join(src, "f.txt"), ctr + ":/out/file"}},
			{"", []string{"cp", "-q=false", filepath.Join(src, "dir"), ctr + ":/out/dir"}},
			{"", []string{"cp", filepath.Join(src, "dir") + "/.", ctr + ":/out"}},
			{"", []string{"cp", filepath.Join(src, "dir") + "/.", ctr + ":/out"}},
			{"", []string{"cp", filepath.Join(src, "f.txt"), ctr + ":/tmp/outlink"}},
			{"", []string{"cp", filepath.Join(src, "dir"), ctr + ":/out/file"}},
			{"", []string{"cp", filepath.Join(src, "f.txt"), ctr + ":/out/nodir/"}},
			{piped.String(), []string{"cp", "-q=false", "-", ctr + ":/out"}},
			{piped.String(), []string{"cp", "-", ctr + ":/out/file"}},
			{"", []string{"cp", "-q=false", ctr + ":/out/file", local + "/f"}},
			{"", []string{"cp", ctr + ":/out/dir", local + "/d"}},
			{"", []string{"cp", ctr + ":/out/dir", local}},
			{"", []string{"cp", ctr + ":/out/.", local + "/all"}},
			{"", []string{"cp", ctr + ":/out/", local + "/slash"}},
			{"", []string{"cp", ctr + ":/tmp/pw", local + "/pw-link"}},
			{"", []string{"cp", "-L", ctr + ":/tmp/pw", local + "/pw-file"}},
			{"", []string{"cp", "-L", ctr + ":/tmp/outlink", local + "/followed"}},
			{"", []string{"cp", ctr + ":/nope", local}},
			{"", []string{"cp", ctr + ":/etc/passwd", local + "/nodir/x"}},
			{"", []string{"cp", ctr + ":/out/dir", local + "/f"}},
			{"", []string{"cp", ctr + ":/a", ctr + ":/b"}},
			{"", []string{"cp", "a", "b"}},
			{"", []string{"cp", "a"}},
			{"", []string{"container", "cp", ctr + ":/out/piped.txt", "-"}},
		}
		var lines []string
		for _, c := range cases {
			out, errOut, code := run(c.stdin, c.args...)
			errOut = cliLogLine.ReplaceAllString(errOut, "")
			if len(out) > 512 {
				// A tar on stdout: the same bytes, shown short.
				out = fmt.Sprintf("%d bytes %x", len(out), sha256.Sum256([]byte(out)))
			}
			line := strings.Join(c.args, " ") + " => " + fmt.Sprintf("%d %q %q", code, out, errOut)
			line = strings.ReplaceAll(strings.ReplaceAll(line, local, "LOCAL"), ctr, "CTR")
			lines = append(lines, strings.ReplaceAll(line, "docker", "berth"))
		}
		lines = append(lines, strings.Split(treeOf(t, local), "\n")...)
		results[name] = lines
	}
	if len(results["docker"]) != len(results["berth"]) {
		t.Fatalf("different results:\n%s\n%s", strings.Join(results["docker"], "\n"), strings.Join(results["berth"], "\n"))
	}
	for i := range results["docker"] {
		if results["docker"][i] != results["berth"][i] {
			t.Errorf("berth differs from docker:\n docker: %s\n berth:  %s", results["docker"][i], results["berth"][i])
		}
	}
}
