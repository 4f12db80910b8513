package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// inspectTypes are the --type values, as listed in docker's messages.
var inspectTypes = []string{"config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume"}

// inspectKind is one object type and how to fetch it.
type inspectKind struct {
	name  string
	swarm bool // only a swarm manager has these
	get   inspectGetter
}

type inspectOptions struct {
	format     string
	objectType string
	size       bool
}

// newInspectCommand is `berth inspect`: any object by name or ID.
func newInspectCommand(a *app) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("type") && opts.objectType == "" {
				return fmt.Errorf(`type is empty: must be one of "%s"`, strings.Join(inspectTypes, `", "`))
			}
			if opts.objectType != "" && !slices.Contains(inspectTypes, opts.objectType) {
				return fmt.Errorf(`unknown type: %q: must be one of "%s"`, opts.objectType, strings.Join(inspectTypes, `", "`))
			}
			return writeInspect(a.out, args, opts.format, inspectAny(cmd.Context(), a, opts.objectType, opts.size))
		},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.StringVarP(&opts.format, "format", "f", "", inspectFormatHelp)
	fs.StringVar(&opts.objectType, "type", "", "Only inspect objects of the given type")
	fs.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

// newImageInspectCommand is `berth image inspect`.
func newImageInspectCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeInspect(a.out, args, format, inspectImage(cmd.Context(), a))
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func inspectImage(ctx context.Context, a *app) inspectGetter {
	return func(ref string) (any, []byte, error) {
		var raw bytes.Buffer
		res, err := a.client().ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		if err != nil {
			return nil, nil, err
		}
		return res.InspectResponse, raw.Bytes(), nil
	}
}

// inspectAny looks ref up as each type in turn, in docker's order. "Not
// found" (404) moves on to the next type; any other error ends the search,
// so a daemon that is down is not reported as a missing object. Swarm
// types are only tried when /info says this daemon manages a swarm.
func inspectAny(ctx context.Context, a *app, only string, size bool) inspectGetter {
	api := a.client()
	kinds := []inspectKind{
		{name: "container", get: func(ref string) (any, []byte, error) {
			res, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
			return res.Container, res.Raw, err
		}},
		{name: "image", get: inspectImage(ctx, a)},
		{name: "network", get: func(ref string) (any, []byte, error) {
			res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
			return res.Network, res.Raw, err
		}},
		{name: "volume", get: func(ref string) (any, []byte, error) {
			res, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
			return res.Volume, res.Raw, err
		}},
		{name: "service", swarm: true, get: func(ref string) (any, []byte, error) {
			res, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{InsertDefaults: true})
			return res.Service, res.Raw, err
		}},
		{name: "task", swarm: true, get: func(ref string) (any, []byte, error) {
			res, err := api.TaskInspect(ctx, ref, client.TaskInspectOptions{})
			return res.Task, res.Raw, err
		}},
		{name: "node", swarm: true, get: func(ref string) (any, []byte, error) {
			res, err := api.NodeInspect(ctx, ref, client.NodeInspectOptions{})
			return res.Node, res.Raw, err
		}},
		{name: "plugin", get: func(ref string) (any, []byte, error) {
			res, err := api.PluginInspect(ctx, ref, client.PluginInspectOptions{})
			return res.Plugin, res.Raw, err
		}},
		{name: "secret", swarm: true, get: func(ref string) (any, []byte, error) {
			res, err := api.SecretInspect(ctx, ref, client.SecretInspectOptions{})
			return res.Secret, res.Raw, err
		}},
		{name: "config", swarm: true, get: func(ref string) (any, []byte, error) {
			res, err := api.ConfigInspect(ctx, ref, client.ConfigInspectOptions{})
			return res.Config, res.Raw, err
		}},
	}
	swarmManager := func() bool {
		res, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			fmt.Fprintln(a.err, err)
			return false
		}
		return res.Info.Swarm.ControlAvailable
	}
	return func(ref string) (any, []byte, error) {
		var swarmKnown, isManager bool
		for _, k := range kinds {
			if only != "" && k.name != only {
				continue
			}
			if only == "" && k.swarm {
				if !swarmKnown {
					isManager, swarmKnown = swarmManager(), true
				}
				if !isManager {
					continue
				}
			}
			v, raw, err := k.get(ref)
			if err != nil {
				if only == "" && isSkippable(err) {
					continue
				}
				return v, raw, err
			}
			if size && k.name != "container" {
				fmt.Fprintln(a.err, "WARNING: --size ignored for", k.name)
			}
			return v, raw, nil
		}
		return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
	}
}

func isSkippable(err error) bool {
	return cerrdefs.IsNotFound(err) ||
		strings.Contains(err.Error(), "not supported") ||
		strings.Contains(err.Error(), "invalid reference format")
}
