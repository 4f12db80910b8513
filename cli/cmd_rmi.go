package cli

import (
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type rmiOptions struct {
	force   bool
	noPrune bool
}

// newRmiCommand is `berth rmi` (and, renamed, `berth image rm`).
func newRmiCommand(a *app) *cobra.Command {
	var opts rmiOptions
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRmi(cmd, a, opts, args)
		},
		Annotations:           map[string]string{annotationAliases: "berth image rm, berth image remove, berth rmi"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.force, "force", "f", false, "Force removal of the image")
	fs.BoolVar(&opts.noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func newImageRemoveCommand(a *app) *cobra.Command {
	cmd := newRmiCommand(a)
	cmd.Use = "rm [OPTIONS] IMAGE [IMAGE...]"
	cmd.Aliases = []string{"rmi", "remove"}
	return cmd
}

// runRmi removes every image named, printing what each removal untagged
// and deleted, and carries on after a failure. With --force, images that
// do not exist are only reported on stderr (exit 0); any other failure
// fails the command.
func runRmi(cmd *cobra.Command, a *app, opts rmiOptions, images []string) error {
	options := client.ImageRemoveOptions{Force: opts.force, PruneChildren: !opts.noPrune}
	var errs []error
	fatal := false
	for _, img := range images {
		res, err := a.client().ImageRemove(cmd.Context(), img, options)
		if err != nil {
			if !cerrdefs.IsNotFound(err) {
				fatal = true
			}
			errs = append(errs, err)
			continue
		}
		for _, del := range res.Items {
			if del.Deleted != "" {
				fmt.Fprintln(a.out, "Deleted:", del.Deleted)
			} else {
				fmt.Fprintln(a.out, "Untagged:", del.Untagged)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		if !opts.force || fatal {
			return err
		}
		fmt.Fprintln(a.err, err)
	}
	return nil
}
