package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Default API versions: 1.41 is what the wire checklist was captured at
// (raising it changes hijack content types, exec ConsoleSize, stop signal…);
// 1.24 is dockerd's minimum.
const (
	DefaultMaxAPIVersion = "1.41"
	DefaultMinAPIVersion = "1.24"
	// DefaultEventsBuffer is how many past events /events?since= can replay.
	DefaultEventsBuffer = 1024
)

// Options configure a Server. The zero value works: versions default to
// DefaultMaxAPIVersion/DefaultMinAPIVersion and the logger to a discarding
// one.
type Options struct {
	// MaxAPIVersion is the highest (and default) API version served, sent
	// as Api-Version. MinAPIVersion is the lowest accepted in a /v{N} prefix.
	MaxAPIVersion string
	MinAPIVersion string
	// Version is the daemon version ("Server Version" in docker info).
	Version string
	// GitCommit and BuildTime are reported by /version.
	GitCommit string
	BuildTime string
	// PlatformName is /version's Platform.Name (dockerd leaves it "").
	PlatformName string
	// Debug logs every request at debug level and reports NFd and
	// NGoroutines in /info.
	Debug bool
	// CORSHeader, when set, is sent as Access-Control-Allow-Origin together
	// with the allowed headers and methods (dockerd's --api-cors-header).
	CORSHeader string
	// Logger receives access logs (Debug) and handler errors.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxAPIVersion == "" {
		o.MaxAPIVersion = DefaultMaxAPIVersion
	}
	if o.MinAPIVersion == "" {
		o.MinAPIVersion = DefaultMinAPIVersion
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Backends are what the server answers from. Each is a small interface
// defined next to the handlers that use it; nil optional backends give
// empty answers.
type Backends struct {
	// System provides the daemon facts of /info and /version. When nil,
	// /info and /version carry host facts only.
	System SystemInfo
	// DiskUsage answers /system/df. Optional.
	DiskUsage DiskUsage
	// Images answers the image endpoints. Optional: without it they are
	// not routed.
	Images ImageStore
	// Containers and Volumes answer /containers and /volumes. Optional.
	Containers Containers
	Volumes    VolumeStore
	// Puller answers POST /images/create?fromImage=. Optional.
	Puller ImagePuller
	// Events is the daemon-wide event bus. Optional: New creates one with
	// DefaultEventsBuffer when nil; get it back with Server.Events.
	Events *Events
}

// Server is the Engine API server: an echo router behind one http.Server
// that can serve several listeners (unix, tcp, fd).
type Server struct {
	opts     Options
	log      *slog.Logger
	backends Backends
	events   *Events
	host     hostFacts
	echo     *echo.Echo
	http     *http.Server

	// baseCtx is every request's parent; cancelled when Shutdown gives up
	// waiting so long streams (events, logs -f) end.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	imagesJSON     responseCache
	containersJSON responseCache

	// Routed requests under way and ended, for Activity.
	inflight atomic.Int64
	ended    atomic.Uint64
	// imageImport answers POST /images/create?fromSrc= once offline
	// import is wired.
	imageImport echo.HandlerFunc

	mu            sync.Mutex
	hijacked      map[*hijackedConn]struct{}
	hijackChanged chan struct{} // closed and replaced whenever one ends
	forceClosed   bool          // Shutdown ran out of time: refuse new hijacks
	// Connections in the front door's loop (frontdoor.go).
	frontConns  map[net.Conn]struct{}
	frontClosed bool
	front       *frontResponses
}

// New builds a server with every route registered. Host facts (kernel, OS,
// CPUs, memory) are read here once, not per request.
func New(opts Options, backends Backends) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:          opts,
		log:           opts.Logger,
		backends:      backends,
		events:        backends.Events,
		host:          readHostFacts(opts.Logger),
		hijacked:      make(map[*hijackedConn]struct{}),
		hijackChanged: make(chan struct{}),
	}
	if s.events == nil {
		s.events = NewEvents(DefaultEventsBuffer)
	}
	if s.backends.System == nil {
		// Early wiring: answer with host facts only rather than crash.
		s.backends.System = noSystemInfo{}
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.errorHandler
	// Order: the access log sees the final status of everything, including
	// version errors and unknown routes; recovery sits inside it.
	e.Pre(s.activityMiddleware, s.accessLogMiddleware, s.recoverMiddleware, s.versionMiddleware)
	s.echo = e
	s.registerRoutes()

	fp := newFastPath(s, e)
	s.front = newFrontResponses(fp)
	s.frontConns = map[net.Conn]struct{}{}
	s.http = &http.Server{
		Handler: fp,
		// Headers must arrive promptly; bodies (build contexts, image
		// tars) and responses (streams) have no deadline.
		ReadHeaderTimeout: time.Minute,
		// Keep-alive connections a client forgot about do not pile up.
		IdleTimeout: 5 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// registerRoutes registers each route once, without the version prefix:
// versionMiddleware strips "/v{N}" before routing.
func (s *Server) registerRoutes() {
	e := s.echo
	// dockerd answers OPTIONS on any path with 200 (CORS preflight).
	e.OPTIONS("/*", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	s.registerSystemRoutes()
	s.registerImageRoutes()
	s.registerContainerRoutes()
	e.GET("/events", s.getEvents)
	// dockerd serves Go's profiler under /debug/pprof; berth does too,
	// but only while debug logging is on (checked per request, so a
	// SIGHUP turning debug on enables it).
	e.Any("/debug/pprof/*", func(c echo.Context) error {
		if !s.accessLogOn(c.Request()) {
			return echo.ErrNotFound
		}
		switch c.Param("*") {
		case "profile":
			pprof.Profile(c.Response(), c.Request())
		case "trace":
			pprof.Trace(c.Response(), c.Request())
		case "symbol":
			pprof.Symbol(c.Response(), c.Request())
		case "cmdline":
			pprof.Cmdline(c.Response(), c.Request())
		default:
			pprof.Index(c.Response(), c.Request())
		}
		return nil
	})
}

// Handler is the server's HTTP handler, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo gives access to the router so more routes can be registered before
// Serve. Paths are registered without the /v{N} prefix.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Events returns the daemon-wide event bus the server streams from.
func (s *Server) Events() *Events { return s.events }

// Serve serves HTTP on every listener until Shutdown. It returns nil after a
// clean shutdown, else the first listener error.
func (s *Server) Serve(ls []net.Listener) error {
	if len(ls) == 0 {
		return errors.New("serve: no listeners")
	}
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errs <- s.http.Serve(newFrontDoor(s, l)) }()
	}
	var first error
	for range ls {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
			// One listener failing takes the others down, so the caller
			// sees the failure instead of a half-served daemon.
			go s.http.Close()
		}
	}
	return first
}

// Shutdown stops accepting connections, lets in-flight requests, streams and
// hijacked connections finish until ctx ends, then closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeFront()
	err := s.http.Shutdown(ctx)
	if err == nil {
		err = s.waitHijacked(ctx)
	}
	if err != nil {
		// Out of patience: end streams and drop connections.
		s.mu.Lock()
		s.forceClosed = true
		s.mu.Unlock()
		s.cancelBase()
		_ = s.http.Close()
		s.closeHijacked()
	}
	s.cancelBase()
	return err
}

// waitHijacked waits until every hijacked connection is closed or ctx ends.
func (s *Server) waitHijacked(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, changed := len(s.hijacked), s.hijackChanged
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// trackHijack registers a connection about to be hijacked. It runs while
// the request is still active for http.Server, so Shutdown cannot slip
// between the two trackers.
func (s *Server) trackHijack(hc *hijackedConn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forceClosed {
		return errors.New("server is shutting down")
	}
	s.hijacked[hc] = struct{}{}
	return nil
}

func (s *Server) untrackHijack(hc *hijackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hijacked[hc]; ok {
		delete(s.hijacked, hc)
		close(s.hijackChanged)
		s.hijackChanged = make(chan struct{})
	}
}

func (s *Server) closeHijacked() {
	s.mu.Lock()
	conns := make([]*hijackedConn, 0, len(s.hijacked))
	for hc := range s.hijacked {
		conns = append(conns, hc)
	}
	s.mu.Unlock()
	for _, hc := range conns {
		_ = hc.Close()
	}
}
