package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/run/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/term"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exec sessions follow dockerd: created by ExecCreate, started once by
// ExecStart, inspectable until a while after they end, kept in memory
// only (in the container's attach hub, so they go with the container).
// The process runs through the container's shim (shim.OpExec): berthd
// writes its runtime-spec Process to the bundle as exec-<id>.json, and
// the shim's connection carries its output, its stdin and, last, its exit.
// berthd reads that connection to the end whether or not a client is
// attached, so a detached exec's exit code is known too.

// execKeep is how long an ended exec stays inspectable.
const execKeep = 5 * time.Minute

// execProc is one exec session.
type execProc struct {
	id string
	c  *ctr

	// Fixed at create.
	entrypoint  string
	args        []string
	env         []string
	user        string
	workdir     string
	tty         bool
	privileged  bool
	openStdin   bool
	openStdout  bool
	openStderr  bool
	detachKeys  []byte // as given ("" → nil); the default applies when nil
	consoleSize *[2]uint

	mu       sync.Mutex
	begun    bool // a start was asked for
	pid      int
	exitCode *int
	endedAt  time.Time
	started  chan struct{} // closed when the start attempt is over
	client   *execClient   // the attached client, while it is
}

// execClient is the client of an attached exec start.
type execClient struct {
	out  io.Writer
	done chan struct{} // closed when the client's session ends
	once sync.Once
}

// runningLocked tells whether the exec runs: started and not yet ended.
// p.mu is held.
func (p *execProc) runningLocked() bool { return p.begun && p.exitCode == nil }

func (cl *execClient) end() { cl.once.Do(func() { close(cl.done) }) }

func noSuchExec(id string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("No such exec instance '%s' found in daemon", id))
}

// checkExecable is dockerd's getActiveContainer: an exec needs a running,
// unpaused container. name is how the error names it.
func checkExecable(rec *record, name string) error {
	if err := checkRunning(rec); err != nil {
		return err
	}
	if rec.State.Paused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is paused, unpause the container before exec", name))
	}
	return nil
}

// runSpec reads the OCI spec of the container's current run.
func (m *Manager) runSpec(id string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(m.bundleDir(id), bundleConfigName))
	if err != nil {
		if isNotExist(err) {
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", id))
		}
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	if s.Process == nil || s.Root == nil {
		return nil, fmt.Errorf("read container spec: it has no process or root")
	}
	return &s, nil
}

// ExecCreate sets up an exec in a running container (POST
// /containers/{id}/exec) and returns its ID. The environment is the
// container's (with TERM=xterm for a TTY) overridden by req.Env; the user
// and working directory default to the container's.
func (m *Manager) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return "", err
	}
	rec := c.view()
	if err := checkExecable(rec, ref); err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", invalid("No exec command specified")
	}
	var keys []byte // nil: the default
	if req.DetachKeys != "" {
		if keys, err = parseKeySequence(req.DetachKeys, "Invalid escape keys (%s) provided"); err != nil {
			return "", err
		}
	}
	if req.User != "" {
		// Looked up now for an early error, as dockerd does; again at
		// the start.
		spec, err := m.runSpec(rec.ID)
		if err != nil {
			return "", err
		}
		if _, err := resolveUser(spec.Root.Path, req.User, rec.HostConfig.GroupAdd); err != nil {
			return "", err
		}
	}
	env := replaceOrAppendEnv(baseEnv(rec.Config.Hostname, req.Tty, rec.Config.Env), req.Env)
	p := &execProc{
		id:          newID(),
		c:           c,
		entrypoint:  req.Cmd[0],
		args:        append([]string{}, req.Cmd[1:]...),
		env:         env,
		user:        req.User,
		workdir:     req.WorkingDir,
		tty:         req.Tty,
		privileged:  req.Privileged,
		openStdin:   req.AttachStdin,
		openStdout:  req.AttachStdout,
		openStderr:  req.AttachStderr,
		detachKeys:  keys,
		consoleSize: req.ConsoleSize,
		started:     make(chan struct{}),
	}
	if p.user == "" {
		p.user = rec.Config.User
	}
	if p.workdir == "" {
		p.workdir = rec.Config.WorkingDir
	}
	h := c.attach
	h.mu.Lock()
	h.sweepExecsLocked(time.Now())
	h.execs[p.id] = p
	h.mu.Unlock()
	m.emit(p.action(events.ActionExecCreate), rec, map[string]string{"execID": p.id})
	return p.id, nil
}

// action is dockerd's event action for an exec: "exec_create: sh -c ls".
func (p *execProc) action(a events.Action) events.Action {
	return events.Action(string(a) + ": " + p.entrypoint + " " + strings.Join(p.args, " "))
}

// sweepExecsLocked forgets execs that ended more than execKeep ago.
func (h *attachHub) sweepExecsLocked(now time.Time) {
	for id, p := range h.execs {
		p.mu.Lock()
		old := p.exitCode != nil && now.Sub(p.endedAt) > execKeep
		p.mu.Unlock()
		if old {
			delete(h.execs, id)
		}
	}
}

// findExec looks an exec up by its full ID in every container.
func (m *Manager) findExec(id string) (*execProc, error) {
	if id == "" {
		return nil, noSuchExec(id)
	}
	for _, c := range m.all() {
		c.attach.mu.Lock()
		p := c.attach.execs[id]
		c.attach.mu.Unlock()
		if p != nil {
			return p, nil
		}
	}
	return nil, noSuchExec(id)
}

// execIDs lists the execs of the container that have not ended
// (inspect's ExecIDs; nil when there are none).
func (c *ctr) execIDs() []string {
	var out []string
	c.attach.mu.Lock()
	defer c.attach.mu.Unlock()
	for id, p := range c.attach.execs {
		p.mu.Lock()
		if p.exitCode == nil {
			out = append(out, id)
		}
		p.mu.Unlock()
	}
	return out
}

// ExecStartOptions are the body of POST /exec/{id}/start.
type ExecStartOptions struct {
	// Detach starts the exec without a client: ExecStart returns once it
	// runs.
	Detach bool
	// ConsoleSize [height, width] overrides the one given at create.
	ConsoleSize *[2]uint
}

// ExecStreams connect an exec to its client.
type ExecStreams struct {
	// Stdin is copied to the exec's stdin when it was created with
	// AttachStdin. Its end closes the exec's stdin; with a TTY it ends
	// the client's session instead (dockerd's rule), and the detach keys
	// typed on it end the session too, the exec running on.
	Stdin io.Reader
	// Output gets what the exec writes (the streams it was created to
	// attach): stdcopy frames, or the raw bytes of its terminal.
	Output io.Writer
}

// ExecStart runs a created exec (POST /exec/{id}/start). What makes the
// start impossible (no such exec, already started, container not running)
// is returned before attach is called. Unless opts.Detach, attach is then
// called with whether the exec has a TTY, and returns the client's
// streams (the HTTP handler hijacks the connection there); an error
// after that (the runtime could not start the process) is returned too,
// and is the client's to show. An attached ExecStart returns when the
// output ends — the exit code is final by then — or the client's session
// ends (detach keys, the end of a TTY's stdin, a failed write); the exec
// runs on without its client.
func (m *Manager) ExecStart(ctx context.Context, id string, opts ExecStartOptions, attach func(tty bool) (ExecStreams, error)) (retErr error) {
	p, err := m.findExec(id)
	if err != nil {
		return err
	}
	rec := p.c.view()
	if err := checkExecable(rec, rec.ID); err != nil {
		return err
	}
	p.mu.Lock()
	switch {
	case p.exitCode != nil:
		p.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec command %s has already run", p.id))
	case p.begun:
		p.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec command %s is already running", p.id))
	}
	p.begun = true
	p.mu.Unlock()
	m.emit(p.action(events.ActionExecStart), rec, map[string]string{"execID": p.id})

	launched := false
	defer func() {
		if launched {
			return
		}
		// The process never ran: 126 unless the error says better, as
		// dockerd.
		code := 126
		if retErr != nil {
			code = execErrorCode(retErr.Error())
		}
		p.finish(code)
	}()

	var streams ExecStreams
	if !opts.Detach && attach != nil {
		if streams, err = attach(p.tty); err != nil {
			return err
		}
	}
	size := opts.ConsoleSize
	if size == nil {
		size = p.consoleSize
	}
	proc, err := m.execProcess(rec, p, size)
	if err != nil {
		return err
	}
	b, err := json.Marshal(proc)
	if err != nil {
		return fmt.Errorf("exec: encode process: %w", err)
	}
	bundle := m.bundleDir(rec.ID)
	procPath := filepath.Join(bundle, "exec-"+p.id+".json")
	if err := os.WriteFile(procPath, b, 0o600); err != nil {
		if isNotExist(err) {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
		}
		return fmt.Errorf("exec: %w", err)
	}
	withStdin := p.openStdin && streams.Stdin != nil
	openCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	sc, err := shim.Client{Bundle: bundle}.Open(openCtx, shim.Request{
		Op: shim.OpExec, ExecID: p.id, ExecProcess: procPath, Terminal: p.tty, Stdin: withStdin,
	})
	cancel()
	if err != nil {
		os.Remove(procPath)
		var se *shim.RemoteError
		switch {
		case errors.As(err, &se):
			return execError(se.Msg)
		case errors.Is(err, shim.ErrGone):
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
		}
		return fmt.Errorf("exec: %w", err)
	}
	launched = true
	var cl *execClient
	if streams.Output != nil || streams.Stdin != nil {
		cl = &execClient{out: streams.Output, done: make(chan struct{})}
	}
	p.mu.Lock()
	p.pid = sc.Response.Pid
	p.client = cl
	p.mu.Unlock()
	close(p.started)
	go m.pumpExec(p, sc, procPath)
	if withStdin {
		go m.execStdin(p, sc, cl, streams.Stdin)
	}
	if cl == nil {
		return nil
	}
	<-cl.done
	return nil
}

// execProcess is the exec's runtime-spec Process: the container's (its
// capabilities, rlimits, no-new-privileges, AppArmor and SELinux labels,
// OOM score) with the exec's command line, environment, working
// directory, terminal, and user; --privileged gives every capability.
func (m *Manager) execProcess(rec *record, p *execProc, size *[2]uint) (*specs.Process, error) {
	spec, err := m.runSpec(rec.ID)
	if err != nil {
		return nil, err
	}
	proc := spec.Process
	proc.Args = append([]string{p.entrypoint}, p.args...)
	proc.Env = p.env
	proc.Cwd = p.workdir
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	proc.Terminal = p.tty
	proc.ConsoleSize = nil
	if p.tty && size != nil && size[0] > 0 && size[1] > 0 {
		proc.ConsoleSize = &specs.Box{Height: size[0], Width: size[1]}
	}
	if p.user != "" {
		u, err := resolveUser(spec.Root.Path, p.user, rec.HostConfig.GroupAdd)
		if err != nil {
			return nil, err
		}
		proc.User = u
	}
	if p.privileged {
		caps := allCapabilities()
		proc.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Permitted: caps, Effective: caps}
	}
	return proc, nil
}

// execError words a runtime's failure to start an exec as dockerd does
// ("OCI runtime exec failed: ...: unknown"), as a bad-request error when
// the command cannot be run.
func execError(msg string) error {
	full := "OCI runtime exec failed: " + msg + ": unknown"
	if _, known := execFailure(msg); known {
		return errdefs.ErrInvalidArgument.WithMessage(full)
	}
	return errdefs.ErrUnknown.WithMessage(full)
}

// execErrorCode is the exit code of an exec that could not start:
// dockerd's setExitCodeFromError (126 unless the command was not found).
func execErrorCode(msg string) int {
	code, _ := execFailure(msg)
	return code
}

// execFailure classifies a start failure as dockerd does: known says the
// command itself could not be run (a bad request, not a daemon fault).
func execFailure(msg string) (code int, known bool) {
	msg = strings.ToLower(msg)
	switch {
	case strings.Contains(msg, syscall.EACCES.Error()), strings.Contains(msg, syscall.EISDIR.Error()):
		return 126, true
	case strings.Contains(msg, syscall.ENOTDIR.Error()),
		strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127, true
	}
	return 126, false
}

// finish records the exec's exit and ends its client's session, in that
// order: a client that sees its stream close reads the final exit code.
func (p *execProc) finish(code int) {
	p.mu.Lock()
	if p.exitCode != nil {
		p.mu.Unlock()
		return
	}
	p.exitCode = &code
	p.endedAt = time.Now()
	cl := p.client
	p.client = nil
	select {
	case <-p.started:
	default:
		close(p.started)
	}
	p.mu.Unlock()
	if cl != nil {
		cl.end()
	}
}

// detachClient ends the client's session, the exec running on.
func (p *execProc) detachClient(cl *execClient) {
	p.mu.Lock()
	if p.client == cl {
		p.client = nil
	}
	p.mu.Unlock()
	cl.end()
}

// pumpExec reads the exec's stream from the shim to its end: output to
// the client while there is one, then the exit.
func (m *Manager) pumpExec(p *execProc, sc *shim.Conn, procPath string) {
	defer sc.Close()
	code := 255 // the shim went without telling
	buf := make([]byte, 32<<10)
	for {
		frame, err := shim.ReadFrame(sc, buf)
		if err != nil {
			break
		}
		buf = frame
		if frame[0] == shim.ExitFrame {
			var e shim.Exit
			if err := json.Unmarshal(frame[8:], &e); err == nil {
				code = e.ExitCode
			}
			break
		}
		p.deliver(frame[0], frame)
	}
	os.Remove(procPath)
	p.finish(code)
	m.emit(events.ActionExecDie, p.c.view(), map[string]string{"execID": p.id, "exitCode": itoa(code)})
}

// deliver writes one output frame to the client, if one is attached and
// asked for that stream.
func (p *execProc) deliver(stream byte, frame []byte) {
	if (stream == 1 && !p.openStdout) || (stream == 2 && !p.openStderr) || (stream != 1 && stream != 2) {
		return
	}
	p.mu.Lock()
	cl := p.client
	p.mu.Unlock()
	if cl == nil || cl.out == nil {
		return
	}
	if p.tty {
		frame = frame[8:]
	}
	if _, err := cl.out.Write(frame); err != nil {
		// The client is gone; the exec runs on.
		p.detachClient(cl)
		return
	}
	if f, ok := cl.out.(interface{ Flush() }); ok {
		f.Flush()
	}
}

// execStdin copies the client's input to the exec.
func (m *Manager) execStdin(p *execProc, sc *shim.Conn, cl *execClient, in io.Reader) {
	if p.tty {
		keys := p.detachKeys
		if keys == nil {
			keys = defaultDetachKeys
		}
		in = term.NewEscapeProxy(in, keys)
	}
	_, err := io.Copy(sc, in)
	var esc term.EscapeError
	switch {
	case errors.As(err, &esc):
		m.emit(events.ActionExecDetach, p.c.view(), map[string]string{"execID": p.id})
		p.detachClient(cl)
	case p.tty:
		p.detachClient(cl)
	default:
		// The exec reads EOF; its output goes on.
		sc.CloseWrite()
	}
}

// ExecInspect describes an exec (GET /exec/{id}/json).
func (m *Manager) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	p, err := m.findExec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	priv := p.privileged
	resp := container.ExecInspectResponse{
		ID:      p.id,
		Running: p.runningLocked(),
		ProcessConfig: &container.ExecProcessConfig{
			Tty: p.tty, Entrypoint: p.entrypoint, Arguments: p.args, Privileged: &priv, User: p.user,
		},
		OpenStdin:   p.openStdin,
		OpenStdout:  p.openStdout,
		OpenStderr:  p.openStderr,
		CanRemove:   p.exitCode != nil,
		ContainerID: p.c.id,
		DetachKeys:  p.detachKeys,
		Pid:         p.pid,
	}
	if resp.DetachKeys == nil {
		resp.DetachKeys = []byte{}
	}
	if p.exitCode != nil {
		code := *p.exitCode
		resp.ExitCode = &code
	}
	return resp, nil
}

// ExecResize sets the size of an exec's terminal (POST
// /exec/{id}/resize). A resize that comes while the exec is starting
// waits for it (the CLI sends one right after its start), up to 10s.
func (m *Manager) ExecResize(ctx context.Context, id string, height, width uint) error {
	p, err := m.findExec(id)
	if err != nil {
		return err
	}
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		return errors.New("timeout waiting for exec session ready")
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	running, tty := p.runningLocked(), p.tty
	p.mu.Unlock()
	if !running || !tty {
		// Nothing to size (any more): as containerd, not an error.
		return nil
	}
	_, err = shim.Client{Bundle: m.bundleDir(p.c.id)}.Call(ctx, shim.Request{
		Op: shim.OpResize, ExecID: p.id, Height: clampSize(height), Width: clampSize(width),
	})
	if err != nil {
		p.mu.Lock()
		running = p.runningLocked()
		p.mu.Unlock()
		if !running {
			return nil
		}
		return fmt.Errorf("resize exec %s: %w", p.id, err)
	}
	return nil
}

// Resize sets the size of a running container's terminal (POST
// /containers/{id}/resize); a container without one has nothing to size.
func (m *Manager) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	rec := c.view()
	if !rec.State.running() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
	}
	if rec.Config.Tty {
		if err := m.resizeInit(ctx, rec.ID, height, width); err != nil {
			if !c.view().State.running() {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
			}
			return err
		}
	}
	m.emit(events.ActionResize, rec, map[string]string{"height": itoa(int(height)), "width": itoa(int(width))})
	return nil
}

func (m *Manager) resizeInit(ctx context.Context, id string, height, width uint) error {
	_, err := shim.Client{Bundle: m.bundleDir(id)}.Call(ctx, shim.Request{
		Op: shim.OpResize, Height: clampSize(height), Width: clampSize(width),
	})
	if err != nil {
		return fmt.Errorf("resize container %s: %w", id, err)
	}
	return nil
}

func clampSize(v uint) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}
