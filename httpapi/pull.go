package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/pull"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/events"
)

// ImagePuller is what POST /images/create?fromImage= needs.
type ImagePuller interface {
	Pull(ctx context.Context, ref string, o pull.Options, progress func(pull.Message)) (chain.Image, error)
}

// lazyStream starts the 200 JSON stream on its first line, so an error
// that comes before any progress (unknown image, bad credentials) can
// still be answered with its own status code, as dockerd does.
type lazyStream struct {
	c       echo.Context
	mu      sync.Mutex
	started bool
	enc     *json.Encoder
}

func (l *lazyStream) send(v any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.c.Response()
	if !l.started {
		l.started = true
		w.Header().Set(echo.HeaderContentType, "application/json")
		w.WriteHeader(http.StatusOK)
		l.enc = json.NewEncoder(w)
		l.enc.SetEscapeHTML(false)
	}
	l.enc.Encode(v)
	w.Flush()
}

// finish reports err on the stream if it started, or returns it for the
// error handler if it did not.
func (l *lazyStream) finish(err error) error {
	l.mu.Lock()
	started := l.started
	l.mu.Unlock()
	if err == nil && !started {
		return l.c.NoContent(http.StatusOK)
	}
	if err == nil || !started {
		return err
	}
	l.send(pull.ErrorMessage(err))
	return nil
}

func (s *Server) createImage(c echo.Context) error {
	if c.QueryParam("fromSrc") != "" {
		if s.imageImport == nil {
			return errdefs.ErrNotImplemented.WithMessage("import is not supported yet")
		}
		return s.imageImport(c)
	}
	from := c.QueryParam("fromImage")
	if from == "" {
		return errdefs.ErrInvalidArgument.WithMessage("fromImage or fromSrc is required")
	}
	ref := from
	allTags := false
	if tag := c.QueryParam("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref = from + "@" + tag
		} else {
			ref = from + ":" + tag
		}
	} else if n, err := reference.ParseNormalizedNamed(from); err == nil && reference.IsNameOnly(n) {
		allTags = true
	}
	auth, err := pull.DecodeAuthHeader(c.Request().Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	stream := &lazyStream{c: c}
	img, err := s.backends.Puller.Pull(c.Request().Context(), ref, pull.Options{
		Platform: c.QueryParam("platform"),
		Auth:     auth,
		AllTags:  allTags,
	}, func(m pull.Message) { stream.send(m) })
	if err == nil {
		name := ref
		if n, perr := reference.ParseNormalizedNamed(ref); perr == nil {
			name = reference.FamiliarString(reference.TagNameOnly(n))
		}
		s.events.Publish(events.Message{Type: events.ImageEventType, Action: events.ActionPull,
			Actor: events.Actor{ID: name, Attributes: withName(img.Config.Config.Labels, name)}})
	}
	return stream.finish(err)
}

func withName(labels map[string]string, name string) map[string]string {
	attrs := map[string]string{"name": name}
	for k, v := range labels {
		attrs[k] = v
	}
	return attrs
}
