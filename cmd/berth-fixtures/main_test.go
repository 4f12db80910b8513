package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/fixtures"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPushAndLayout(t *testing.T) {
	ctx := context.Background()
	t.Setenv(fixtures.CacheEnv, t.TempDir())
	r := fixtures.StartRegistry(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"push", "--registry", r.Host, "--scale", "0.01", "library/busybox:latest", "bench:v1", "multi"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", out.String())
	}
	for _, l := range lines {
		where, digest, _ := strings.Cut(l, " ")
		ref, err := name.ParseReference(where, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref)
		if err != nil {
			t.Fatalf("get %s: %v", where, err)
		}
		if desc.Digest.String() != digest {
			t.Fatalf("%s: registry has %s, command printed %s", where, desc.Digest, digest)
		}
	}

	dir := t.TempDir() + "/oci"
	out.Reset()
	if err := run(ctx, []string{"layout", "--dir", dir, "--oci", "small:1", "busybox"}, &out); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "small:1" {
		t.Fatalf("layout index %+v", im.Manifests)
	}

	for _, bad := range [][]string{{"push", "busybox"}, {"push", "--registry", r.Host, "nosuch:1"}, {"frobnicate"}} {
		if err := run(ctx, bad, &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
