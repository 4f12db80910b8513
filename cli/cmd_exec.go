package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/opts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// execCommands are this file's verbs, added both at the top level and under
// "berth container".
func execCommands(a *app) []*cobra.Command {
	return []*cobra.Command{newExecCommand(a), newAttachCommand(a)}
}

type execOptions struct {
	detach      bool
	detachKeys  string
	env         opts.ListOpts
	envFile     opts.ListOpts
	interactive bool
	privileged  bool
	tty         bool
	user        string
	workdir     string
}

// newExecCommand is `berth exec` / `berth container exec`.
func newExecCommand(a *app) *cobra.Command {
	o := execOptions{env: opts.NewListOpts(opts.ValidateEnv), envFile: opts.NewListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), a, args[0], args[1:], &o)
		},
		Annotations:           map[string]string{annotationAliases: "berth container exec, berth exec"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	// Everything after the container is the command line.
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.StringVarP(&o.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// runExec is docker's exec sequence: inspect (so "No such container"
// comes first), create, then either a detached start or a hijacked one
// streamed until the process ends, and the exec's exit code from its
// inspect.
func runExec(ctx context.Context, a *app, name string, command []string, o *execOptions) error {
	env, err := opts.ReadKVEnvStrings(o.envFile.GetSlice(), o.env.GetSlice())
	if err != nil {
		return err
	}
	if err := validateDetachKeys(o.detachKeys); err != nil {
		return err
	}
	api := a.client()
	if _, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
		return err
	}
	if _, isTerm := terminalFd(a.in); !o.detach && o.interactive && o.tty && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	create := client.ExecCreateOptions{
		User:         o.user,
		Privileged:   o.privileged,
		TTY:          o.tty,
		AttachStdin:  !o.detach && o.interactive,
		AttachStdout: !o.detach,
		AttachStderr: !o.detach,
		DetachKeys:   o.detachKeys,
		Env:          env,
		WorkingDir:   o.workdir,
		Cmd:          command,
	}
	var size client.ConsoleSize
	if o.tty {
		// The process starts at the local terminal's size; SIGWINCH
		// follows it after.
		h, w := ttySize(a.out)
		size = client.ConsoleSize{Height: h, Width: w}
		create.ConsoleSize = size
	}
	res, err := api.ExecCreate(ctx, name, create)
	if err != nil {
		return err
	}
	if res.ID == "" {
		return errors.New("exec ID empty")
	}
	if o.detach {
		_, err := api.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: o.tty, ConsoleSize: size})
		return err
	}

	// The streams outlive the command's context: a signal with a TTY is a
	// byte for the process, and without one the exec ends by itself.
	bg := context.WithoutCancel(ctx)
	att, err := api.ExecAttach(bg, res.ID, client.ExecAttachOptions{TTY: o.tty, ConsoleSize: size})
	if err != nil {
		return err
	}
	s := &hijackStream{resp: att.HijackedResponse, tty: o.tty, restore: func() {}, out: a.out, err: a.err}
	if o.tty {
		s.err = a.out
	}
	if create.AttachStdin {
		s.in = a.in
		if o.tty {
			if err := s.rawInput(o.detachKeys); err != nil {
				att.Close()
				return err
			}
		}
	}
	defer s.resp.Close()
	streamCtx, cancel := context.WithCancel(bg)
	defer cancel()
	if _, isTerm := terminalFd(a.in); o.tty && isTerm {
		if fd, ok := terminalFd(a.out); ok {
			go monitorResize(streamCtx, a, fd, execResizer(a, res.ID))
		}
	}
	if err := s.stream(streamCtx); err != nil {
		return err
	}
	return execExitStatus(bg, a, res.ID)
}

// execExitStatus turns an exec's exit code into the command's.
func execExitStatus(ctx context.Context, a *app, id string) error {
	ins, err := a.client().ExecInspect(ctx, id, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return statusError{code: -1}
		}
		return err
	}
	if ins.ExitCode != 0 {
		return statusError{code: ins.ExitCode}
	}
	return nil
}

type attachOptions struct {
	noStdin    bool
	sigProxy   bool
	detachKeys string
}

// newAttachCommand is `berth attach` / `berth container attach`.
func newAttachCommand(a *app) *cobra.Command {
	var o attachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttach(cmd.Context(), a, args[0], &o)
		},
		Annotations:           map[string]string{annotationAliases: "berth container attach, berth attach"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.noStdin, "no-stdin", false, "Do not attach STDIN")
	fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// attachableState is docker's check before and after an attach.
func attachableState(ctx context.Context, a *app, name string) (container.InspectResponse, error) {
	info, err := a.client().ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, err
	}
	c := info.Container
	switch {
	case c.State == nil || c.Config == nil:
		return c, fmt.Errorf("container %s has no state", name)
	case !c.State.Running:
		return c, errors.New("You cannot attach to a stopped container, start it first")
	case c.State.Paused:
		return c, errors.New("You cannot attach to a paused container, unpause it first")
	case c.State.Restarting:
		return c, errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return c, nil
}

// runAttach is docker's attach: wait (registered first, so the exit is
// not missed), check the state, attach, size the TTY, stream, and exit
// with the container's status. The detach keys end it with the
// runtime's "read escape sequence", as docker does.
func runAttach(ctx context.Context, a *app, name string, o *attachOptions) error {
	if err := validateDetachKeys(o.detachKeys); err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	waitCtx, cancelWait := context.WithCancel(bg)
	defer cancelWait()
	wait := a.client().ContainerWait(waitCtx, name, client.ContainerWaitOptions{})
	c, err := attachableState(ctx, a, name)
	if err != nil {
		return err
	}
	if _, isTerm := terminalFd(a.in); !o.noStdin && c.Config.Tty && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	// The container is named as the user named it, as docker does.
	if o.sigProxy && !c.Config.Tty {
		proxy := startSignalProxy(bg, a, name)
		defer proxy.stop()
	}
	cfg := *c.Config
	cfg.AttachStdin = !o.noStdin && c.Config.OpenStdin
	cfg.AttachStdout, cfg.AttachStderr = true, true
	streamCtx, cancel := context.WithCancel(bg)
	defer cancel()
	s, err := attachContainer(streamCtx, a, name, &cfg, o.detachKeys)
	if err != nil {
		return err
	}
	defer s.resp.Close()
	// The container may have stopped between the check and the attach.
	if _, err := attachableState(ctx, a, name); err != nil {
		s.restore()
		return err
	}
	if c.Config.Tty {
		if fd, ok := terminalFd(a.out); ok {
			// A size one off first, so a shell redraws its prompt for
			// this client too (docker does the same).
			h, w := ttySize(a.out)
			if h > 0 && w > 0 {
				_, _ = a.client().ContainerResize(streamCtx, name, client.ContainerResizeOptions{Height: h + 1, Width: w + 1})
			}
			go monitorTTYSize(streamCtx, a, name, fd)
		}
	}
	if err := s.stream(streamCtx); err != nil {
		return err
	}
	select {
	case r := <-wait.Result:
		if r.Error != nil {
			return errors.New(r.Error.Message)
		}
		if r.StatusCode != 0 {
			return statusError{code: int(r.StatusCode)}
		}
	case err := <-wait.Error:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return nil
}
