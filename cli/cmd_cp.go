package cli

import "github.com/spf13/cobra"

// archiveCommands are this file's verbs, added both at the top level and under
// "berth container". (Placeholder: filled in by the issue-6 work.)
func archiveCommands(a *app) []*cobra.Command { return nil }
