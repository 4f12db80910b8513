package cli

import (
	"fmt"
	"io"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// formatHelp describes --format of listings.
const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`

// inspectFormatHelp describes --format of inspect-like commands.
const inspectFormatHelp = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`

type imagesOptions struct {
	matchName   string
	quiet       bool
	all         bool
	noTrunc     bool
	showDigests bool
	format      string
	filter      *filterOpt
}

// newImagesCommand is `berth images` (and, renamed, `berth image ls`).
func newImagesCommand(a *app) *cobra.Command {
	opts := imagesOptions{filter: newFilterOpt()}
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.matchName = args[0]
			}
			n, err := runImages(cmd, a, opts)
			if err != nil {
				return err
			}
			if n == 0 && opts.matchName != "" && cmd.CalledAs() == "images" {
				printAmbiguousHint(a.err, opts.matchName)
			}
			return nil
		},
		Annotations:           map[string]string{annotationAliases: "berth image ls, berth image list, berth images"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	fs.BoolVarP(&opts.all, "all", "a", false, "Show all images (default hides intermediate images)")
	fs.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVar(&opts.showDigests, "digests", false, "Show digests")
	fs.StringVar(&opts.format, "format", "", formatHelp)
	fs.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func newImageListCommand(a *app) *cobra.Command {
	cmd := newImagesCommand(a)
	cmd.Use = "ls [OPTIONS] [REPOSITORY[:TAG]]"
	cmd.Aliases = []string{"list"}
	return cmd
}

func runImages(cmd *cobra.Command, a *app, opts imagesOptions) (int, error) {
	filters := opts.filter.value()
	if opts.matchName != "" {
		filters.Add("reference", opts.matchName)
	}
	res, err := a.client().ImageList(cmd.Context(), client.ImageListOptions{All: opts.all, Filters: filters})
	if err != nil {
		return 0, err
	}
	// Dangling images are listed as the daemon sends them ("<none>"), as
	// docker 28 does.
	images := res.Items
	format := opts.format
	if format == "" {
		format = tableFormatKey
	}
	if err := writeImages(a.out, imageListFormat(format, opts.quiet, opts.showDigests), !opts.noTrunc, opts.showDigests, images); err != nil {
		return 0, err
	}
	return len(images), nil
}

// printAmbiguousHint helps someone who typed `berth images ls` (meaning
// `berth image ls`) and got an empty list filtered by the name "ls".
func printAmbiguousHint(w io.Writer, matchName string) {
	switch matchName {
	case "build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save", "tag":
		fmt.Fprintf(w, "\nNo images found matching %q: did you mean \"berth image %[1]s\"?\n", matchName)
	}
}
