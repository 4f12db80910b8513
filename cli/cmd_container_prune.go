package cli

import (
	"fmt"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const containerPruneWarning = `WARNING! This will remove all stopped containers.
Are you sure you want to continue?`

// newContainerPruneCommand is `berth container prune`.
func newContainerPruneCommand(a *app) *cobra.Command {
	var force bool
	filter := newFilterOpt()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force {
				ok, err := confirm(ctx, a.in, a.out, containerPruneWarning)
				if err != nil {
					return err
				}
				if !ok {
					return errCancelled
				}
			}
			res, err := a.client().ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filter.value()})
			if err != nil {
				return err
			}
			var reclaimed uint64
			if len(res.Report.ContainersDeleted) > 0 {
				var sb strings.Builder
				sb.WriteString("Deleted Containers:\n")
				for _, id := range res.Report.ContainersDeleted {
					sb.WriteString(id + "\n")
				}
				fmt.Fprintln(a.out, sb.String())
				reclaimed = res.Report.SpaceReclaimed
			}
			fmt.Fprintln(a.out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}
