package run

import "github.com/berth-dev/berth/run/shim"

// ShimMain is the per-container shim (package shim) for `berthd shim …`,
// the fallback when no berth-shim binary sits beside berthd: it gets the
// arguments after "shim" and returns the process exit code.
func ShimMain(args []string) int { return shim.Main(args) }

// netnsName is the pinned network namespace in a container's bundle
// directory; bundleConfigName is its OCI spec.
const (
	netnsName        = "netns"
	bundleConfigName = "config.json"
)
