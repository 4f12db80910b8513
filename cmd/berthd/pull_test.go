package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The docker CLI pulls from Debian's docker-registry on loopback through
// berthd: progress, digests, IDs and layers as dockerd gives them.
func TestDockerPullFromDebianRegistry(t *testing.T) {
	ctx := context.Background()
	reg, err := fixtures.StartDockerRegistry(t)
	if err != nil {
		t.Fatal(err)
	}
	img, err := fixtures.ImageFromSpecs([]fixtures.LayerSpec{
		fixtures.SmallMixedLayer(31),
		fixtures.ManySmallFilesLayer(32, 5, 200, 500),
		fixtures.RandomFileLayer(33, "opt/blob", 2<<20),
		fixtures.WhiteoutLayer(34, []string{"etc/motd"}, []string{"data/small"}),
	}, fixtures.WithCmd("sh"))
	if err != nil {
		t.Fatal(err)
	}
	manifestDigest, err := fixtures.PushImage(ctx, reg.Host, "team/multi", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	configDigest, _ := img.ConfigName()
	d := startDaemon(t, "")
	ref := reg.Host + "/team/multi:v1"

	out, errOut, code := d.docker("pull", ref)
	if code != 0 {
		t.Fatalf("pull: %d %s\n%s", code, errOut, d.logs())
	}
	for _, want := range []string{"v1: Pulling from team/multi", "Pull complete", "Digest: " + manifestDigest.String(), "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = d.docker("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}")
	if want := fmt.Sprintf("%s %s %s", ref, manifestDigest, configDigest.Hex[:12]); strings.TrimSpace(out) != want {
		t.Fatalf("images --digests:\n%s\nwant %s", out, want)
	}
	cfg, _ := img.ConfigFile()
	var diffIDs []string
	for _, d := range cfg.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	out, errOut, _ = d.docker("image", "inspect", "--format", "{{.Id}} {{range .RootFS.Layers}}{{.}},{{end}} {{index .RepoDigests 0}}", ref)
	want := fmt.Sprintf("%s %s, %s/team/multi@%s", configDigest, strings.Join(diffIDs, ","), reg.Host, manifestDigest)
	if strings.TrimSpace(out) != want {
		t.Fatalf("inspect:\n%s %s\nwant %s", out, errOut, want)
	}
	out, _, code = d.docker("pull", ref)
	if code != 0 || !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Fatalf("second pull: %d\n%s", code, out)
	}
	_, errOut, code = d.docker("pull", reg.Host+"/team/nope:v9")
	wantErr := fmt.Sprintf("Error response from daemon: manifest for %s/team/nope:v9 not found: manifest unknown: manifest unknown", reg.Host)
	if code != 1 || strings.TrimSpace(errOut) != wantErr {
		t.Fatalf("pull missing: %d %q\nwant %q", code, errOut, wantErr)
	}
	nextSecond()
	out, _, _ = d.docker("events", "--since", "1m", "--until", "0s", "--filter", "event=pull", "--format", "{{.Actor.ID}}")
	if !strings.Contains(out, ref) {
		t.Errorf("no pull event for %s:\n%s", ref, out)
	}
	// Removing the image removes its layers and the blobs they came as.
	if _, errOut, code := d.docker("rmi", ref); code != 0 {
		t.Fatalf("rmi: %s", errOut)
	}
	if left, _ := os.ReadDir(filepath.Join(d.dataDir, "blobs", "sha256")); len(left) != 0 {
		t.Fatalf("%d blobs left after rmi", len(left))
	}
	if left, _ := os.ReadDir(filepath.Join(d.dataDir, "layers")); len(left) > 1 {
		t.Fatalf("layer dirs left after rmi: %d", len(left))
	}
}

// An index resolves to the host's platform, and --platform picks another.
func TestDockerPullIndexChoosesPlatform(t *testing.T) {
	ctx := context.Background()
	reg, err := fixtures.StartDockerRegistry(t)
	if err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx, err := fixtures.MultiPlatformIndex(41, []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}, {OS: "linux", Architecture: other}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.PushIndex(ctx, reg.Host, "multi", "latest", idx); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "")
	ref := reg.Host + "/multi:latest"
	if _, errOut, code := d.docker("pull", ref); code != 0 {
		t.Fatalf("pull: %s", errOut)
	}
	out, _, _ := d.docker("image", "inspect", "--format", "{{.Architecture}}", ref)
	if strings.TrimSpace(out) != runtime.GOARCH {
		t.Fatalf("host pull chose %q", out)
	}
	if _, errOut, code := d.docker("pull", "--platform", "linux/"+other, ref); code != 0 {
		t.Fatalf("pull --platform: %s", errOut)
	}
	out, _, _ = d.docker("image", "inspect", "--format", "{{.Architecture}}", ref)
	if strings.TrimSpace(out) != other {
		t.Fatalf("--platform pull chose %q", out)
	}
}

// berth pull prints what docker pull prints.
func TestBerthPullLikeDockerPull(t *testing.T) {
	ctx := context.Background()
	reg, err := fixtures.StartDockerRegistry(t)
	if err != nil {
		t.Fatal(err)
	}
	img, err := fixtures.SmallImage(51)
	if err != nil {
		t.Fatal(err)
	}
	dgst, err := fixtures.PushImage(ctx, reg.Host, "small", "latest", img)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "")
	out, errOut, code := d.berth("pull", reg.Host+"/small")
	if code != 0 {
		t.Fatalf("berth pull: %d %s", code, errOut)
	}
	for _, want := range []string{"latest: Pulling from small", "Pull complete", "Digest: " + dgst.String(), "Status: Downloaded newer image for " + reg.Host + "/small:latest", "\n" + reg.Host + "/small:latest\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("berth pull output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = d.berth("pull", "-q", reg.Host+"/small")
	if code != 0 || out != reg.Host+"/small:latest\n" {
		t.Fatalf("berth pull -q: %d %q", code, out)
	}
	bo, be, bc := d.berth("pull", reg.Host+"/small:nope")
	do, de, dc := d.docker("pull", reg.Host+"/small:nope")
	if bo != do || be != de || bc != dc || bc != 1 {
		t.Fatalf("missing tag: berth %d %q %q, docker %d %q %q", bc, bo, be, dc, do, de)
	}
}

// kill -9 of berthd in the middle of a pull: the restarted berthd opens its
// store, and pulling again completes from the partial download.
func TestKill9MidPullResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	reg := fixtures.StartRegistry(t)
	big := fixtures.RandomFileLayer(61, "opt/big", 12<<20)
	img, err := fixtures.ImageFromSpecs([]fixtures.LayerSpec{fixtures.SmallMixedLayer(60), big})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push(ctx, img, "resume:v1"); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	bigDigest, _ := layers[1].Digest()
	bigSize, _ := layers[1].Size()
	throttle, err := reg.Throttle("/blobs/"+bigDigest.String(), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := startDaemon(t, dir)
	ref := reg.Host + "/resume:v1"
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		runDocker(t, d.host, nil, "pull", ref)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for reg.BlobBytesServed(bigDigest.String()) < 5<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("download never got going: %d bytes", reg.BlobBytesServed(bigDigest.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.cmd.Process.Kill()
	<-d.exited
	<-pulled
	servedBefore := reg.BlobBytesServed(bigDigest.String())

	reg.RemoveFault(throttle)
	d2 := startDaemon(t, dir)
	out, errOut, code := d2.docker("pull", ref)
	if code != 0 {
		t.Fatalf("pull after restart: %d %s\n%s", code, errOut, d2.logs())
	}
	if !strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Fatalf("pull after restart:\n%s", out)
	}
	again := reg.BlobBytesServed(bigDigest.String()) - servedBefore
	if again >= bigSize {
		t.Fatalf("the second pull fetched %d bytes of a %d-byte blob: nothing was resumed", again, bigSize)
	}
	if out, _, _ := d2.docker("images", "-q"); len(strings.Fields(out)) != 1 {
		t.Fatalf("images after the resumed pull: %q", out)
	}
}
