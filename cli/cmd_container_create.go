package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// --pull values.
const (
	pullAlways  = "always"
	pullMissing = "missing"
	pullNever   = "never"
)

// createOptions are the flags of `create` and `run` that are not part of
// the container's configuration.
type createOptions struct {
	name     string
	platform string
	pull     string
	quiet    bool
}

func addCreateFlags(fs *pflag.FlagSet, o *createOptions, getenv func(string) string, verb string) {
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	// docker 28 words create's help with a stray "|"; kept, for the same
	// help text.
	missing := pullMissing
	if verb == "creating" {
		missing = "|" + missing
	}
	fs.StringVar(&o.pull, "pull", pullMissing, fmt.Sprintf(`Pull image before %s ("%s", "%s", "%s")`, verb, pullAlways, missing, pullNever))
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	// -h is --hostname here: an explicit --help without shorthand keeps the
	// root's persistent -h from clashing with it.
	fs.Bool("help", false, "Print usage")
	fs.StringVar(&o.platform, "platform", getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.Bool("disable-content-trust", true, "Skip image verification")
}

func validatePullOpt(v string) error {
	switch v {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", v, pullAlways, pullMissing, pullNever)
}

// withHelp is the docker CLI's decoration of a run/create failure.
func withHelp(err error, verb string) error {
	return fmt.Errorf("berth: %w\n\nRun 'berth %s --help' for more information", err, verb)
}

// newCreateCommand is `berth create` / `berth container create`.
func newCreateCommand(a *app) *cobra.Command {
	var opts createOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.image, copts.args = args[0], args[1:]
			if err := checkFlagVersions(cmd.Context(), cmd, a); err != nil {
				return err
			}
			if err := validatePullOpt(opts.pull); err != nil {
				return statusError{status: withHelp(err, "create").Error(), code: 125}
			}
			cfg, err := copts.parse(cmd.Flags())
			if err != nil {
				return statusError{status: withHelp(err, "create").Error(), code: 125}
			}
			id, err := createContainer(cmd.Context(), a, cfg, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, id)
			return nil
		},
		Annotations:           map[string]string{annotationAliases: "berth container create, berth create"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	addCreateFlags(fs, &opts, a.getenv, "creating")
	copts = addContainerFlags(fs)
	return cmd
}

// createContainer creates the container as the docker CLI does: --pull
// always pulls first; a missing image (404) is pulled, with its progress
// on stderr, and the create is tried again. It returns the new ID.
func createContainer(ctx context.Context, a *app, cfg *containerConfig, opts createOptions) (string, error) {
	var platform *ocispec.Platform
	if opts.platform != "" {
		p, err := parsePlatform(opts.platform)
		if err != nil {
			return "", fmt.Errorf("error parsing specified platform: %w", err)
		}
		platform = &p
	}
	cid, err := newCIDFile(cfg.HostConfig.ContainerIDFile)
	if err != nil {
		return "", err
	}
	defer cid.close()

	ref, err := reference.ParseAnyReference(cfg.Config.Image)
	if err != nil {
		return "", err
	}
	var named reference.Named
	if n, ok := ref.(reference.Named); ok {
		named = reference.TagNameOnly(n)
	}

	if opts.pull == pullAlways {
		if err := pullImage(ctx, a, cfg.Config.Image, platform, opts.quiet); err != nil {
			return "", err
		}
	}
	if h, w := ttySize(a.out); h > 0 {
		cfg.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	req := client.ContainerCreateOptions{
		Name:             opts.name,
		Platform:         platform,
		Config:           cfg.Config,
		HostConfig:       cfg.HostConfig,
		NetworkingConfig: cfg.NetworkingConfig,
	}
	res, err := a.client().ContainerCreate(ctx, req)
	if err != nil {
		if !cerrdefs.IsNotFound(err) || named == nil || opts.pull != pullMissing {
			return "", err
		}
		if !opts.quiet {
			// stdout is for the container ID only.
			fmt.Fprintf(a.err, "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := pullImage(ctx, a, cfg.Config.Image, platform, opts.quiet); err != nil {
			return "", err
		}
		if res, err = a.client().ContainerCreate(ctx, req); err != nil {
			return "", err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(a.err, "WARNING:", w)
	}
	return res.ID, cid.write(res.ID)
}

// pullImage pulls img for create/run, its progress on stderr.
func pullImage(ctx context.Context, a *app, img string, platform *ocispec.Platform, quiet bool) error {
	named, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: registryAuth(a.getenv, reference.Domain(named))}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := a.client().ImagePull(ctx, img, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	var out io.Writer = a.err
	fd, isTerm := terminalFd(a.err)
	if quiet {
		out, isTerm = io.Discard, false
	}
	return jsonmessage.DisplayJSONMessagesStream(resp, out, fd, isTerm, nil)
}

// terminalFd reports whether w is a terminal, and its descriptor.
func terminalFd(w any) (uintptr, bool) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f.Fd(), true
	}
	return 0, false
}

// ttySize is the height and width of w when it is a terminal, else 0, 0.
func ttySize(w any) (uint, uint) {
	fd, ok := terminalFd(w)
	if !ok {
		return 0, 0
	}
	width, height, err := term.GetSize(int(fd))
	if err != nil {
		return 0, 0
	}
	return uint(height), uint(width)
}

// cidFile is --cidfile: created before the container, removed again when
// no ID was written to it.
type cidFile struct {
	path    string
	file    *os.File
	written bool
}

func newCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return &cidFile{}, nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil, errors.New("container ID file found, make sure the other container isn't running or delete " + path)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create the container ID file: %w", err)
	}
	return &cidFile{path: path, file: f}, nil
}

func (c *cidFile) write(id string) error {
	if c.file == nil {
		return nil
	}
	if _, err := c.file.WriteString(id); err != nil {
		return fmt.Errorf("failed to write the container ID (%s) to file: %w", id, err)
	}
	c.written = true
	return nil
}

func (c *cidFile) close() {
	if c.file == nil {
		return
	}
	_ = c.file.Close()
	if !c.written {
		_ = os.Remove(c.path)
	}
}
