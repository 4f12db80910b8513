package cli

import (
	"errors"
	"io"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type eventsOptions struct {
	since  string
	until  string
	filter *filterOpt
	format string
}

// newEventsCommand is `berth events` / `berth system events`: it streams
// daemon events until --until is reached (the daemon then ends the
// stream) or the command is interrupted.
func newEventsCommand(a *app) *cobra.Command {
	opts := eventsOptions{filter: newFilterOpt()}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tmpl, err := eventsTemplate(opts.format)
			if err != nil {
				return statusError{status: "Error parsing format: " + err.Error(), code: 64}
			}
			res := a.client().Events(cmd.Context(), client.EventsListOptions{
				Since:   opts.since,
				Until:   opts.until,
				Filters: opts.filter.value(),
			})
			for {
				select {
				case m := <-res.Messages:
					if err := writeEvent(a.out, m, tmpl); err != nil {
						return err
					}
				case err := <-res.Err:
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
		Annotations:           map[string]string{annotationAliases: "berth system events, berth events"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.since, "since", "", "Show all events created since timestamp")
	fs.StringVar(&opts.until, "until", "", "Stream events until this timestamp")
	fs.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&opts.format, "format", "", inspectFormatHelp)
	return cmd
}
