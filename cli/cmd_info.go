package cli

import (
	"context"
	"errors"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newInfoCommand is `berth info` / `berth system info`.
func newInfoCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInfo(cmd.Context(), a, format)
		},
		Annotations:           map[string]string{annotationAliases: "berth system info, berth info"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func runInfo(ctx context.Context, a *app, format string) error {
	info := infoData{
		ClientInfo: &clientInfo{clientVersion: newClientVersion(""), Debug: a.opts.debug},
		Info:       &system.Info{},
	}
	var connErr error
	if needsServerInfo(format, info) {
		res, err := a.client().Info(ctx, client.InfoOptions{})
		switch {
		case err == nil:
			info.Info = &res.Info
		case client.IsErrConnectionFailed(err):
			if format == "" {
				info.Info = nil
			}
			connErr = err
		default:
			if format == "" {
				info.Info = nil
			}
			info.ServerErrors = append(info.ServerErrors, err.Error())
			if format != "" {
				_, _ = a.err.Write([]byte(err.Error() + "\n"))
			}
		}
	}
	if format == "" {
		info.ClientInfo.APIVersion = a.client().ClientVersion()
		return errors.Join(writeInfo(a.out, a.err, info), connErr)
	}
	return errors.Join(connErr, writeInfoFormat(a.out, info, format))
}
