// Command berth is the client of berthd: a docker-compatible CLI.
package main

import (
	"os"

	"github.com/berth-dev/berth/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
