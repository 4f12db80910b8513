package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/berth-dev/berth/run/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/term"
)

// defaultDetachKeys is ctrl-p ctrl-q, dockerd's default escape sequence.
var defaultDetachKeys = []byte{16, 17}

// attachHub fans a container's output out to attached clients. Clients
// that attach before a start are moved onto that run when it begins, and
// the run's output stream from the shim is opened before the container
// runs, so they miss nothing; clients that attach during a run get its
// output from then on. Each client's stream ends with the run.
//
// The hub also keeps the container's exec sessions (exec.go): like
// dockerd's, they live in memory only, and go with the container.
type attachHub struct {
	mu      sync.Mutex
	pending map[*attachSub]struct{} // waiting for the next run
	active  map[*attachSub]struct{} // attached to the current run
	run     bool                    // a run is under way
	client  shim.Client             // the current run's shim
	stream  bool                    // an output stream from the shim is open
	execs   map[string]*execProc
}

type attachSub struct {
	stdout, stderr bool
	// tty: the container has a terminal. Its output is one raw stream
	// (the shim's stream-1 frames lose their header on the way out), and
	// its stdin is watched for the detach keys.
	tty        bool
	detachKeys []byte
	// closeStdin: the end of this client's stdin closes the container's
	// (StdinOnce without a TTY); otherwise it ends the attach, as dockerd
	// does.
	closeStdin bool
	onDetach   func()
	stdin      io.Reader
	frames     chan []byte   // stdcopy frames; closed when the run ends
	done       chan struct{} // closed when the client goes
	// halted is closed when the attach ends before the run does: the
	// detach keys were typed, or stdin ended without closing the
	// container's.
	halted    chan struct{}
	doneOnce  sync.Once
	endOnce   sync.Once
	stdinOnce sync.Once
	haltOnce  sync.Once
}

func (s *attachSub) end()   { s.endOnce.Do(func() { close(s.frames) }) }
func (s *attachSub) leave() { s.doneOnce.Do(func() { close(s.done) }) }
func (s *attachSub) halt()  { s.haltOnce.Do(func() { close(s.halted) }) }

func newAttachHub() *attachHub {
	return &attachHub{pending: map[*attachSub]struct{}{}, active: map[*attachSub]struct{}{}, execs: map[string]*execProc{}}
}

// connect begins a run: pending clients become active and, if there are
// any, the output stream is opened (before the container starts).
func (h *attachHub) connect(ctx context.Context, client shim.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.run, h.client, h.stream = true, client, false
	for s := range h.pending {
		h.active[s] = struct{}{}
		delete(h.pending, s)
	}
	if len(h.active) > 0 {
		h.openStreamLocked(ctx)
	}
}

func (h *attachHub) openStreamLocked(ctx context.Context) {
	sc, err := h.client.Open(ctx, shim.Request{Op: shim.OpAttach, Stdout: true, Stderr: true})
	if err != nil {
		// The run is already over (or its shim gone): nothing to read.
		for s := range h.active {
			s.end()
			delete(h.active, s)
		}
		return
	}
	h.stream = true
	go h.read(sc)
}

// read delivers the frames of one output stream until it ends.
func (h *attachHub) read(sc *shim.Conn) {
	defer sc.Close()
	for {
		// A new frame each time: it is handed to the clients' channels.
		frame, err := shim.ReadFrame(sc, nil)
		if err != nil {
			break
		}
		h.mu.Lock()
		subs := make([]*attachSub, 0, len(h.active))
		for s := range h.active {
			if (frame[0] == 1 && s.stdout) || (frame[0] == 2 && s.stderr) {
				subs = append(subs, s)
			}
		}
		h.mu.Unlock()
		for _, s := range subs {
			select {
			case s.frames <- frame:
			case <-s.done:
			}
		}
	}
	h.mu.Lock()
	h.stream = false
	for s := range h.active {
		s.end()
		delete(h.active, s)
	}
	h.mu.Unlock()
}

// resume marks a run found under way (after a berthd restart): clients
// that attach now read it through client.
func (h *attachHub) resume(client shim.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.run, h.client, h.stream = true, client, false
}

// ended marks the run over (it exited or never started): clients still
// active end, which they also do when the stream closes.
func (h *attachHub) ended() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.run = false
	if !h.stream {
		for s := range h.active {
			s.end()
			delete(h.active, s)
		}
	}
}

// startStdin opens the stdin connections of the clients that brought
// stdin, once the container runs.
func (h *attachHub) startStdin(ctx context.Context, client shim.Client) {
	h.mu.Lock()
	var subs []*attachSub
	for s := range h.active {
		if s.stdin != nil {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		go copyStdin(context.WithoutCancel(ctx), client, s)
	}
}

func copyStdin(ctx context.Context, client shim.Client, s *attachSub) {
	s.stdinOnce.Do(func() { copyStdinOnce(ctx, client, s) })
}

func copyStdinOnce(ctx context.Context, client shim.Client, s *attachSub) {
	sc, err := client.Open(ctx, shim.Request{Op: shim.OpStdin})
	if err != nil {
		return
	}
	defer sc.Close()
	go func() {
		select {
		case <-s.done:
		case <-s.halted:
		}
		sc.Close()
	}()
	in := s.stdin
	if s.tty {
		// As dockerd, only a terminal's input is watched for the
		// detach keys: elsewhere they are data.
		in = term.NewEscapeProxy(in, s.detachKeys)
	}
	_, err = io.Copy(sc, in)
	var esc term.EscapeError
	switch {
	case errors.As(err, &esc):
		// Detached: the client's stream closes, the container runs on
		// with its stdin open.
		if s.onDetach != nil {
			s.onDetach()
		}
		s.halt()
	case s.closeStdin:
		sc.CloseWrite()
	default:
		s.halt()
	}
}

// AttachOptions say which streams an attach carries.
type AttachOptions struct {
	Stdout, Stderr bool
	// Stdin, when the container has OpenStdin, is copied to the
	// container's stdin from the moment it runs. Its EOF closes the
	// container's stdin if the container has StdinOnce and no TTY, and
	// ends the attach otherwise (dockerd's rules).
	Stdin io.Reader
	// DetachKeys is the escape sequence ("ctrl-p,ctrl-q", the default
	// when empty) that ends the attach of a TTY container without
	// touching the container.
	DetachKeys string
}

// ParseDetachKeys checks a detach key sequence (docker's syntax:
// "ctrl-p,ctrl-q", "a,ctrl-@"); empty means the default.
func ParseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		return defaultDetachKeys, nil
	}
	return parseKeySequence(keys, "Invalid detach keys (%s) provided")
}

// parseKeySequence reads a non-empty key sequence; a bad one is a 400
// worded by format (dockerd words it differently for attach and exec).
func parseKeySequence(keys, format string) ([]byte, error) {
	b, err := term.ToBytes(keys)
	if err != nil || len(b) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, keys))
	}
	return b, nil
}

// Attachment is a registered attach: output of the container's current
// run, or of its next one if it is not running, is kept for it from the
// moment Attach returns.
type Attachment struct {
	hub *attachHub
	sub *attachSub
}

// Attach registers a client for the container's output. Call Stream to
// deliver it and Close when done. The registration happens before Attach
// returns, so a handler may answer its client (101) and only then start
// streaming, while the client starts the container, without losing output.
func (m *Manager) Attach(ctx context.Context, ref string, opts AttachOptions) (*Attachment, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	rec := c.view()
	keys, err := ParseDetachKeys(opts.DetachKeys)
	if err != nil {
		return nil, err
	}
	sub := &attachSub{
		stdout: opts.Stdout, stderr: opts.Stderr,
		tty: rec.Config.Tty, detachKeys: keys,
		closeStdin: rec.Config.StdinOnce && !rec.Config.Tty,
		frames:     make(chan []byte, 16), done: make(chan struct{}), halted: make(chan struct{}),
	}
	if rec.Config.OpenStdin {
		sub.stdin = opts.Stdin
	}
	sub.onDetach = func() { m.emit(events.ActionDetach, c.view(), nil) }
	h := c.attach
	h.mu.Lock()
	if h.run {
		h.active[sub] = struct{}{}
		if !h.stream {
			h.openStreamLocked(ctx)
		}
		if sub.stdin != nil && rec.State.running() {
			go copyStdin(context.WithoutCancel(ctx), h.client, sub)
		}
	} else {
		h.pending[sub] = struct{}{}
	}
	h.mu.Unlock()
	m.emit(events.ActionAttach, rec, nil)
	return &Attachment{hub: h, sub: sub}, nil
}

// Stream writes the attached output to w until the run ends (nil), the
// attach ends before it (detach keys, or the end of stdin: nil), ctx
// ends, or w fails. Without a TTY the output is stdcopy frames (8-byte
// header: stream 1 or 2, three zero bytes, big-endian length); with one
// it is the terminal's raw bytes.
func (a *Attachment) Stream(ctx context.Context, w io.Writer) error {
	for {
		select {
		case f, ok := <-a.sub.frames:
			if !ok {
				return nil
			}
			if a.sub.tty {
				f = f[8:]
			}
			if _, err := w.Write(f); err != nil {
				return err
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
		case <-a.sub.halted:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close detaches.
func (a *Attachment) Close() {
	a.sub.leave()
	a.hub.mu.Lock()
	delete(a.hub.pending, a.sub)
	delete(a.hub.active, a.sub)
	a.hub.mu.Unlock()
}
