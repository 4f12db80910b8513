package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type imagePruneOptions struct {
	force  bool
	all    bool
	filter *filterOpt
}

const (
	allImagesPruneWarning = `WARNING! This will remove all images without at least one container associated to them.
Are you sure you want to continue?`
	danglingPruneWarning = `WARNING! This will remove all dangling images.
Are you sure you want to continue?`
)

// newImagePruneCommand is `berth image prune`.
func newImagePruneCommand(a *app) *cobra.Command {
	opts := imagePruneOptions{filter: newFilterOpt()}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagePrune(cmd.Context(), a, opts)
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	fs.BoolVarP(&opts.all, "all", "a", false, "Remove all unused images, not just dangling ones")
	fs.Var(opts.filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func runImagePrune(ctx context.Context, a *app, opts imagePruneOptions) error {
	filters := opts.filter.value().Clone()
	filters.Add("dangling", strconv.FormatBool(!opts.all))
	warning := danglingPruneWarning
	if opts.all {
		warning = allImagesPruneWarning
	}
	if !opts.force {
		ok, err := confirm(ctx, a.in, a.out, warning)
		if err != nil {
			return err
		}
		if !ok {
			return errCancelled
		}
	}
	res, err := a.client().ImagePrune(ctx, client.ImagePruneOptions{Filters: filters})
	if err != nil {
		return err
	}
	var sb strings.Builder
	if len(res.Report.ImagesDeleted) > 0 {
		sb.WriteString("Deleted Images:\n")
		for _, st := range res.Report.ImagesDeleted {
			if st.Untagged != "" {
				sb.WriteString("untagged: " + st.Untagged + "\n")
			} else {
				sb.WriteString("deleted: " + st.Deleted + "\n")
			}
		}
		fmt.Fprintln(a.out, sb.String())
	}
	fmt.Fprintln(a.out, "Total reclaimed space:", units.HumanSize(float64(res.Report.SpaceReclaimed)))
	return nil
}

// errCancelled ends a command the user declined at a prompt: nothing more
// is printed and the exit status is 0, as with docker.
var errCancelled = errors.New("cancelled")

// errPromptTerminated: the prompt was interrupted (SIGINT/SIGTERM).
var errPromptTerminated = errors.New("prompt terminated")

// confirm asks message + " [y/N] " and reads one line; only "y" or "Y"
// agrees. Reading happens aside so that a signal (ctx) ends the wait.
func confirm(ctx context.Context, in io.Reader, out io.Writer, message string) (bool, error) {
	fmt.Fprint(out, message+" [y/N] ")
	answer := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(in)
		answer <- sc.Scan() && strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false, errPromptTerminated
	case ok := <-answer:
		return ok, nil
	}
}
