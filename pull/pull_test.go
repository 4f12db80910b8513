package pull_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/pull"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// mixedImage has one layer of each compression, in format f.
func mixedImage(t *testing.T, seed uint64, f fixtures.ManifestFormat) v1.Image {
	t.Helper()
	layers := []v1.Layer{
		specLayer(t, fixtures.SmallMixedLayer(seed), fixtures.Gzip, f),
		specLayer(t, fixtures.TextFileLayer(seed+1, "usr/share/doc/text", 200_000), fixtures.Zstd, f),
		specLayer(t, fixtures.WhiteoutLayer(seed+2, []string{"data/one"}, []string{"data/small"}), fixtures.Uncompressed, f),
		specLayer(t, fixtures.RandomFileLayer(seed+3, "opt/random", 300_000), fixtures.Gzip, f),
	}
	img, err := fixtures.NewImage(layers, fixtures.WithFormat(f), fixtures.WithCmd("/bin/sh"))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPullMixedCompressionFromInProcessRegistry(t *testing.T) {
	for _, f := range []fixtures.ManifestFormat{fixtures.DockerSchema2, fixtures.OCI} {
		t.Run(f.String(), func(t *testing.T) {
			reg := fixtures.StartRegistry(t)
			img := mixedImage(t, 10, f)
			mdigest := pushImage(t, reg, img, "mixed/app:v1")
			e := newEnv(t, pull.Config{})

			ref := reg.Ref("mixed/app:v1")
			got, rec := e.pull(t, ref, pull.Options{})
			e.checkImage(t, got, img, reg.Host+"/mixed/app")
			if !slices.Equal(got.RepoTags, []string{ref}) {
				t.Errorf("RepoTags %v, want [%s]", got.RepoTags, ref)
			}
			if want := reg.Host + "/mixed/app@" + mdigest; !slices.Equal(got.RepoDigests, []string{want}) {
				t.Errorf("RepoDigests %v, want [%s]", got.RepoDigests, want)
			}
			msgs := rec.all()
			if len(msgs) < 3 || msgs[0].Status != "Pulling from mixed/app" || msgs[0].ID != "v1" {
				t.Fatalf("first line %+v, want Pulling from mixed/app (id v1)", msgs[0])
			}
			n := len(msgs)
			if msgs[n-2].Status != "Digest: "+mdigest || msgs[n-1].Status != "Status: Downloaded newer image for "+ref {
				t.Errorf("last lines %+v %+v", msgs[n-2], msgs[n-1])
			}
			if len(e.store.Images(context.Background())) != 1 {
				t.Errorf("store has %d images, want 1", len(e.store.Images(context.Background())))
			}

			// Again: nothing to do, and the wording says so.
			_, rec = e.pull(t, ref, pull.Options{})
			want := []string{"Pulling from mixed/app", "Digest: " + mdigest, "Status: Image is up to date for " + ref}
			var gotLines []string
			for _, m := range rec.all() {
				gotLines = append(gotLines, m.Status)
			}
			if !slices.Equal(gotLines, want) {
				t.Errorf("second pull lines %q, want %q", gotLines, want)
			}
		})
	}
}

func TestPullByDigest(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, err := fixtures.SmallImage(3)
	if err != nil {
		t.Fatal(err)
	}
	mdigest := pushImage(t, reg, img, "small/img:latest")
	e := newEnv(t, pull.Config{})
	ref := reg.Ref("small/img@" + mdigest)
	got, rec := e.pull(t, ref, pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/small/img")
	if len(got.RepoTags) != 0 || !slices.Equal(got.RepoDigests, []string{ref}) {
		t.Errorf("tags %v digests %v, want only %s", got.RepoTags, got.RepoDigests, ref)
	}
	msgs := rec.all()
	if msgs[0].ID != mdigest {
		t.Errorf("Pulling from line id %q, want the digest", msgs[0].ID)
	}
	if last := msgs[len(msgs)-1].Status; last != "Status: Downloaded newer image for "+ref {
		t.Errorf("last line %q", last)
	}

	// A digest the registry does not have.
	bad := reg.Ref("small/img@sha256:" + strings.Repeat("ab", 32))
	_, err = e.puller.Pull(context.Background(), bad, pull.Options{}, nil)
	if !errdefs.IsNotFound(err) {
		t.Errorf("unknown digest: %v, want not found", err)
	}
}

func TestPullAlreadyExistsSharesBaseLayer(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	base := specLayer(t, fixtures.SmallMixedLayer(20), fixtures.Gzip, fixtures.DockerSchema2)
	top1 := specLayer(t, fixtures.TextFileLayer(21, "etc/one", 1000), fixtures.Gzip, fixtures.DockerSchema2)
	top2 := specLayer(t, fixtures.TextFileLayer(22, "etc/two", 1000), fixtures.Gzip, fixtures.DockerSchema2)
	img1, err := fixtures.NewImage([]v1.Layer{base, top1})
	if err != nil {
		t.Fatal(err)
	}
	img2, err := fixtures.NewImage([]v1.Layer{base, top2})
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, img1, "share/one:latest")
	pushImage(t, reg, img2, "share/two:latest")
	e := newEnv(t, pull.Config{})
	e.pull(t, reg.Ref("share/one"), pull.Options{})
	reg.ResetStats()
	got, rec := e.pull(t, reg.Ref("share/two"), pull.Options{})
	e.checkImage(t, got, img2, reg.Host+"/share/two", reg.Host+"/share/one")
	if s := rec.statuses(short(blobDigest(t, base))); !slices.Equal(s, []string{"Already exists"}) {
		t.Errorf("base layer lines %q, want [Already exists]", s)
	}
	if n := reg.BlobBytesServed(blobDigest(t, base)); n != 0 {
		t.Errorf("base layer fetched again (%d bytes)", n)
	}
	if len(e.store.Images(context.Background())) != 2 {
		t.Errorf("want 2 images")
	}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	platforms := []v1.Platform{
		{OS: "linux", Architecture: other},
		{OS: "linux", Architecture: runtime.GOARCH},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
	}
	for _, f := range []fixtures.ManifestFormat{fixtures.DockerSchema2, fixtures.OCI} {
		t.Run(f.String(), func(t *testing.T) {
			idx, err := fixtures.MultiPlatformIndex(30, platforms, fixtures.WithFormat(f))
			if err != nil {
				t.Fatal(err)
			}
			h, err := reg.PushIndex(context.Background(), idx, "multi/"+f.String()+":latest")
			if err != nil {
				t.Fatal(err)
			}
			ref := reg.Ref("multi/" + f.String())
			e := newEnv(t, pull.Config{})
			ctx := context.Background()

			check := func(img v1.Image, plat string) {
				t.Helper()
				got, err := e.puller.Pull(ctx, ref, pull.Options{Platform: plat}, nil)
				if err != nil {
					t.Fatalf("pull %s for %q: %v", ref, plat, err)
				}
				e.checkImage(t, got, img, reg.Host+"/multi/"+f.String())
				if want := reg.Host + "/multi/" + f.String() + "@" + h.String(); !slices.Contains(got.RepoDigests, want) {
					t.Errorf("RepoDigests %v, want the index digest %s", got.RepoDigests, want)
				}
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			imageFor := func(i int) v1.Image {
				img, err := idx.Image(im.Manifests[i].Digest)
				if err != nil {
					t.Fatal(err)
				}
				return img
			}
			check(imageFor(1), "")
			check(imageFor(0), "linux/"+other)
			check(imageFor(2), "linux/arm/v7")

			_, err = e.puller.Pull(ctx, ref, pull.Options{Platform: "linux/s390x"}, nil)
			if !errdefs.IsNotFound(err) || err.Error() != "no matching manifest for linux/s390x in the manifest list entries" {
				t.Errorf("missing platform: %v", err)
			}
		})
	}
}

func TestPullExplicitPlatformMismatchOnPlainManifest(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, err := fixtures.SmallImage(4, fixtures.WithPlatform(v1.Platform{OS: "linux", Architecture: "riscv64"}))
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, img, "plat/img:latest")
	e := newEnv(t, pull.Config{})
	ref := reg.Ref("plat/img")
	_, err = e.puller.Pull(context.Background(), ref, pull.Options{Platform: "linux/amd64"}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match the specified platform") {
		t.Errorf("mismatch: %v", err)
	}
	// Without --platform the image is taken as it is, as dockerd does.
	got, _ := e.pull(t, ref, pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/plat/img")
}

func TestPullNotFoundWording(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	img, err := fixtures.SmallImage(5)
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, img, "there/img:v1")
	e := newEnv(t, pull.Config{})
	for _, tc := range []struct{ ref, familiar string }{
		{reg.Ref("nope"), reg.Ref("nope:latest")},
		{reg.Ref("there/img:v2"), reg.Ref("there/img:v2")},
	} {
		rec := &recorder{}
		_, err := e.puller.Pull(context.Background(), tc.ref, pull.Options{}, rec.add)
		want := "manifest for " + tc.familiar + " not found: manifest unknown: manifest unknown"
		if err == nil || err.Error() != want || !errdefs.IsNotFound(err) {
			t.Errorf("pull %s: %v, want not found %q", tc.ref, err, want)
		}
		if len(rec.all()) != 0 {
			t.Errorf("pull %s sent progress before failing: %+v", tc.ref, rec.all())
		}
	}
	if len(e.store.Images(context.Background())) != 0 {
		t.Error("images left")
	}
}

func TestPullInvalidReference(t *testing.T) {
	e := newEnv(t, pull.Config{})
	for _, ref := range []string{"Busybox", "127.0.0.1:5000/UPPER", "bad ref", "a/b:c:d", ""} {
		_, err := e.puller.Pull(context.Background(), ref, pull.Options{}, nil)
		if !errdefs.IsInvalidArgument(err) || err.Error() != "invalid reference format" {
			t.Errorf("%q: %v, want invalid reference format", ref, err)
		}
	}
	_, err := e.puller.Pull(context.Background(), "busybox", pull.Options{Platform: "a/b/c/d"}, nil)
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad platform: %v", err)
	}
	_, err = e.puller.Pull(context.Background(), "busybox:1", pull.Options{AllTags: true}, nil)
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("all tags with a tag: %v", err)
	}
}

func TestPullUnreachableRegistry(t *testing.T) {
	e := newEnv(t, pull.Config{})
	_, err := e.puller.Pull(context.Background(), "127.0.0.1:1/nothing:here", pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !errdefs.IsUnavailable(err) {
		t.Errorf("unreachable registry: %v", err)
	}
	var nf interface{ NotFound() }
	if errors.As(err, &nf) || errdefs.IsNotFound(err) {
		t.Errorf("unreachable registry reported as not found: %v", err)
	}
}

func TestPullAllTags(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	a, _ := fixtures.SmallImage(6)
	b, _ := fixtures.SmallImage(7)
	pushImage(t, reg, a, "tags/img:a")
	pushImage(t, reg, b, "tags/img:b")
	e := newEnv(t, pull.Config{})
	_, rec := e.pull(t, reg.Ref("tags/img"), pull.Options{AllTags: true})
	for _, tag := range []string{"a", "b"} {
		if _, err := e.store.Image(context.Background(), reg.Ref("tags/img:"+tag)); err != nil {
			t.Errorf("tag %s: %v", tag, err)
		}
	}
	msgs := rec.all()
	if last := msgs[len(msgs)-1].Status; last != "Status: Downloaded newer image for "+reg.Ref("tags/img") {
		t.Errorf("last line %q", last)
	}
}
