package pull

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// platform is what an index entry must match.
type platform struct {
	OS, Architecture, Variant string
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// hostPlatform is the default choice: the daemon's own OS and architecture.
func hostPlatform() platform {
	return normalizePlatform(platform{OS: runtime.GOOS, Architecture: runtime.GOARCH})
}

var knownOS = map[string]bool{"linux": true, "windows": true, "darwin": true, "freebsd": true}

// parsePlatform reads "os/arch[/variant]" (also "os" or "arch" alone, as
// containerd's platforms.Parse does); "" is the host.
func parsePlatform(s string) (platform, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return hostPlatform(), nil
	}
	parts := strings.Split(s, "/")
	var p platform
	switch len(parts) {
	case 1:
		if knownOS[parts[0]] {
			p = platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else {
			p = platform{OS: "linux", Architecture: parts[0]}
		}
	case 2:
		p = platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return p, fmt.Errorf("invalid platform %q: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, f := range []string{p.OS, p.Architecture} {
		if f == "" {
			return p, fmt.Errorf("invalid platform %q: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return normalizePlatform(p), nil
}

// normalizePlatform folds architecture aliases the way containerd does.
func normalizePlatform(p platform) platform {
	p.OS = strings.ToLower(p.OS)
	switch strings.ToLower(p.Architecture) {
	case "i386":
		p.Architecture, p.Variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "8" || p.Variant == "v8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	default:
		p.Architecture = strings.ToLower(p.Architecture)
	}
	return p
}

// matches reports whether an index entry's platform satisfies want.
func (want platform) matches(got *v1.Platform) bool {
	if got == nil {
		return false
	}
	g := normalizePlatform(platform{OS: got.OS, Architecture: got.Architecture, Variant: got.Variant})
	return g.OS == want.OS && g.Architecture == want.Architecture && g.Variant == want.Variant
}

// pickManifest chooses the entry of an index for want: an exact match
// first, then (when want names no variant) any variant of the same
// OS/architecture, as dockerd's default matcher accepts.
func pickManifest(idx *v1.IndexManifest, want platform) (v1.Descriptor, bool) {
	for _, d := range idx.Manifests {
		if want.matches(d.Platform) {
			return d, true
		}
	}
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		g := normalizePlatform(platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant})
		if g.OS == want.OS && g.Architecture == want.Architecture && (want.Variant == "" || want.Architecture == "arm" && variantBelow(g.Variant, want.Variant)) {
			return d, true
		}
	}
	return v1.Descriptor{}, false
}

// variantBelow: an arm v7 host also runs v6 and v5 images.
func variantBelow(got, want string) bool {
	return len(got) == 2 && len(want) == 2 && got[0] == 'v' && want[0] == 'v' && got[1] <= want[1]
}
