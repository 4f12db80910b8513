package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// Build facts of the berth binary, shown by `berth version`, `berth -v`
// and `berth info`. They are set at link time, e.g.
//
//	go build -ldflags "-X github.com/berth-dev/berth/cli.buildVersion=0.1.0 \
//	  -X github.com/berth-dev/berth/cli.buildCommit=abc1234 \
//	  -X github.com/berth-dev/berth/cli.buildTime=2026-01-02T03:04:05Z" ./cmd/berth
var (
	buildVersion = "dev"
	buildCommit  = ""
	buildTime    = ""
)

// clientVersionInfo returns the build facts, filling the commit from the Go
// build information when the linker did not set it.
func clientVersionInfo() (version, commit, built string) {
	version, commit, built = buildVersion, buildCommit, buildTime
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.time" && built == "":
				built = s.Value
			}
		}
	}
	if len(commit) > 7 {
		commit = commit[:7]
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit, built
}

func userAgent() string {
	v, _, _ := clientVersionInfo()
	return "Berth-Client/" + v + " (" + runtime.GOOS + ")"
}

// statusError carries a message and an exit status, like the docker CLI's
// cli.StatusError: usage errors exit 125, template errors 64.
type statusError struct {
	status string
	code   int
}

func (e statusError) Error() string { return e.status }

// signalError is the cancellation cause when Main receives SIGINT or
// SIGTERM; the exit status is then 128+signal, as in a shell.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

// app is one berth invocation: its streams, the global options and, once
// those are parsed, the Engine API client every command uses.
type app struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string

	opts  clientOptions
	flags *pflag.FlagSet // the root command's flags, for Changed()
	// log is for commands' diagnostics on stderr, at the level of
	// -l/--log-level (debug with -D).
	log *slog.Logger
	api *client.Client
}

// initialize finishes global option handling: the log level, the daemon
// endpoint and the (not yet connected) API client. It runs before every
// command, after its arguments were validated.
func (a *app) initialize() error {
	level, err := parseLogLevel(a.opts.logLevel)
	if err != nil {
		return statusError{status: "Unable to parse logging level: " + a.opts.logLevel, code: 1}
	}
	if a.opts.debug {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(a.err, &slog.HandlerOptions{Level: level}))
	if a.api != nil {
		return nil
	}
	ep, err := a.opts.resolveEndpoint(a.flags, a.getenv)
	if err != nil {
		return fmt.Errorf("Failed to initialize: unable to resolve berth endpoint: %w", err)
	}
	api, err := newAPIClient(ep, userAgent(), a.getenv)
	if err != nil {
		return fmt.Errorf("Failed to initialize: %w", err)
	}
	a.api = api
	return nil
}

// client is the Engine API client; commands run after initialize.
func (a *app) client() *client.Client { return a.api }

func (a *app) close() {
	if a.api != nil {
		_ = a.api.Close()
	}
}

// parseLogLevel accepts logrus' level names, which the docker CLI takes.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "trace":
		return slog.LevelDebug - 4, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("not a valid log level: %q", s)
}

// missingSocketMessage is the client library's wording for a unix socket
// that does not exist; docker 28 reports it like a refused connection,
// and scripts look for that sentence.
var missingSocketMessage = regexp.MustCompile(`failed to connect to the docker API at (\S+); check if the path is correct and if the daemon is running: [^\n]*`)

// Run executes one berth command line (without the program name) with the
// given streams and returns the process exit status: 0 on success, 1 for
// daemon and most other errors, 125 for flag errors, 64 for bad templates,
// 128+n when ctx was cancelled by signal n (see Main). The environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, proxies…) is the process's.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, stdin, stdout, stderr, os.Getenv)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{in: stdin, out: stdout, err: stderr, getenv: getenv}
	defer a.close()
	root := newRootCommand(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)

	// A command that ran to its own status (a container's exit code after
	// a forwarded signal) keeps it; otherwise a signal means 128+n.
	var st statusError
	if errors.As(err, &st) && st.code != 0 && st.status == "" {
		return st.code
	}
	var sig signalError
	if errors.As(context.Cause(ctx), &sig) {
		return 128 + int(sig.sig)
	}
	if err == nil || errors.Is(err, errCancelled) {
		return 0
	}
	if msg := err.Error(); msg != "" {
		if client.IsErrConnectionFailed(err) {
			msg = missingSocketMessage.ReplaceAllString(msg, "Cannot connect to the Docker daemon at $1. Is the docker daemon running?")
		}
		fmt.Fprintln(stderr, msg)
	}
	if errors.As(err, &st) && st.code != 0 {
		return st.code
	}
	return 1
}

// Main runs berth as a program: os.Args[1:] as args, the process's stdio,
// and SIGINT/SIGTERM cancelling the command (a second signal is left to
// the default action, which ends the process).
func Main(args []string) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(signalError{sig: s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	defer signal.Stop(sigs)
	return Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}
