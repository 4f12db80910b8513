package cli

import (
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type psOptions struct {
	quiet   bool
	size    bool
	all     bool
	noTrunc bool
	latest  bool
	last    int
	format  string
	filter  *filterOpt
}

// newPsCommand is `berth ps`.
func newPsCommand(a *app) *cobra.Command {
	opts := psOptions{filter: newFilterOpt()}
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd, a, opts)
		},
		Annotations:           map[string]string{annotationAliases: "berth container ls, berth container list, berth container ps, berth ps"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display container IDs")
	fs.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes")
	fs.BoolVarP(&opts.all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&opts.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.IntVarP(&opts.last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.StringVar(&opts.format, "format", "", formatHelp)
	fs.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// newContainerListCommand is `berth container ls` (also "ps", "list").
func newContainerListCommand(a *app) *cobra.Command {
	cmd := newPsCommand(a)
	cmd.Use = "ls [OPTIONS]"
	cmd.Aliases = []string{"ps", "list"}
	return cmd
}

func runPs(cmd *cobra.Command, a *app, opts psOptions) error {
	if opts.format != "" && opts.quiet {
		_, _ = a.err.Write([]byte("WARNING: Ignoring custom format, because both --format and --quiet are set.\n"))
	}
	list := client.ContainerListOptions{All: opts.all, Limit: opts.last, Size: opts.size, Filters: opts.filter.value()}
	if opts.latest && opts.last == -1 {
		list.Limit = 1
	}
	if opts.format != "" {
		usesSize, err := psTemplateUsesSize(opts.format)
		if err != nil {
			return err
		}
		// A template showing .Size asks for sizes, unless -s was given
		// (even -s=false) or only IDs are printed.
		if usesSize && !opts.quiet && !cmd.Flags().Changed("size") {
			list.Size = true
		}
	}
	res, err := a.client().ContainerList(cmd.Context(), list)
	if err != nil {
		return err
	}
	return writePs(a.out, psFormat(opts.format, opts.quiet, list.Size), !opts.noTrunc, res.Items)
}
