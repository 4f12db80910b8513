package run

import (
	"context"
	"encoding/binary"
	"io"
	"sync"

	"github.com/berth-dev/berth/run/shim"
	"github.com/moby/moby/api/types/events"
)

// attachHub fans a container's output out to attached clients. Clients
// that attach before a start are moved onto that run when it begins, and
// the run's output stream from the shim is opened before the container
// runs, so they miss nothing; clients that attach during a run get its
// output from then on. Each client's stream ends with the run.
type attachHub struct {
	mu      sync.Mutex
	pending map[*attachSub]struct{} // waiting for the next run
	active  map[*attachSub]struct{} // attached to the current run
	run     bool                    // a run is under way
	client  shim.Client             // the current run's shim
	stream  bool                    // an output stream from the shim is open
}

type attachSub struct {
	stdout, stderr bool
	stdin          io.Reader
	frames         chan []byte   // stdcopy frames; closed when the run ends
	done           chan struct{} // closed when the client goes
	doneOnce       sync.Once
	endOnce        sync.Once
	stdinOnce      sync.Once
}

func (s *attachSub) end()   { s.endOnce.Do(func() { close(s.frames) }) }
func (s *attachSub) leave() { s.doneOnce.Do(func() { close(s.done) }) }

func newAttachHub() *attachHub {
	return &attachHub{pending: map[*attachSub]struct{}{}, active: map[*attachSub]struct{}{}}
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
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(sc, hdr[:]); err != nil {
			break
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		frame := make([]byte, 8+n)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(sc, frame[8:]); err != nil {
			break
		}
		h.mu.Lock()
		subs := make([]*attachSub, 0, len(h.active))
		for s := range h.active {
			if (hdr[0] == 1 && s.stdout) || (hdr[0] == 2 && s.stderr) {
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
		<-s.done
		sc.Close()
	}()
	io.Copy(sc, s.stdin)
	sc.CloseWrite()
}

// AttachOptions say which streams an attach carries.
type AttachOptions struct {
	Stdout, Stderr bool
	// Stdin, when the container has OpenStdin, is copied to the
	// container's stdin from the moment it runs; its EOF closes the
	// container's stdin if the container has StdinOnce.
	Stdin io.Reader
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
	sub := &attachSub{stdout: opts.Stdout, stderr: opts.Stderr, frames: make(chan []byte, 16), done: make(chan struct{})}
	if rec.Config.OpenStdin {
		sub.stdin = opts.Stdin
	}
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

// Stream writes the attached output to w until the run ends (nil), ctx
// ends, or w fails. Without a TTY the output is stdcopy frames (8-byte
// header: stream 1 or 2, three zero bytes, big-endian length).
func (a *Attachment) Stream(ctx context.Context, w io.Writer) error {
	for {
		select {
		case f, ok := <-a.sub.frames:
			if !ok {
				return nil
			}
			if _, err := w.Write(f); err != nil {
				return err
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
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
