package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/container"
)

// ContainerArchiver answers the archive endpoints (docker cp) and
// /changes (docker diff).
type ContainerArchiver interface {
	StatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error)
	ExtractToDir(ctx context.Context, ref, path string, opts run.ExtractOptions, r io.Reader) error
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
}

// pathStatHeader carries a PathStat as base64 of its JSON.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// registerArchiveRoutes routes this file's endpoints when the containers
// backend has what they need.
func (s *Server) registerArchiveRoutes() {
	ar, ok := s.backends.Containers.(ContainerArchiver)
	if !ok {
		return
	}
	e := s.echo
	e.HEAD("/containers/:id/archive", func(c echo.Context) error { return s.headArchive(c, ar) })
	e.GET("/containers/:id/archive", func(c echo.Context) error { return s.getArchive(c, ar) })
	e.PUT("/containers/:id/archive", func(c echo.Context) error { return s.putArchive(c, ar) })
	e.GET("/containers/:id/changes", func(c echo.Context) error { return s.containerChanges(c, ar) })
}

// archivePathParam is the required ?path=, refused with dockerd's own
// (unspaced) wording when empty.
func archivePathParam(c echo.Context) (string, error) {
	p := c.QueryParam("path")
	if p == "" {
		return "", errdefs.ErrInvalidArgument.WithMessage("bad parameter: pathcannot be empty")
	}
	return p, nil
}

func setPathStat(h http.Header, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	h.Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) headArchive(c echo.Context, ar ContainerArchiver) error {
	p, err := archivePathParam(c)
	if err != nil {
		return err
	}
	st, err := ar.StatPath(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(c.Response().Header(), st); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) getArchive(c echo.Context, ar ContainerArchiver) error {
	p, err := archivePathParam(c)
	if err != nil {
		return err
	}
	rc, st, err := ar.ArchivePath(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	if err := setPathStat(h, st); err != nil {
		return err
	}
	h.Set(echo.HeaderContentType, "application/x-tar")
	c.Response().WriteHeader(http.StatusOK)
	// Once the status is sent a failure can only end the stream early;
	// the client sees a truncated tar.
	if _, err := io.Copy(c.Response(), rc); err != nil {
		s.log.Debug("archive stream ended early", "container", c.Param("id"), "path", p, "err", err)
	}
	return nil
}

func (s *Server) putArchive(c echo.Context, ar ContainerArchiver) error {
	p, err := archivePathParam(c)
	if err != nil {
		return err
	}
	opts := run.ExtractOptions{
		NoOverwriteDirNonDir: boolParam(c.QueryParam("noOverwriteDirNonDir")),
		CopyUIDGID:           boolParam(c.QueryParam("copyUIDGID")),
	}
	if err := ar.ExtractToDir(c.Request().Context(), c.Param("id"), p, opts, c.Request().Body); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) containerChanges(c echo.Context, ar ContainerArchiver) error {
	ch, err := ar.Changes(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return WriteJSON(c, http.StatusOK, ch)
}
