// Command berth-shim is the per-container shim berthd starts for every
// container (package run/shim). It is a binary of its own, and a small
// one, because a container start waits for it to exec: berthd's own
// binary would do (`berthd shim …`), at several times the cost.
package main

import (
	"os"

	"github.com/berth-dev/berth/run/shim"
)

func main() { os.Exit(shim.Main(os.Args[1:])) }
