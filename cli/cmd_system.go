package cli

import "github.com/spf13/cobra"

// newSystemCommand is the `berth system` group.
func newSystemCommand(a *app) *cobra.Command {
	return newGroupCommand(a, "system", "Manage berth",
		newDiskUsageCommand(a),
		newEventsCommand(a),
		newInfoCommand(a),
	)
}
