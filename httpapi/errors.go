package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
)

// pageNotFoundMessage is the exact body text dockerd sends for an unknown
// route; the docker CLI shows it to users.
const pageNotFoundMessage = "page not found"

// errorResponse is the body of every error answer.
type errorResponse struct {
	Message string `json:"message"`
}

// StatusFromError maps an error from a pipeline package to the HTTP status
// the docker CLI expects. It is the only place that decides a status code
// from an error, so "not found" is 404 everywhere (the CLI's inspect chain
// and auto-pull depend on exactly that).
//
// The classes follow dockerd (api/server/httpstatus): the containerd errdefs
// sentinels and the moby-style marker interfaces both match, so an error
// wrapped with %w around errdefs.ErrNotFound, or one carrying a NotFound()
// method, answers 404.
func StatusFromError(err error) int {
	var he *echo.HTTPError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &he):
		return he.Code
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsInvalidArgument(err), errdefs.IsFailedPrecondition(err), errdefs.IsOutOfRange(err):
		// dockerd maps gRPC FailedPrecondition and OutOfRange to 400 too.
		return http.StatusBadRequest
	case errdefs.IsConflict(err), errdefs.IsAlreadyExists(err):
		return http.StatusConflict
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorMessage is the text put in {"message": ...}. echo's own errors
// (binding, router) carry their message separately from Error().
func errorMessage(err error) string {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Internal != nil {
			return he.Internal.Error()
		}
		if s, ok := he.Message.(string); ok {
			return s
		}
		return fmt.Sprint(he.Message)
	}
	return err.Error()
}

// errorHandler is echo's HTTPErrorHandler: every error any handler or
// middleware returns is answered here.
func (s *Server) errorHandler(err error, c echo.Context) {
	// A handler that hijacked the connection or already started a stream
	// cannot change its status any more; a stream reports failures in-band
	// (errorDetail), a hijacked one by closing.
	if isHijacked(c) || c.Response().Committed {
		if !errors.Is(err, context.Canceled) {
			s.log.Debug("error after response started", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		return
	}

	code, msg := errorAnswer(err)
	req := c.Request()
	// A cancelled context is a client that went away, not a fault.
	if code >= 500 && !errors.Is(err, context.Canceled) {
		s.log.Error("handler returned error", "method", req.Method, "path", req.URL.Path, "status", code, "err", err)
	} else {
		s.log.Debug("handler returned error", "method", req.Method, "path", req.URL.Path, "status", code, "err", err)
	}

	if code == http.StatusNotModified || req.Method == http.MethodHead {
		// 304 and HEAD answers carry no body.
		c.Response().WriteHeader(code)
		return
	}
	if werr := WriteJSON(c, code, errorResponse{Message: msg}); werr != nil {
		s.log.Debug("write error response", "err", werr)
	}
}

// errorAnswer is the status and message err is answered with.
func errorAnswer(err error) (int, string) {
	code := StatusFromError(err)
	switch {
	case code == http.StatusNotFound && isEchoRouteMiss(err),
		// dockerd's router answers a known path with an unknown method
		// like an unknown path.
		code == http.StatusMethodNotAllowed:
		return http.StatusNotFound, pageNotFoundMessage
	}
	return code, errorMessage(err)
}

// isEchoRouteMiss reports the router's own "no route" error.
func isEchoRouteMiss(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he == echo.ErrNotFound
}

// WriteJSON answers with one JSON document, Content-Type application/json,
// without HTML escaping (dockerd does not escape '<', '>' and '&' either,
// and image references or commands may contain them).
func WriteJSON(c echo.Context, code int, v any) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// encodeJSON encodes v as WriteJSON does, for answers kept in a cache.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeJSONBytes writes an answer WriteJSON encoded earlier.
func writeJSONBytes(c echo.Context, code int, body []byte) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/json")
	w.WriteHeader(code)
	_, err := w.Write(body)
	return err
}
