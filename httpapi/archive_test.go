package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeArchiver is a containers backend with only the archive methods:
// one container "c1" holding /etc/hostname.
type fakeArchiver struct {
	Containers // nil: the other endpoints are not used here

	extracted   []string
	extractPath string
	extractOpts run.ExtractOptions
}

var hostnameStat = container.PathStat{Name: "hostname", Size: 5, Mode: 0o644, Mtime: time.Unix(1700000000, 5).UTC()}

func (f *fakeArchiver) find(ref, p string) error {
	if ref != "c1" {
		return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	if p != "/etc/hostname" {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", p, ref))
	}
	return nil
}

func (f *fakeArchiver) StatPath(_ context.Context, ref, p string) (container.PathStat, error) {
	return hostnameStat, f.find(ref, p)
}

func (f *fakeArchiver) ArchivePath(_ context.Context, ref, p string) (io.ReadCloser, container.PathStat, error) {
	if err := f.find(ref, p); err != nil {
		return nil, container.PathStat{}, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("box1\n"))
	tw.Close()
	return io.NopCloser(&buf), hostnameStat, nil
}

func (f *fakeArchiver) ExtractToDir(_ context.Context, ref, p string, opts run.ExtractOptions, r io.Reader) error {
	if ref != "c1" {
		return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	if p == "/etc/hostname" {
		return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
	}
	f.extractPath, f.extractOpts = p, opts
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		f.extracted = append(f.extracted, h.Name)
	}
}

func (f *fakeArchiver) Changes(_ context.Context, ref string) ([]container.FilesystemChange, error) {
	if ref != "c1" {
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	return []container.FilesystemChange{{Path: "/tmp", Kind: container.ChangeModify}, {Path: "/tmp/x", Kind: container.ChangeAdd}, {Path: "/etc/y", Kind: container.ChangeDelete}}, nil
}

func TestArchiveEndpointsWire(t *testing.T) {
	fa := &fakeArchiver{}
	ts := startUnix(t, Options{}, Backends{Containers: fa})

	// HEAD: the stat header, base64 of dockerd's JSON, mode as a number.
	resp, _ := ts.do(t, http.MethodHead, "/v1.41/containers/c1/archive?path=/etc/hostname")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"hostname","size":5,"mode":420,"mtime":"2023-11-14T22:13:20.000000005Z","linkTarget":""}`; string(raw) != want {
		t.Errorf("stat header %s, want %s", raw, want)
	}
	resp, _ = ts.do(t, http.MethodHead, "/containers/c1/archive?path=/nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD missing: %d", resp.StatusCode)
	}
	resp, body := ts.do(t, http.MethodGet, "/containers/c1/archive")
	wantErrorBody(t, resp, body, http.StatusBadRequest, "bad parameter: pathcannot be empty")
	resp, body = ts.do(t, http.MethodGet, "/containers/c1/archive?path=/nope")
	wantErrorBody(t, resp, body, http.StatusNotFound, "Could not find the file /nope in container c1")
	resp, body = ts.do(t, http.MethodGet, "/containers/c1/archive?path=/etc/hostname")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" || resp.Header.Get("X-Docker-Container-Path-Stat") == "" {
		t.Errorf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	if tr := tar.NewReader(bytes.NewReader(body)); true {
		h, err := tr.Next()
		if err != nil || h.Name != "hostname" {
			t.Errorf("GET body: %v %v", h, err)
		}
	}
	resp, body = ts.do(t, http.MethodGet, "/containers/c1/changes")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `[{"Kind":0,"Path":"/tmp"},{"Kind":1,"Path":"/tmp/x"},{"Kind":2,"Path":"/etc/y"}]` {
		t.Errorf("changes: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, http.MethodGet, "/containers/nope/changes")
	wantErrorBody(t, resp, body, http.StatusNotFound, "No such container: nope")

	// The Go SDK, as the docker CLI uses it.
	c, err := client.New(client.WithHost("unix://"+ts.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	st, err := c.ContainerStatPath(ctx, "c1", client.ContainerStatPathOptions{Path: "/etc/hostname"})
	if err != nil || st.Stat.Name != "hostname" || st.Stat.Mode != os.FileMode(0o644) || !st.Stat.Mtime.Equal(hostnameStat.Mtime) {
		t.Errorf("SDK stat: %+v %v", st, err)
	}
	cp, err := c.CopyFromContainer(ctx, "c1", client.CopyFromContainerOptions{SourcePath: "/etc/hostname"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(cp.Content)
	cp.Content.Close()
	if cp.Stat.Size != 5 || !bytes.Contains(b, []byte("box1\n")) {
		t.Errorf("SDK copy from: %+v %d bytes", cp.Stat, len(b))
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "a.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("a"))
	tw.Close()
	if _, err := c.CopyToContainer(ctx, "c1", client.CopyToContainerOptions{DestinationPath: "/tmp", Content: &in, CopyUIDGID: true}); err != nil {
		t.Fatal(err)
	}
	if fa.extractPath != "/tmp" || !fa.extractOpts.NoOverwriteDirNonDir || !fa.extractOpts.CopyUIDGID || len(fa.extracted) != 1 || fa.extracted[0] != "a.txt" {
		t.Errorf("SDK copy to: %q %+v %v", fa.extractPath, fa.extractOpts, fa.extracted)
	}
	_, err = c.CopyToContainer(ctx, "c1", client.CopyToContainerOptions{DestinationPath: "/etc/hostname", Content: strings.NewReader("")})
	if err == nil || !strings.Contains(err.Error(), "extraction point is not a directory") || !errdefs.IsInvalidArgument(err) {
		t.Errorf("SDK copy to a file: %v", err)
	}
	diff, err := c.ContainerDiff(ctx, "c1", client.ContainerDiffOptions{})
	if err != nil || len(diff.Changes) != 3 || diff.Changes[2].Kind != container.ChangeDelete {
		t.Errorf("SDK diff: %+v %v", diff, err)
	}
	if b, _ := json.Marshal(diff.Changes[0]); string(b) != `{"Kind":0,"Path":"/tmp"}` {
		t.Errorf("change JSON: %s", b)
	}
}

func TestArchiveRoutesNeedTheBackend(t *testing.T) {
	// A containers backend without the archive methods: not routed.
	ts := startUnix(t, Options{}, Backends{Containers: struct{ Containers }{}})
	resp, _ := ts.do(t, http.MethodGet, "/containers/c1/changes")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("changes without an archiver: %d", resp.StatusCode)
	}
}
