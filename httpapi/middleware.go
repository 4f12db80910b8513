package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
)

// versionPrefix matches the optional "/v1.41" in front of every route, as
// dockerd's "/v{version:[0-9.]+}" route prefix does.
var versionPrefix = regexp.MustCompile(`^/v([0-9][0-9.]*)(/|$)`)

type apiVersionKey struct{}

// APIVersion returns the API version negotiated for the request that ctx
// belongs to: the one in the URL prefix, or the maximum the server speaks
// when the client sent none. Handlers use it to pick wire shapes.
func APIVersion(ctx context.Context) string {
	v, _ := ctx.Value(apiVersionKey{}).(string)
	return v
}

// compareVersions compares dotted API versions numerically ("1.9" < "1.41"),
// treating missing or non-numeric parts as 0, like moby's api/types/versions.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionLess reports a < b for API versions.
func versionLess(a, b string) bool { return compareVersions(a, b) < 0 }

// recoverMiddleware turns a handler panic into a 500 so one bad request
// cannot take the daemon down.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("handler panic", "method", c.Request().Method, "path", c.Request().URL.Path, "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("internal error: %v", r)
			}
		}()
		return next(c)
	}
}

// activityMiddleware counts routed requests for Activity. The front door's
// ping and cached image lists are not counted: they allocate next to
// nothing.
func (s *Server) activityMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.inflight.Add(1)
		defer func() {
			s.ended.Add(1)
			s.inflight.Add(-1)
		}()
		return next(c)
	}
}

// Activity reports how many routed requests are under way (streams and
// attached connections included) and how many have ended, so the daemon
// can tell when it has been idle since a burst of work.
func (s *Server) Activity() (inflight int64, ended uint64) {
	return s.inflight.Load(), s.ended.Load()
}

// accessLogMiddleware logs every request at debug level when the server
// runs with Debug or its logger is at debug level (a SIGHUP may change
// that), like dockerd's "Calling GET /v1.41/info".
func (s *Server) accessLogMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if !s.accessLogOn(req) {
			return next(c)
		}
		start := time.Now()
		// Captured before versionMiddleware rewrites the path.
		path := req.URL.RequestURI()
		err := next(c)
		status := c.Response().Status
		switch {
		case isHijacked(c):
			status = http.StatusSwitchingProtocols
		case err != nil && !c.Response().Committed:
			status, _ = errorAnswer(err)
		}
		s.log.Debug("api request", "method", req.Method, "uri", path, "status", status,
			"duration", time.Since(start), "remote", req.RemoteAddr)
		return err
	}
}

// versionMiddleware strips the "/v{N}" prefix so each route is registered
// once, negotiates the version against [min, max] and stores it in the
// request context. It also sets the headers dockerd puts on every answer.
func (s *Server) versionMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Server", "berth/"+s.opts.Version+" (linux)")
		h.Set("Api-Version", s.opts.MaxAPIVersion)
		h.Set("Ostype", "linux")
		h.Set("Docker-Experimental", "false")
		if s.opts.CORSHeader != "" {
			h.Set("Access-Control-Allow-Origin", s.opts.CORSHeader)
			h.Set("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth")
			h.Set("Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")
		}

		req := c.Request()
		version := s.opts.MaxAPIVersion
		if m := versionPrefix.FindStringSubmatch(req.URL.Path); m != nil {
			version = m[1]
			// In place: echo routes on the *http.Request it was handed,
			// not on c.Request().
			trim := len("/v") + len(m[1])
			u := req.URL
			raw := u.RawPath
			u.Path = u.Path[trim:]
			if u.Path == "" {
				u.Path = "/"
			}
			u.RawPath = ""
			if raw != "" && versionPrefix.MatchString(raw) {
				u.RawPath = raw[trim:]
			}
		}

		if versionLess(version, s.opts.MinAPIVersion) {
			return invalidArgument(fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version",
				version, s.opts.MinAPIVersion))
		}
		if versionLess(s.opts.MaxAPIVersion, version) {
			return invalidArgument(fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, s.opts.MaxAPIVersion))
		}

		ctx := context.WithValue(req.Context(), apiVersionKey{}, version)
		ctx = context.WithValue(ctx, serverKey{}, s)
		c.SetRequest(req.WithContext(ctx))
		return next(c)
	}
}

// invalidArgument is a 400 whose message is exactly msg (no ": invalid
// argument" suffix), for texts the docker CLI shows verbatim.
func invalidArgument(msg string) error {
	return errdefs.ErrInvalidArgument.WithMessage(msg)
}

func (s *Server) accessLogOn(r *http.Request) bool { return s.debugOn(r.Context()) }

// debugOn reports whether requests are logged (and pprof served).
func (s *Server) debugOn(ctx context.Context) bool {
	return s.opts.Debug || s.log.Enabled(ctx, slog.LevelDebug)
}
