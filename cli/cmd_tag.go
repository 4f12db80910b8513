package cli

import (
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newTagCommand is `berth tag` / `berth image tag`.
func newTagCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTagArgs(args[0], args[1]); err != nil {
				return err
			}
			_, err := a.client().ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
		Annotations:           map[string]string{annotationAliases: "berth image tag, berth tag"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// checkTagArgs validates both references before any request, with docker's
// messages (the client library words them slightly differently).
func checkTagArgs(source, target string) error {
	if _, err := reference.ParseAnyReference(source); err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", source, err)
	}
	ref, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", target, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return errors.New("refusing to create a tag with a digest reference")
	}
	return nil
}
