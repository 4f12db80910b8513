package shim

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrGone is returned when a bundle's shim does not answer: it is not
// running (any more).
var ErrGone = errors.New("shim is not running")

// RemoteError is an error the shim answered, as opposed to failing to
// answer.
type RemoteError struct {
	Op  string
	Msg string
}

func (e *RemoteError) Error() string { return e.Msg }

// Client talks to the shim of one bundle.
type Client struct {
	Bundle string
}

func (c Client) dial(ctx context.Context) (*sockConn, error) {
	addr, release, err := socketAddr(filepath.Join(c.Bundle, SocketFile))
	if err != nil {
		return nil, err
	}
	defer release()
	conn, err := dialUnix(ctx, addr)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %w", ErrGone, err)
		}
		return nil, err
	}
	return conn, nil
}

// Conn is an open request: Response is the shim's answer line; Read
// continues with whatever the shim streams after it, Write sends to it.
type Conn struct {
	c        *sockConn
	r        *bufio.Reader
	Response Response
}

func (c *Conn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *Conn) Write(p []byte) (int, error) { return c.c.Write(p) }

// CloseWrite ends what is sent (the shim reads EOF), keeping the reading
// side open.
func (c *Conn) CloseWrite() error { return c.c.CloseWrite() }

// SetDeadline bounds reads and writes.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Close ends the request; it may be called while a Read waits.
func (c *Conn) Close() error { return c.c.Close() }

// Open sends req and reads the response line. A response carrying an
// error is returned as a *RemoteError (the connection closed).
func (c Client) Open(ctx context.Context, req Request) (*Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	sc := &Conn{c: conn, r: bufio.NewReader(conn)}
	line, err := sc.r.ReadBytes('\n')
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("shim %s: %w: connection closed", req.Op, ErrGone)
		}
		return nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	if err := json.Unmarshal(line, &sc.Response); err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim %s: bad response: %w", req.Op, err)
	}
	conn.SetDeadline(time.Time{})
	if sc.Response.Error != "" {
		conn.Close()
		return nil, &RemoteError{Op: req.Op, Msg: sc.Response.Error}
	}
	return sc, nil
}

// Call is Open for requests without a stream.
func (c Client) Call(ctx context.Context, req Request) (Response, error) {
	sc, err := c.Open(ctx, req)
	if err != nil {
		return Response{}, err
	}
	sc.Close()
	return sc.Response, nil
}

// WaitExit reads the second answer of an opened wait request: the exit.
func (c *Conn) WaitExit() (Exit, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Exit{}, fmt.Errorf("shim wait: %w: %w", ErrGone, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Exit{}, fmt.Errorf("shim wait: bad response: %w", err)
	}
	if resp.Exit == nil {
		return Exit{}, fmt.Errorf("shim wait: %s", resp.Error)
	}
	return *resp.Exit, nil
}

// ReadFrame reads one stdcopy frame (8-byte header, then the payload)
// from r and returns it whole: frame[0] is the stream, frame[8:] the
// payload. It is read into buf when buf is large enough, else into a new
// slice (pass nil for a frame the caller keeps).
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[4:]))
	if cap(buf) < 8+n {
		buf = make([]byte, 8+n)
	}
	frame := buf[:8+n]
	copy(frame, hdr[:])
	if _, err := io.ReadFull(r, frame[8:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// putFrameHeader fills the first 8 bytes of frame with a stdcopy header
// for stream and the payload after them.
func putFrameHeader(frame []byte, stream byte) {
	frame[0] = stream
	frame[1], frame[2], frame[3] = 0, 0, 0
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(frame)-8))
}
