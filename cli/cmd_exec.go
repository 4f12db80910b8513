package cli

import "github.com/spf13/cobra"

// execCommands are this file's verbs, added both at the top level and under
// "berth container". (Placeholder: filled in by the issue-6 work.)
func execCommands(a *app) []*cobra.Command { return nil }
