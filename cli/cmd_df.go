package cli

import (
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/spf13/cobra"
)

type diskUsageOptions struct {
	verbose bool
	format  string
}

// newDiskUsageCommand is `berth system df`.
func newDiskUsageCommand(a *app) *cobra.Command {
	var opts diskUsageOptions
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Before API 1.52 the daemon always sends every object and
			// knows no verbose parameter; negotiate first to know.
			if _, err := a.client().Ping(cmd.Context(), client.PingOptions{NegotiateAPIVersion: true}); err != nil {
				return err
			}
			legacy := versions.LessThan(a.client().ClientVersion(), "1.52")
			du, err := a.client().DiskUsage(cmd.Context(), client.DiskUsageOptions{Verbose: opts.verbose && !legacy})
			if err != nil {
				return err
			}
			format := opts.format
			if format == "" {
				format = tableFormatKey
			}
			rows := diskUsageRows(du, legacy)
			if opts.verbose {
				return writeDiskUsageVerbose(a.out, diskUsageFormat(format, true), du, rows[3].size)
			}
			return writeDiskUsage(a.out, diskUsageFormat(format, false), rows)
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.verbose, "verbose", "v", false, "Show detailed information on space usage")
	fs.StringVar(&opts.format, "format", "", formatHelp)
	return cmd
}
