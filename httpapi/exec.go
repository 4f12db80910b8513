package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/container"
)

// execBackend is what the exec endpoints need from the containers
// backend (run.Manager has it).
type execBackend interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	// ExecStart checks the exec can start, then (unless detached) calls
	// attach, where the handler hijacks the connection, then runs it and,
	// attached, streams until its output ends with the exit code final.
	ExecStart(ctx context.Context, id string, opts run.ExecStartOptions, attach func(tty bool) (run.ExecStreams, error)) error
	ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, id string, height, width uint) error
}

// containerResizer sizes a container's terminal.
type containerResizer interface {
	Resize(ctx context.Context, ref string, height, width uint) error
}

// registerExecRoutes routes exec and terminal resize when the containers
// backend has them.
func (s *Server) registerExecRoutes() {
	e := s.echo
	if _, ok := s.backends.Containers.(containerResizer); ok {
		e.POST("/containers/:id/resize", s.resizeContainer)
	}
	if _, ok := s.backends.Containers.(execBackend); !ok {
		return
	}
	e.POST("/containers/:id/exec", s.createExec)
	e.POST("/exec/:id/start", s.startExec)
	e.GET("/exec/:id/json", s.inspectExec)
	e.POST("/exec/:id/resize", s.resizeExec)
}

func (s *Server) execs() execBackend { return s.backends.Containers.(execBackend) }

func (s *Server) createExec(c echo.Context) error {
	var req container.ExecCreateRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	// Checked before the container, as dockerd does.
	if len(req.Cmd) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	id, err := s.execs().ExecCreate(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// startExec answers 200 for a detached start, and otherwise takes the
// connection over (101) and streams: raw bytes for a TTY, stdcopy frames
// without. An error after the hijack (the process could not start) is
// written into the stream as dockerd does; the exit code is then in the
// exec's inspect.
func (s *Server) startExec(c echo.Context) error {
	var req container.ExecStartRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	ctx := c.Request().Context()
	opts := run.ExecStartOptions{Detach: req.Detach, ConsoleSize: req.ConsoleSize}
	if req.Detach {
		if err := s.execs().ExecStart(ctx, c.Param("id"), opts, nil); err != nil {
			return err
		}
		return c.NoContent(http.StatusOK)
	}
	var conn net.Conn
	var tty bool
	attach := func(t bool) (run.ExecStreams, error) {
		cn, br, err := Hijack(c)
		if err != nil {
			return run.ExecStreams{}, err
		}
		conn, tty = cn, t
		return run.ExecStreams{Stdin: br, Output: cn}, nil
	}
	// Not the request's context: net/http cancels it when the client
	// half-closes, which the docker CLI does at once without stdin.
	err := s.execs().ExecStart(context.WithoutCancel(ctx), c.Param("id"), opts, attach)
	if conn == nil {
		return err
	}
	defer conn.Close()
	if err != nil {
		msg := []byte(err.Error() + "\r\n")
		if tty {
			conn.Write(msg)
		} else {
			stdout, _, _ := NewStdWriters(conn)
			stdout.Write(msg)
		}
	}
	return nil
}

func (s *Server) inspectExec(c echo.Context) error {
	info, err := s.execs().ExecInspect(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, info)
}

// sizeParams reads the h and w query parameters of a resize.
func sizeParams(c echo.Context) (height, width uint, err error) {
	h, err := strconv.ParseUint(c.QueryParam("h"), 10, 32)
	if err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	w, err := strconv.ParseUint(c.QueryParam("w"), 10, 32)
	if err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return uint(h), uint(w), nil
}

func (s *Server) resizeExec(c echo.Context) error {
	h, w, err := sizeParams(c)
	if err != nil {
		return err
	}
	if err := s.execs().ExecResize(c.Request().Context(), c.Param("id"), h, w); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
