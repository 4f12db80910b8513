package cli

import (
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newVersionCommand is `berth version`: the client's build facts, then the
// daemon's (Engine and its components). When the daemon cannot be reached
// the client part is still printed and the command fails.
func newVersionCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tmpl, err := versionTemplate(format)
			if err != nil {
				return statusError{status: err.Error(), code: 64}
			}
			sv, err := a.client().ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			vd := versionInfo{Client: newClientVersion(a.client().ClientVersion())}
			if err == nil {
				vd.Server = newServerVersion(sv)
			}
			if err2 := writeVersion(a.out, vd, tmpl); err2 != nil && err == nil {
				err = err2
			}
			return err
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}
