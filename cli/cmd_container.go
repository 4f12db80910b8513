package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	mobyterm "github.com/moby/term"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newContainerCommand is the `berth container` group.
func newContainerCommand(a *app) *cobra.Command {
	cmd := newGroupCommand(a, "container", "Manage containers",
		newCreateCommand(a),
		newContainerInspectCommand(a),
		newKillCommand(a),
		newContainerListCommand(a),
		newLogsCommand(a),
		newContainerPruneCommand(a),
		newContainerRemoveCommand(a),
		newRenameCommand(a),
		newRestartCommand(a),
		newRunCommand(a),
		newStartCommand(a),
		newStopCommand(a),
		newWaitCommand(a),
	)
	cmd.AddCommand(execCommands(a)...)
	cmd.AddCommand(containerOpsCommands(a)...)
	cmd.AddCommand(archiveCommands(a)...)
	return cmd
}

// eachContainer runs op on every argument, prints the argument when op
// succeeds and collects the errors, which are printed one per line at the
// end (exit 1), as docker's stop/kill/rm/restart do.
func eachContainer(ctx context.Context, out io.Writer, names []string, op func(ctx context.Context, name string) error) error {
	var errs []error
	for _, name := range names {
		if err := op(ctx, name); err != nil {
			if err != errSkip {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintln(out, name)
	}
	return errors.Join(errs...)
}

// annotationMinAPI marks a flag that needs a newer Engine API than the
// CLI's minimum; the value is the API version, as in the docker CLI.
const annotationMinAPI = "version"

// checkFlagVersions refuses flags the daemon's API version does not
// support, with docker's message, one line per flag. It asks the daemon
// only when such a flag was given.
func checkFlagVersions(ctx context.Context, cmd *cobra.Command, a *app) error {
	var gated []*pflag.Flag
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed && len(f.Annotations[annotationMinAPI]) > 0 {
			gated = append(gated, f)
		}
	})
	if len(gated) == 0 {
		return nil
	}
	if _, err := a.client().Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return err
	}
	api := a.client().ClientVersion()
	var msgs []string
	for _, f := range gated {
		if need := f.Annotations[annotationMinAPI][0]; versions.LessThan(api, need) {
			msgs = append(msgs, fmt.Sprintf(`"--%s" requires API version %s, but the Docker daemon API version is %s`, f.Name, need, api))
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

// errSkip: the operation failed in a way that does not fail the command
// (rm -f of a container that does not exist); op reported it.
var errSkip = errors.New("skip")

type startOptions struct {
	attach     bool
	stdin      bool
	detachKeys string
}

// newStartCommand is `berth start` / `berth container start`.
func newStartCommand(a *app) *cobra.Command {
	var opts startOptions
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateDetachKeys(opts.detachKeys); err != nil {
				return err
			}
			if opts.attach || opts.stdin {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return startAttached(cmd.Context(), a, args[0], opts)
			}
			var failed []string
			for _, name := range args {
				if _, err := a.client().ContainerStart(cmd.Context(), name, client.ContainerStartOptions{}); err != nil {
					fmt.Fprintln(a.err, err)
					failed = append(failed, name)
					continue
				}
				fmt.Fprintln(a.out, name)
			}
			if len(failed) > 0 {
				return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
			}
			return nil
		},
		Annotations:           map[string]string{annotationAliases: "berth container start, berth start"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fs.BoolVarP(&opts.stdin, "interactive", "i", false, "Attach container's STDIN")
	fs.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startAttached is `start -a` / `start -i`: attach, wait, start, stream,
// and exit with the container's status.
func startAttached(ctx context.Context, a *app, name string, opts startOptions) error {
	info, err := a.client().ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	c := info.Container
	bg := context.WithoutCancel(ctx)
	var proxy *signalProxy
	if !c.Config.Tty {
		proxy = startSignalProxy(bg, a, c.ID)
		defer proxy.stop()
	}
	streamCtx, cancel := context.WithCancel(bg)
	defer cancel()
	cfg := *c.Config
	cfg.AttachStdin = opts.stdin && c.Config.OpenStdin
	cfg.AttachStdout, cfg.AttachStderr = true, true
	s, err := attachContainer(streamCtx, a, c.ID, &cfg, opts.detachKeys)
	if err != nil {
		return err
	}
	defer s.resp.Close()
	streamErr := make(chan error, 1)
	go func() { streamErr <- s.stream(streamCtx) }()
	autoRemove := c.HostConfig != nil && c.HostConfig.AutoRemove
	statusC := waitExitOrRemoved(bg, a, c.ID, autoRemove)
	if _, err := a.client().ContainerStart(streamCtx, c.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-streamErr
		if autoRemove {
			<-statusC
		}
		return err
	}
	if c.Config.Tty {
		if fd, ok := terminalFd(a.out); ok {
			go monitorTTYSize(streamCtx, a, c.ID, fd)
		}
	}
	select {
	case err := <-streamErr:
		if err != nil {
			var esc mobyterm.EscapeError
			if errors.As(err, &esc) {
				return nil
			}
			return err
		}
	case <-proxy.forced():
		return statusError{code: 1}
	}
	if status := <-statusC; status != 0 {
		return statusError{code: status}
	}
	return nil
}

type stopOptions struct {
	signal  string
	timeout int
}

// newStopCommand is `berth stop` / `berth container stop`.
func newStopCommand(a *app) *cobra.Command {
	var opts stopOptions
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := timeoutFlag(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				_, err := a.client().ContainerStop(ctx, name, client.ContainerStopOptions{Signal: opts.signal, Timeout: timeout})
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container stop, berth stop"},
		DisableFlagsInUseLine: true,
	}
	addStopFlags(cmd, &opts)
	return cmd
}

func addStopFlags(cmd *cobra.Command, opts *stopOptions) {
	fs := cmd.Flags()
	fs.StringVarP(&opts.signal, "signal", "s", "", "Signal to send to the container")
	fs.IntVarP(&opts.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fs.IntVar(&opts.timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = fs.MarkDeprecated("time", "use --timeout instead")
}

// timeoutFlag is -t/--time as the API wants it: nil when not given, so
// the container's own stop timeout applies.
func timeoutFlag(cmd *cobra.Command) (*int, error) {
	fs := cmd.Flags()
	if fs.Changed("time") && fs.Changed("timeout") {
		return nil, errors.New("conflicting options: cannot specify both --timeout and --time")
	}
	if !fs.Changed("time") && !fs.Changed("timeout") {
		return nil, nil
	}
	t, _ := fs.GetInt("timeout")
	return &t, nil
}

// newRestartCommand is `berth restart` / `berth container restart`.
func newRestartCommand(a *app) *cobra.Command {
	var opts stopOptions
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := timeoutFlag(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				_, err := a.client().ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: opts.signal, Timeout: timeout})
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container restart, berth restart"},
		DisableFlagsInUseLine: true,
	}
	addStopFlags(cmd, &opts)
	return cmd
}

// newKillCommand is `berth kill` / `berth container kill`.
func newKillCommand(a *app) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				_, err := a.client().ContainerKill(ctx, name, client.ContainerKillOptions{Signal: sig})
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container kill, berth kill"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

type rmOptions struct {
	volumes bool
	link    bool
	force   bool
}

// newRmCommand is `berth rm`; `berth container rm` adds the alias
// "remove".
func newRmCommand(a *app) *cobra.Command {
	var opts rmOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), a.out, args, func(ctx context.Context, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("container name cannot be empty")
				}
				_, err := a.client().ContainerRemove(ctx, name, client.ContainerRemoveOptions{
					RemoveVolumes: opts.volumes, RemoveLinks: opts.link, Force: opts.force,
				})
				if err != nil && opts.force && cerrdefs.IsNotFound(err) {
					// Reported, but not a failure.
					fmt.Fprintln(a.err, err)
					return errSkip
				}
				return err
			})
		},
		Annotations:           map[string]string{annotationAliases: "berth container rm, berth container remove, berth rm"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	fs.BoolVarP(&opts.link, "link", "l", false, "Remove the specified link")
	fs.BoolVarP(&opts.force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	return cmd
}

func newContainerRemoveCommand(a *app) *cobra.Command {
	cmd := newRmCommand(a)
	cmd.Aliases = []string{"remove"}
	return cmd
}

// newWaitCommand is `berth wait` / `berth container wait`.
func newWaitCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				res := a.client().ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintln(a.out, strconv.FormatInt(r.StatusCode, 10))
				case err := <-res.Error:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
		Annotations:           map[string]string{annotationAliases: "berth container wait, berth wait"},
		DisableFlagsInUseLine: true,
	}
}

// newRenameCommand is `berth rename` / `berth container rename`.
func newRenameCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			if _, err := a.client().ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				fmt.Fprintln(a.err, err)
				return fmt.Errorf("Error: failed to rename container named %s", oldName)
			}
			return nil
		},
		Annotations:           map[string]string{annotationAliases: "berth container rename, berth rename"},
		DisableFlagsInUseLine: true,
	}
}

// newContainerInspectCommand is `berth container inspect`.
func newContainerInspectCommand(a *app) *cobra.Command {
	var format string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return writeInspect(a.out, args, format, func(ref string) (any, []byte, error) {
				res, err := a.client().ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
				return res.Container, res.Raw, err
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}
