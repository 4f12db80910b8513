package cli

import (
	"github.com/spf13/cobra"
)

type historyOptions struct {
	human   bool
	quiet   bool
	noTrunc bool
	format  string
}

// newHistoryCommand is `berth history` / `berth image history`.
func newHistoryCommand(a *app) *cobra.Command {
	var opts historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			format := opts.format
			if format == "" {
				format = tableFormatKey
			}
			return writeHistory(a.out, historyFormat(format, opts.quiet, opts.human), !opts.noTrunc, opts.human, res.Items)
		},
		Annotations:           map[string]string{annotationAliases: "berth image history, berth history"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.human, "human", "H", true, "Print sizes and dates in human readable format")
	fs.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	fs.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	fs.StringVar(&opts.format, "format", "", formatHelp)
	return cmd
}
