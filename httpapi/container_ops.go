package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/container"
)

// ContainerOps is what pause, unpause, top, stats and update need from
// the containers backend.
type ContainerOps interface {
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error)
	// Stats calls send with each sample; it returns when the samples
	// asked for are sent, send fails, or ctx ends.
	Stats(ctx context.Context, ref string, opts run.StatsOptions, send func(*container.StatsResponse) error) error
	Update(ctx context.Context, ref string, cfg container.UpdateConfig) (container.UpdateResponse, error)
}

// registerContainerOpsRoutes routes pause, unpause, top, stats and update
// when the containers backend has them.
func (s *Server) registerContainerOpsRoutes() {
	ops, ok := s.backends.Containers.(ContainerOps)
	if !ok {
		return
	}
	e := s.echo
	e.POST("/containers/:id/pause", func(c echo.Context) error {
		return noContentOr304(c, ops.Pause(c.Request().Context(), c.Param("id")))
	})
	e.POST("/containers/:id/unpause", func(c echo.Context) error {
		return noContentOr304(c, ops.Unpause(c.Request().Context(), c.Param("id")))
	})
	e.GET("/containers/:id/top", func(c echo.Context) error {
		top, err := ops.Top(c.Request().Context(), c.Param("id"), c.QueryParam("ps_args"))
		if err != nil {
			return err
		}
		return WriteJSON(c, http.StatusOK, top)
	})
	e.GET("/containers/:id/stats", func(c echo.Context) error { return containerStats(c, ops) })
	e.POST("/containers/:id/update", func(c echo.Context) error { return updateContainer(c, ops) })
}

// containerStats answers one sample (stream=false) or one per second
// (stream=true, the default) as JSON objects, one a line; headers go
// out with the first sample, so a missing container is still a 404.
func containerStats(c echo.Context, ops ContainerOps) error {
	q := c.QueryParams()
	stream := true
	if _, ok := q["stream"]; ok {
		stream = boolParam(strings.TrimSpace(q.Get("stream")))
	}
	opts := run.StatsOptions{Stream: stream, OneShot: boolParam(strings.TrimSpace(q.Get("one-shot")))}
	var js *JSONStream
	send := func(v *container.StatsResponse) error {
		if js == nil {
			var err error
			if js, err = WriteJSONStream(c); err != nil {
				return err
			}
		}
		return js.Encode(v)
	}
	err := ops.Stats(c.Request().Context(), c.Param("id"), opts, send)
	if err != nil && js != nil && c.Request().Context().Err() != nil {
		// The client went away: that ends a stream.
		return nil
	}
	return err
}

// updateContainer decodes container.UpdateConfig as dockerd does: an
// empty body is an empty update.
func updateContainer(c echo.Context, ops ContainerOps) error {
	var cfg container.UpdateConfig
	req := c.Request()
	if req.Body != nil && req.ContentLength != 0 {
		dec := json.NewDecoder(req.Body)
		if err := dec.Decode(&cfg); err != nil {
			if errors.Is(err, io.EOF) {
				return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: got EOF while reading request body")
			}
			return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
		}
	}
	resp, err := ops.Update(req.Context(), c.Param("id"), cfg)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, resp)
}
