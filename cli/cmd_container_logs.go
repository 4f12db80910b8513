package cli

import (
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type logsOptions struct {
	follow     bool
	since      string
	until      string
	timestamps bool
	details    bool
	tail       string
}

// newLogsCommand is `berth logs` / `berth container logs`.
func newLogsCommand(a *app) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// The container's Tty decides whether the stream is framed.
			info, err := a.client().ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			rc, err := a.client().ContainerLogs(ctx, info.Container.ID, client.ContainerLogsOptions{
				ShowStdout: true,
				ShowStderr: true,
				Since:      opts.since,
				Until:      opts.until,
				Timestamps: opts.timestamps,
				Follow:     opts.follow,
				Tail:       opts.tail,
				Details:    opts.details,
			})
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Container.Config != nil && info.Container.Config.Tty {
				_, err = io.Copy(a.out, rc)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, rc)
			}
			if ctx.Err() != nil {
				// Interrupted (logs -f and ctrl-C): not an error.
				return nil
			}
			return err
		},
		Annotations:           map[string]string{annotationAliases: "berth container logs, berth logs"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&opts.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.StringVar(&opts.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps")
	fs.BoolVar(&opts.details, "details", false, "Show extra details provided to logs")
	fs.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}
