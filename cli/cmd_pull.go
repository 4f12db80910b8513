package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// newPullCommand is `berth pull` / `berth image pull`.
func newPullCommand(a *app) *cobra.Command {
	var allTags, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %w", err)
			}
			if allTags && !reference.IsNameOnly(named) {
				return fmt.Errorf("tag can't be used with --all-tags/-a")
			}
			if !allTags {
				named = reference.TagNameOnly(named)
			}
			opts := client.ImagePullOptions{All: allTags, RegistryAuth: registryAuth(a.getenv, reference.Domain(named))}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platforms = []ocispec.Platform{p}
			}
			resp, err := a.client().ImagePull(cmd.Context(), reference.FamiliarString(named), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			out, fd, isTerm := a.out, uintptr(0), false
			if f, ok := a.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				fd, isTerm = f.Fd(), true
			}
			if quiet {
				out, isTerm = discard{}, false
			}
			if err := jsonmessage.DisplayJSONMessagesStream(resp, out, fd, isTerm, nil); err != nil {
				return err
			}
			fmt.Fprintln(a.out, named.String())
			return nil
		},
		Annotations:           map[string]string{annotationAliases: "berth image pull, berth pull"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&allTags, "all-tags", "a", false, "Download all tagged images in the repository")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	f.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	f.Bool("disable-content-trust", true, "Skip image verification")
	return cmd
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// registryAuth is the X-Registry-Auth value for a registry from the
// docker CLI's config file ($DOCKER_CONFIG or ~/.docker/config.json), or
// "" (anonymous). Credential helpers are not consulted.
func registryAuth(getenv func(string) string, domain string) string {
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".docker")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return ""
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return ""
	}
	keys := []string{domain, "https://" + domain, "http://" + domain}
	if domain == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	for _, k := range keys {
		entry, ok := cfg.Auths[k]
		if !ok || entry.Auth == "" {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(entry.Auth)
		if err != nil {
			continue
		}
		user, pass, _ := strings.Cut(string(dec), ":")
		b, _ := json.Marshal(map[string]string{"username": user, "password": pass, "serveraddress": domain})
		return base64.URLEncoding.EncodeToString(b)
	}
	return ""
}
