// Command berth-fixtures writes the test fixture images (busybox, the bench
// image, ...) to a registry or to OCI image layouts, for `make run` and
// `make bench`.
//
//	berth-fixtures push --registry 127.0.0.1:5000 busybox:latest bench:latest
//	berth-fixtures layout --dir /tmp/oci busybox:latest
//	berth-fixtures list
//
// The last path element of each repository picks the fixture, so
// "library/busybox:latest" pushes busybox to library/busybox.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/fixtures"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// artifact is an image or an index.
type artifact struct {
	img v1.Image
	idx v1.ImageIndex
}

type buildOpts struct {
	scale float64
	oci   bool
}

type fixture struct {
	help  string
	build func(ctx context.Context, o buildOpts) (artifact, error)
}

func fixtureTable() map[string]fixture {
	imgOpts := func(o buildOpts) []fixtures.ImageOption {
		if o.oci {
			return []fixtures.ImageOption{fixtures.WithOCI()}
		}
		return nil
	}
	return map[string]fixture{
		"busybox": {"runnable busybox from the host's /bin/busybox", func(ctx context.Context, o buildOpts) (artifact, error) {
			img, err := fixtures.BusyboxImage(ctx, imgOpts(o)...)
			return artifact{img: img}, err
		}},
		"bench": {"the five-layer bench image of BENCH.md (cached; --scale shrinks it)", func(ctx context.Context, o buildOpts) (artifact, error) {
			img, err := fixtures.BenchImageScaled(ctx, o.scale)
			return artifact{img: img}, err
		}},
		"small": {"two small layers with whiteouts, links and an xattr", func(ctx context.Context, o buildOpts) (artifact, error) {
			img, err := fixtures.SmallImage(1, imgOpts(o)...)
			return artifact{img: img}, err
		}},
		"multi": {"index of small images for linux/amd64, arm64/v8, arm/v7, s390x", func(ctx context.Context, o buildOpts) (artifact, error) {
			format := fixtures.DockerSchema2
			if o.oci {
				format = fixtures.OCI
			}
			idx, err := fixtures.MultiPlatformIndex(1, []v1.Platform{
				{OS: "linux", Architecture: "amd64"},
				{OS: "linux", Architecture: "arm64", Variant: "v8"},
				{OS: "linux", Architecture: "arm", Variant: "v7"},
				{OS: "linux", Architecture: "s390x"},
			}, fixtures.WithFormat(format))
			return artifact{idx: idx}, err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "berth-fixtures:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  berth-fixtures push --registry HOST[:PORT] [--scale S] [--oci] REPO:TAG...
  berth-fixtures layout --dir DIR [--scale S] [--oci] REPO:TAG...
  berth-fixtures list
`)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("no command")
	}
	table := fixtureTable()
	switch args[0] {
	case "list":
		names := make([]string, 0, len(table))
		for n := range table {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(out, "%-8s %s\n", n, table[n].help)
		}
		return nil
	case "push", "layout":
	case "-h", "--help", "help":
		usage(out)
		return nil
	default:
		usage(os.Stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}

	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	registry := fs.String("registry", "", "registry host[:port] to push to (plain HTTP)")
	dir := fs.String("dir", "", "OCI image layout directory to write")
	scale := fs.Float64("scale", 1, "size factor for the bench image, in (0, 1]")
	oci := fs.Bool("oci", false, "OCI media types instead of Docker schema2 (not for bench)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	refs := fs.Args()
	if len(refs) == 0 {
		return errors.New("name at least one REPO:TAG")
	}
	if args[0] == "push" && *registry == "" {
		return errors.New("push needs --registry")
	}
	if args[0] == "layout" && *dir == "" {
		return errors.New("layout needs --dir")
	}

	for _, r := range refs {
		repo, tag, ok := strings.Cut(r, ":")
		if !ok || tag == "" {
			tag = "latest"
		}
		f, ok := table[path.Base(repo)]
		if !ok {
			return fmt.Errorf("%s: no fixture named %q (see berth-fixtures list)", r, path.Base(repo))
		}
		a, err := f.build(ctx, buildOpts{scale: *scale, oci: *oci})
		if err != nil {
			return fmt.Errorf("build %s: %w", r, err)
		}
		var digest v1.Hash
		var where string
		if args[0] == "push" {
			where = *registry + "/" + repo + ":" + tag
			digest, err = push(ctx, where, a)
		} else {
			where = *dir + " " + repo + ":" + tag
			digest, err = writeLayout(*dir, repo+":"+tag, a)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s\n", where, digest)
	}
	return nil
}

func push(ctx context.Context, where string, a artifact) (v1.Hash, error) {
	ref, err := name.ParseReference(where, name.Insecure)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reference %s: %w", where, err)
	}
	if a.idx != nil {
		if err := remote.WriteIndex(ref, a.idx, remote.WithContext(ctx)); err != nil {
			return v1.Hash{}, fmt.Errorf("push %s: %w", where, err)
		}
		return a.idx.Digest()
	}
	if err := remote.Write(ref, a.img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", where, err)
	}
	return a.img.Digest()
}

// writeLayout adds the artifact to the OCI layout at dir (created when
// missing), named by the org.opencontainers.image.ref.name annotation.
func writeLayout(dir, refName string, a artifact) (v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return v1.Hash{}, fmt.Errorf("create layout %s: %w", dir, err)
		}
	}
	ann := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName})
	if a.idx != nil {
		if err := p.AppendIndex(a.idx, ann); err != nil {
			return v1.Hash{}, fmt.Errorf("write %s to %s: %w", refName, dir, err)
		}
		return a.idx.Digest()
	}
	if err := p.AppendImage(a.img, ann); err != nil {
		return v1.Hash{}, fmt.Errorf("write %s to %s: %w", refName, dir, err)
	}
	return a.img.Digest()
}
