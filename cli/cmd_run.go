package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	mobyterm "github.com/moby/term"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

type runOptions struct {
	createOptions
	detach     bool
	sigProxy   bool
	detachKeys string
}

// newRunCommand is `berth run` / `berth container run`.
func newRunCommand(a *app) *cobra.Command {
	var opts runOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.image, copts.args = args[0], args[1:]
			if err := checkFlagVersions(cmd.Context(), cmd, a); err != nil {
				return err
			}
			if err := validatePullOpt(opts.pull); err != nil {
				return statusError{status: withHelp(err, "run").Error(), code: 125}
			}
			cfg, err := copts.parse(cmd.Flags())
			if err != nil {
				return statusError{status: withHelp(err, "run").Error(), code: 125}
			}
			return runContainer(cmd.Context(), a, &opts, copts, cfg)
		},
		Annotations:           map[string]string{annotationAliases: "berth container run, berth run"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	// Everything after the image is the container's command line.
	fs.SetInterspersed(false)
	fs.BoolVarP(&opts.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&opts.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	addCreateFlags(fs, &opts.createOptions, a.getenv, "running")
	copts = addContainerFlags(fs)
	return cmd
}

// runContainer is docker's run sequence: create (pulling a missing
// image), attach before start so no output is lost, wait (next-exit, or
// removed with --rm) before start so a fast exit is not missed, start,
// then stream until the container exits and return its status.
func runContainer(ctx context.Context, a *app, ro *runOptions, copts *containerOptions, cfg *containerConfig) error {
	config := cfg.Config
	if !ro.detach {
		if _, isTerm := terminalFd(a.in); config.Tty && config.AttachStdin && !isTerm {
			return errors.New("the input device is not a TTY")
		}
	} else {
		if copts.attach.Len() != 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr, config.StdinOnce = false, false, false, false
	}
	if err := validateDetachKeys(ro.detachKeys); err != nil {
		return err
	}

	id, err := createContainer(ctx, a, cfg, ro.createOptions)
	if err != nil {
		return toStatusError(err)
	}

	// From here on a signal is the container's business (forwarded, or
	// ignored with a TTY), so the streams outlive the command's context.
	bg := context.WithoutCancel(ctx)
	var proxy *signalProxy
	if ro.sigProxy && !config.Tty && !ro.detach {
		proxy = startSignalProxy(bg, a, id)
		defer proxy.stop()
	}
	streamCtx, cancelStream := context.WithCancel(bg)
	defer cancelStream()

	attach := config.AttachStdin || config.AttachStdout || config.AttachStderr
	var streamErr chan error
	if attach {
		s, err := attachContainer(streamCtx, a, id, config, ro.detachKeys)
		if err != nil {
			return err
		}
		defer s.resp.Close()
		streamErr = make(chan error, 1)
		go func() { streamErr <- s.stream(streamCtx) }()
	}

	statusCtx, cancelStatus := context.WithCancel(bg)
	defer cancelStatus()
	statusC := waitExitOrRemoved(statusCtx, a, id, copts.autoRemove)

	if !attach {
		fmt.Fprintln(a.out, id)
	}
	if _, err := a.client().ContainerStart(streamCtx, id, client.ContainerStartOptions{}); err != nil {
		if attach {
			cancelStream()
			<-streamErr
		}
		if copts.autoRemove {
			<-statusC
		}
		return toStatusError(err)
	}
	if !attach {
		return nil
	}
	if config.Tty {
		if fd, ok := terminalFd(a.out); ok {
			go monitorTTYSize(streamCtx, a, id, fd)
		}
	}

	select {
	case err := <-streamErr:
		if err != nil {
			var esc mobyterm.EscapeError
			if errors.As(err, &esc) {
				return nil // detached with the escape keys
			}
			return err
		}
		if status := <-statusC; status != 0 {
			return statusError{code: status}
		}
	case status := <-statusC:
		// The output may still be in flight: read it all, unless only
		// stdin was attached.
		if !config.AttachStdout && !config.AttachStderr {
			cancelStream()
		}
		<-streamErr
		if status != 0 {
			return statusError{code: status}
		}
	case <-proxy.forced():
		return statusError{code: 1}
	}
	return nil
}

// toStatusError maps a failed create or start to docker's exit status:
// 127 when the command was not found, 126 when it cannot be executed,
// 125 for any other failure.
func toStatusError(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, syscall.EACCES.Error()), strings.Contains(msg, syscall.EISDIR.Error()):
		code = 126
	}
	return statusError{status: withHelp(err, "run").Error(), code: code}
}

// waitExitOrRemoved starts a wait and returns a channel that yields the
// exit status (125 when the wait itself failed). The daemon answers the
// wait's headers at once, so this returns before the container runs.
func waitExitOrRemoved(ctx context.Context, a *app, id string, removed bool) <-chan int {
	cond := container.WaitConditionNextExit
	if removed {
		cond = container.WaitConditionRemoved
	}
	res := a.client().ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	statusC := make(chan int, 1)
	go func() {
		defer close(statusC)
		select {
		case <-ctx.Done():
		case r := <-res.Result:
			if r.Error != nil {
				logError(a.err, "Error waiting for container: "+r.Error.Message)
				statusC <- 125
				return
			}
			statusC <- int(r.StatusCode)
		case err := <-res.Error:
			if errors.Is(err, context.Canceled) {
				return
			}
			logError(a.err, "error waiting for container: "+err.Error())
			statusC <- 125
		}
	}()
	return statusC
}

// logError writes an error line the way the docker CLI's logger does.
func logError(w io.Writer, msg string) {
	fmt.Fprintf(w, "time=%q level=error msg=%q\n", time.Now().Format(time.RFC3339), msg)
}

// hijackStream moves bytes between the CLI's streams and an attach
// connection: output demultiplexed (stdcopy) unless the container has a
// TTY, stdin copied then half-closed so the daemon sees its end.
type hijackStream struct {
	resp    client.HijackedResponse
	in      io.Reader
	out     io.Writer
	err     io.Writer
	tty     bool
	restore func()
}

func attachContainer(ctx context.Context, a *app, id string, config *container.Config, detachKeys string) (*hijackStream, error) {
	res, err := a.client().ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream:     true,
		Stdin:      config.AttachStdin,
		Stdout:     config.AttachStdout,
		Stderr:     config.AttachStderr,
		DetachKeys: detachKeys,
	})
	if err != nil {
		return nil, err
	}
	s := &hijackStream{resp: res.HijackedResponse, tty: config.Tty, restore: func() {}}
	if config.AttachStdin {
		s.in = a.in
	}
	if config.AttachStdout {
		s.out = a.out
	}
	if config.AttachStderr {
		s.err = a.err
		if config.Tty {
			s.err = a.out
		}
	}
	if s.in != nil && s.tty {
		if err := s.rawInput(detachKeys); err != nil {
			res.Close()
			return nil, err
		}
	}
	return s, nil
}

// rawInput puts a terminal stdin in raw mode and watches it for the
// detach keys (ctrl-p ctrl-q by default).
func (s *hijackStream) rawInput(detachKeys string) error {
	if fd, ok := terminalFd(s.in); ok {
		state, err := term.MakeRaw(int(fd))
		if err != nil {
			return fmt.Errorf("unable to set IO streams as raw terminal: %w", err)
		}
		// Restored by whichever of output end, input end or return comes
		// first.
		s.restore = sync.OnceFunc(func() { _ = term.Restore(int(fd), state) })
	}
	keys := []byte{16, 17}
	if detachKeys != "" {
		k, err := mobyterm.ToBytes(detachKeys)
		if err != nil {
			s.restore()
			return err
		}
		keys = k
	}
	s.in = mobyterm.NewEscapeProxy(s.in, keys)
	return nil
}

func validateDetachKeys(keys string) error {
	if keys == "" {
		return nil
	}
	if _, err := mobyterm.ToBytes(keys); err != nil {
		return fmt.Errorf("invalid detach keys (%s): %w", keys, err)
	}
	return nil
}

// stream runs until the output ends (or, with nothing but stdin
// attached, until stdin ends), the escape keys are typed, or ctx ends.
func (s *hijackStream) stream(ctx context.Context) error {
	defer s.restore()
	var outputDone chan error
	if s.out != nil || s.err != nil {
		outputDone = make(chan error, 1)
		go func() {
			var err error
			if s.tty {
				_, err = io.Copy(orDiscard(s.out), s.resp.Reader)
				s.restore()
			} else {
				_, err = stdcopy.StdCopy(orDiscard(s.out), orDiscard(s.err), s.resp.Reader)
			}
			outputDone <- err
		}()
	}
	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if s.in != nil {
			_, err := io.Copy(s.resp.Conn, s.in)
			s.restore()
			var esc mobyterm.EscapeError
			if errors.As(err, &esc) {
				detached <- err
				return
			}
		}
		// The half-close tells the daemon stdin is over; the output keeps
		// coming until the container exits.
		_ = s.resp.CloseWrite()
		close(inputDone)
	}()
	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone != nil {
			select {
			case err := <-outputDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// resizeFunc sizes a remote terminal (a container's or an exec's).
type resizeFunc func(ctx context.Context, height, width uint) error

func containerResizer(a *app, id string) resizeFunc {
	return func(ctx context.Context, h, w uint) error {
		_, err := a.client().ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

func execResizer(a *app, id string) resizeFunc {
	return func(ctx context.Context, h, w uint) error {
		_, err := a.client().ExecResize(ctx, id, client.ExecResizeOptions{Height: h, Width: w})
		return err
	}
}

// monitorTTYSize sizes container id's TTY like the local terminal fd,
// now and on every SIGWINCH, until ctx ends.
func monitorTTYSize(ctx context.Context, a *app, id string, fd uintptr) {
	monitorResize(ctx, a, fd, containerResizer(a, id))
}

// monitorResize sizes a remote TTY like the local terminal, now and on
// every SIGWINCH, until ctx ends. A first resize that fails (the process
// may not be running yet) is retried a few times, as docker does.
func monitorResize(ctx context.Context, a *app, fd uintptr, resize resizeFunc) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	apply := func() error {
		w, h, err := term.GetSize(int(fd))
		if err != nil || w == 0 || h == 0 {
			return nil
		}
		return resize(ctx, uint(h), uint(w))
	}
	if err := apply(); err != nil {
		for retry := 0; retry < 10 && ctx.Err() == nil; retry++ {
			time.Sleep(time.Duration(retry+1) * 10 * time.Millisecond)
			if err = apply(); err == nil {
				break
			}
		}
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(a.err, "failed to resize tty, using default size")
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-winch:
			_ = apply()
		}
	}
}

// signalProxy forwards the signals berth receives to the container as
// `kill?signal=NAME`, as docker's --sig-proxy does. The third SIGINT or
// SIGTERM gives up waiting for the container.
type signalProxy struct {
	sigc  chan os.Signal
	done  chan struct{}
	force chan struct{}
}

func startSignalProxy(ctx context.Context, a *app, id string) *signalProxy {
	p := &signalProxy{sigc: make(chan os.Signal, 128), done: make(chan struct{}), force: make(chan struct{})}
	signal.Notify(p.sigc)
	go func() {
		terminations := 0
		for {
			var s os.Signal
			select {
			case s = <-p.sigc:
			case <-p.done:
				return
			}
			sig, ok := s.(syscall.Signal)
			if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGPIPE || sig == syscall.SIGURG {
				continue
			}
			if name := strings.TrimPrefix(unix.SignalName(sig), "SIG"); name != "" {
				if _, err := a.client().ContainerKill(ctx, id, client.ContainerKillOptions{Signal: name}); err != nil {
					a.log.Debug("forward signal", "signal", name, "err", err)
				}
			}
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				if terminations++; terminations == 3 {
					fmt.Fprint(a.err, "\ngot 3 SIGTERM/SIGINTs, forcefully exiting\n")
					close(p.force)
					return
				}
			}
		}
	}()
	return p
}

// forced is closed after the third termination signal; a nil proxy never
// forces.
func (p *signalProxy) forced() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.force
}

func (p *signalProxy) stop() {
	signal.Stop(p.sigc)
	close(p.done)
}
