package cli

import "github.com/spf13/cobra"

// newImageCommand is the `berth image` group. Later image verbs (pull,
// push, build, save, load, import) add their constructor here.
func newImageCommand(a *app) *cobra.Command {
	return newGroupCommand(a, "image", "Manage images",
		newHistoryCommand(a),
		newImageInspectCommand(a),
		newImageListCommand(a),
		newImagePruneCommand(a),
		newPullCommand(a),
		newImageRemoveCommand(a),
		newTagCommand(a),
	)
}
