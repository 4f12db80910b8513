package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// Containers is what the container endpoints need from package run.
type Containers interface {
	Create(ctx context.Context, req run.CreateRequest) (container.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *int) error
	Restart(ctx context.Context, ref string, timeout *int) error
	Kill(ctx context.Context, ref, signal string) error
	Wait(ctx context.Context, ref string, condition container.WaitCondition) (<-chan container.WaitResponse, error)
	Remove(ctx context.Context, ref string, opts run.RemoveOptions) error
	List(ctx context.Context, opts run.ListOptions) ([]container.Summary, error)
	// Generation changes whenever a container is created, removed or
	// changed; a List answer differs from one of the same generation only
	// in its Status texts.
	Generation() uint64
	Inspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error)
	Logs(ctx context.Context, ref string, opts run.LogsOptions) (io.ReadCloser, error)
	Attach(ctx context.Context, ref string, opts run.AttachOptions) (*run.Attachment, error)
	Prune(ctx context.Context, filters map[string][]string) (container.PruneReport, error)
	Rename(ctx context.Context, ref, newName string) error
}

// VolumeStore is what the /volumes endpoints need.
type VolumeStore interface {
	Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	Get(ctx context.Context, name string) (volume.Volume, error)
	List(ctx context.Context, filters map[string][]string) ([]volume.Volume, error)
	Remove(ctx context.Context, name string, force bool) error
	Prune(ctx context.Context, filters map[string][]string, all bool) (volume.PruneReport, error)
}

func (s *Server) registerContainerRoutes() {
	if s.backends.Containers == nil {
		return
	}
	e := s.echo
	e.POST("/containers/create", s.createContainer)
	e.GET("/containers/json", s.listContainers)
	e.POST("/containers/prune", s.pruneContainers)
	e.GET("/containers/:id/json", s.inspectContainer)
	e.POST("/containers/:id/start", s.startContainer)
	e.POST("/containers/:id/stop", s.stopContainer)
	e.POST("/containers/:id/restart", s.restartContainer)
	e.POST("/containers/:id/kill", s.killContainer)
	e.POST("/containers/:id/wait", s.waitContainer)
	e.POST("/containers/:id/rename", s.renameContainer)
	e.POST("/containers/:id/attach", s.attachContainer)
	e.GET("/containers/:id/logs", s.containerLogs)
	e.DELETE("/containers/:id", s.removeContainer)
	// Optional capabilities of the containers backend, each with its own
	// small interface and handlers in its own file.
	s.registerExecRoutes()
	s.registerContainerOpsRoutes()
	s.registerArchiveRoutes()
	if s.backends.Volumes != nil {
		e.POST("/volumes/create", s.createVolume)
		e.GET("/volumes", s.listVolumes)
		e.POST("/volumes/prune", s.pruneVolumes)
		e.GET("/volumes/:name", s.inspectVolume)
		e.DELETE("/volumes/:name", s.removeVolume)
	}
}

// createBody is POST /containers/create's body: the container config at
// the top level with the host and networking configs beside it.
type createBody struct {
	container.Config
	HostConfig       *container.HostConfig     `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
}

func (s *Server) createContainer(c echo.Context) error {
	var body createBody
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(&body); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
		}
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	cfg := body.Config
	resp, err := s.backends.Containers.Create(c.Request().Context(), run.CreateRequest{
		Name:             c.QueryParam("name"),
		Config:           &cfg,
		HostConfig:       body.HostConfig,
		NetworkingConfig: body.NetworkingConfig,
	})
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusCreated, resp)
}

func filtersMap(c echo.Context) (map[string][]string, error) {
	f, err := ParseFilters(c.QueryParam("filters"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, k := range f.Keys() {
		out[k] = f.Get(k)
	}
	return out, nil
}

func (s *Server) listContainers(c echo.Context) error {
	filters, err := filtersMap(c)
	if err != nil {
		return err
	}
	limit := 0
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid limit: " + l)
		}
	}
	size := boolParam(c.QueryParam("size"))
	// Read before listing: an answer stored under an older generation is
	// only ever missed, never served stale.
	gen := s.backends.Containers.Generation()
	list, err := s.backends.Containers.List(c.Request().Context(), run.ListOptions{
		All: boolParam(c.QueryParam("all")), Limit: limit, Size: size, Filters: filters,
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	// Sizes are measured on disk and filters may consult the image store:
	// only the plain listing is a function of the containers and the time.
	if size || len(filters) > 0 {
		return WriteJSON(c, http.StatusOK, list)
	}
	key, stamp := c.QueryString(), listStamp(list)
	if body, ok := s.containersJSON.get(gen, key, stamp); ok {
		return writeJSONBytes(c, http.StatusOK, body)
	}
	body, err := encodeJSON(list)
	if err != nil {
		return err
	}
	s.containersJSON.put(gen, key, stamp, body)
	return writeJSONBytes(c, http.StatusOK, body)
}

// listStamp is the time-dependent part of a container listing: its Status
// texts ("Up 3 seconds"), in order.
func listStamp(list []container.Summary) string {
	var b strings.Builder
	for i := range list {
		b.WriteString(list[i].Status)
		b.WriteByte(0)
	}
	return b.String()
}

func (s *Server) inspectContainer(c echo.Context) error {
	info, err := s.backends.Containers.Inspect(c.Request().Context(), c.Param("id"), boolParam(c.QueryParam("size")))
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, info)
}

// notModified answers 304 for a start or stop of a container already in
// that state, as dockerd does.
func noContentOr304(c echo.Context, err error) error {
	if errdefs.IsNotModified(err) {
		return c.NoContent(http.StatusNotModified)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) startContainer(c echo.Context) error {
	return noContentOr304(c, s.backends.Containers.Start(c.Request().Context(), c.Param("id")))
}

func timeoutParam(c echo.Context) (*int, error) {
	t := c.QueryParam("t")
	if t == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid value for t: " + t)
	}
	return &n, nil
}

func (s *Server) stopContainer(c echo.Context) error {
	t, err := timeoutParam(c)
	if err != nil {
		return err
	}
	return noContentOr304(c, s.backends.Containers.Stop(context.WithoutCancel(c.Request().Context()), c.Param("id"), t))
}

func (s *Server) restartContainer(c echo.Context) error {
	t, err := timeoutParam(c)
	if err != nil {
		return err
	}
	return noContentOr304(c, s.backends.Containers.Restart(context.WithoutCancel(c.Request().Context()), c.Param("id"), t))
}

func (s *Server) killContainer(c echo.Context) error {
	return noContentOr304(c, s.backends.Containers.Kill(c.Request().Context(), c.Param("id"), c.QueryParam("signal")))
}

func (s *Server) renameContainer(c echo.Context) error {
	return noContentOr304(c, s.backends.Containers.Rename(c.Request().Context(), c.Param("id"), c.QueryParam("name")))
}

func (s *Server) removeContainer(c echo.Context) error {
	err := s.backends.Containers.Remove(context.WithoutCancel(c.Request().Context()), c.Param("id"), run.RemoveOptions{
		Force: boolParam(c.QueryParam("force")), RemoveVolumes: boolParam(c.QueryParam("v")),
	})
	return noContentOr304(c, err)
}

// waitContainer flushes its headers at once: `docker run` calls wait
// before start and blocks on them.
func (s *Server) waitContainer(c echo.Context) error {
	cond := container.WaitCondition(c.QueryParam("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid condition: " + string(cond))
	}
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	ctx := c.Request().Context()
	ch, err := s.backends.Containers.Wait(ctx, c.Param("id"), cond)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/json")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil
		}
		type waitError struct {
			Message string `json:"Message"`
		}
		out := struct {
			Error      *waitError `json:"Error"`
			StatusCode int64      `json:"StatusCode"`
		}{StatusCode: resp.StatusCode}
		if resp.Error != nil && resp.Error.Message != "" {
			out.Error = &waitError{Message: resp.Error.Message}
		}
		enc := json.NewEncoder(w)
		return enc.Encode(out)
	case <-ctx.Done():
		return nil
	}
}

func (s *Server) containerLogs(c echo.Context) error {
	q := c.QueryParams()
	opts := run.LogsOptions{
		Stdout:     boolParam(q.Get("stdout")),
		Stderr:     boolParam(q.Get("stderr")),
		Follow:     boolParam(q.Get("follow")),
		Timestamps: boolParam(q.Get("timestamps")),
		Tail:       -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.ErrInvalidArgument.WithMessage("Bad parameters: you must choose at least one stream")
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tail: " + t)
		}
		opts.Tail = n
	}
	now := time.Now()
	for key, dst := range map[string]*time.Time{"since": &opts.Since, "until": &opts.Until} {
		if v := q.Get(key); v != "" && v != "0" {
			t, err := ParseEventTime(v, now)
			if err != nil {
				return errdefs.ErrInvalidArgument.WithMessage("invalid value for " + key + ": " + v)
			}
			*dst = t
		}
	}
	ctx := c.Request().Context()
	info, err := s.backends.Containers.Inspect(ctx, c.Param("id"), false)
	if err != nil {
		return err
	}
	rc, err := s.backends.Containers.Logs(ctx, c.Param("id"), opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := c.Response()
	if info.Config != nil && info.Config.Tty {
		w.Header().Set(echo.HeaderContentType, "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set(echo.HeaderContentType, "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	w.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			w.Flush()
		}
		if err != nil {
			return nil
		}
	}
}

func (s *Server) attachContainer(c echo.Context) error {
	q := c.QueryParams()
	ctx := c.Request().Context()
	id := c.Param("id")
	info, err := s.backends.Containers.Inspect(ctx, id, false)
	if err != nil {
		return err
	}
	if !boolParam(q.Get("stream")) && !boolParam(q.Get("logs")) {
		return errdefs.ErrInvalidArgument.WithMessage("Bad parameters: you must choose at least one stream")
	}
	// What makes the attach impossible is answered before the hijack, so
	// the client gets a status, not a stream with an error in it.
	detachKeys := q.Get("detachKeys")
	if _, err := run.ParseDetachKeys(detachKeys); err != nil {
		return err
	}
	if st := info.State; st != nil {
		switch {
		case st.Paused:
			return errdefs.ErrConflict.WithMessage("container " + id + " is paused, unpause the container before attach.")
		case st.Restarting:
			return errdefs.ErrConflict.WithMessage("container " + id + " is restarting, wait until the container is running.")
		}
	}
	conn, br, err := Hijack(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	opts := run.AttachOptions{Stdout: boolParam(q.Get("stdout")), Stderr: boolParam(q.Get("stderr")), DetachKeys: detachKeys}
	if boolParam(q.Get("stdin")) {
		opts.Stdin = br
	}
	// The attachment is registered before the client hears 101 back
	// in full, so `docker run` may start the container right after.
	att, err := s.backends.Containers.Attach(context.WithoutCancel(ctx), id, opts)
	if err != nil {
		conn.Write([]byte(err.Error()))
		return nil
	}
	defer att.Close()
	if boolParam(q.Get("logs")) && (opts.Stdout || opts.Stderr) {
		// What the container logged so far comes first (as dockerd does,
		// output written between the two may show twice).
		if rc, err := s.backends.Containers.Logs(ctx, id, run.LogsOptions{Stdout: opts.Stdout, Stderr: opts.Stderr, Tail: -1}); err == nil {
			_, err = io.Copy(conn, rc)
			rc.Close()
			if err != nil {
				return nil
			}
		}
	}
	if !boolParam(q.Get("stream")) {
		return nil
	}
	// Not the request's context: net/http cancels it when the client
	// half-closes, which the docker CLI does at once when it has no stdin.
	// The stream ends with the run, when the attach ends before it
	// (detach keys, end of stdin), or when writing to the client fails.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		// A client that goes away (not a half-close: reads end only on a
		// full close when there is no stdin to read) ends the stream.
		if opts.Stdin == nil {
			io.Copy(io.Discard, br)
		}
	}()
	att.Stream(streamCtx, conn)
	return nil
}

// resizeContainer sizes a running container's terminal (200, empty).
func (s *Server) resizeContainer(c echo.Context) error {
	h, w, err := sizeParams(c)
	if err != nil {
		return err
	}
	if err := s.backends.Containers.(containerResizer).Resize(c.Request().Context(), c.Param("id"), h, w); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) pruneContainers(c echo.Context) error {
	filters, err := filtersMap(c)
	if err != nil {
		return err
	}
	rep, err := s.backends.Containers.Prune(c.Request().Context(), filters)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, rep)
}

func (s *Server) createVolume(c echo.Context) error {
	var req volume.CreateRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	v, err := s.backends.Volumes.Create(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusCreated, v)
}

func (s *Server) listVolumes(c echo.Context) error {
	filters, err := filtersMap(c)
	if err != nil {
		return err
	}
	vols, err := s.backends.Volumes.List(c.Request().Context(), filters)
	if err != nil {
		return err
	}
	if vols == nil {
		vols = []volume.Volume{}
	}
	return WriteJSON(c, http.StatusOK, struct {
		Volumes  []volume.Volume `json:"Volumes"`
		Warnings []string        `json:"Warnings"`
	}{vols, nil})
}

func (s *Server) inspectVolume(c echo.Context) error {
	v, err := s.backends.Volumes.Get(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, v)
}

func (s *Server) removeVolume(c echo.Context) error {
	if err := s.backends.Volumes.Remove(c.Request().Context(), c.Param("name"), boolParam(c.QueryParam("force"))); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) pruneVolumes(c echo.Context) error {
	filters, err := filtersMap(c)
	if err != nil {
		return err
	}
	// Before API 1.42 prune removed every unused volume, named or not.
	all := versionLess(APIVersion(c.Request().Context()), "1.42")
	if v, ok := filters["all"]; ok {
		all = len(v) > 0 && boolParam(v[0])
		delete(filters, "all")
	}
	rep, err := s.backends.Volumes.Prune(c.Request().Context(), filters, all)
	if err != nil {
		return err
	}
	return WriteJSON(c, http.StatusOK, rep)
}
