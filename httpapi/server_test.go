package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// fakeSystem is a SystemInfo backend with fixed daemon facts.
type fakeSystem struct {
	info  DaemonInfo
	comps []system.ComponentVersion
	err   error
}

func (f *fakeSystem) DaemonInfo(context.Context) (DaemonInfo, error) { return f.info, f.err }

func (f *fakeSystem) Components(context.Context) ([]system.ComponentVersion, error) {
	return f.comps, f.err
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{
		info: DaemonInfo{
			ID:                "BRTH:TEST:0000:1111",
			Name:              "berth-test",
			Containers:        5,
			ContainersRunning: 2,
			ContainersPaused:  1,
			ContainersStopped: 2,
			Images:            7,
			DockerRootDir:     "/var/lib/berth-test",
			Driver:            "overlay2",
			DriverStatus:      [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
			Plugins: system.PluginsInfo{
				Volume:  []string{"local"},
				Network: []string{"bridge", "host", "none"},
				Log:     []string{"json-file"},
			},
			LoggingDriver:  "json-file",
			CgroupDriver:   "cgroupfs",
			CgroupVersion:  "1",
			Cgroup:         CgroupFeatures{MemoryLimit: true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true, OomKillDisable: true},
			IPv4Forwarding: true,
			Runtimes:       map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
			DefaultRuntime: "runc",
			InitBinary:     "",
			RuncCommit:     system.Commit{ID: "v1.5.2-0-gabcdef"},
			RegistryConfig: &registry.ServiceConfig{
				IndexConfigs: map[string]*registry.IndexInfo{
					"docker.io":      {Name: "docker.io", Secure: true, Official: true},
					"127.0.0.1:5000": {Name: "127.0.0.1:5000", Secure: false},
				},
				Mirrors: []string{"http://127.0.0.1:5001/"},
			},
			Labels:             []string{"env=test"},
			LiveRestoreEnabled: true,
			// A bare name: the server must send it as "name=apparmor".
			SecurityOptions: []string{"name=seccomp,profile=default", "apparmor"},
		},
		comps: []system.ComponentVersion{{Name: "runc", Version: "1.5.2", Details: map[string]string{"GitCommit": "v1.5.2-0-gabcdef"}}},
	}
}

// testServer is a Server serving on a unix socket in a temp dir.
type testServer struct {
	*Server
	sock   string
	client *http.Client
	done   chan error
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startUnix starts srv on a fresh unix socket and stops it at test end.
func startUnix(t *testing.T, opts Options, b Backends, register ...func(*Server)) *testServer {
	t.Helper()
	if b.System == nil {
		b.System = newFakeSystem()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Version == "" {
		opts.Version = "0.1.0-test"
	}
	s := New(opts, b)
	for _, r := range register {
		r(s)
	}
	sock := filepath.Join(t.TempDir(), "run", "berth.sock")
	ls, err := Listen(t.Context(), []string{"unix://" + sock}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, sock: sock, client: unixClient(sock), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return ts
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
}

func (ts *testServer) do(t *testing.T, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://api.moby.localhost"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, body
}

func wantHeader(t *testing.T, h http.Header, key, want string) {
	t.Helper()
	if got := h.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

func wantErrorBody(t *testing.T, resp *http.Response, body []byte, code int, msg string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, code, body)
	}
	wantHeader(t, resp.Header, "Content-Type", "application/json")
	var e struct{ Message string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Message != msg {
		t.Errorf("message = %q, want %q", e.Message, msg)
	}
}

func TestPingHeaders(t *testing.T) {
	ts := startUnix(t, Options{Version: "1.2.3"}, Backends{})
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		for _, path := range []string{"/_ping", "/v1.41/_ping", "/v1.24/_ping"} {
			resp, body := ts.do(t, method, path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
			}
			h := resp.Header
			wantHeader(t, h, "Api-Version", "1.41")
			wantHeader(t, h, "Ostype", "linux")
			wantHeader(t, h, "Docker-Experimental", "false")
			wantHeader(t, h, "Builder-Version", "1")
			wantHeader(t, h, "Swarm", "inactive")
			wantHeader(t, h, "Cache-Control", "no-cache, no-store, must-revalidate")
			wantHeader(t, h, "Pragma", "no-cache")
			wantHeader(t, h, "Server", "berth/1.2.3 (linux)")
			wantHeader(t, h, "Content-Type", "text/plain; charset=utf-8")
			want := "OK"
			if method == http.MethodHead {
				want = ""
				wantHeader(t, h, "Content-Length", "0")
			}
			if string(body) != want {
				t.Errorf("%s %s: body %q, want %q", method, path, body, want)
			}
		}
	}
}

func TestVersionRouting(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{}, func(s *Server) {
		s.Echo().GET("/test/version", func(c echo.Context) error {
			return c.String(http.StatusOK, APIVersion(c.Request().Context()))
		})
		// Image references go unescaped in paths, slashes and colons included.
		s.Echo().GET("/test/images/*", func(c echo.Context) error {
			return c.String(http.StatusOK, c.Param("*"))
		})
	})

	for path, want := range map[string]string{
		"/test/version":       "1.41",
		"/v1.41/test/version": "1.41",
		"/v1.30/test/version": "1.30",
		"/v1.24/test/version": "1.24",
		"/v1.41/test/images/127.0.0.1:5000/busybox:latest/json": "127.0.0.1:5000/busybox:latest/json",
		"/test/images/v1.41/x": "v1.41/x",
	} {
		resp, body := ts.do(t, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}

	resp, body := ts.do(t, http.MethodGet, "/v1.99/version")
	wantErrorBody(t, resp, body, http.StatusBadRequest, "client version 1.99 is too new. Maximum supported API version is 1.41")
	resp, body = ts.do(t, http.MethodGet, "/v1.50/_ping")
	wantErrorBody(t, resp, body, http.StatusBadRequest, "client version 1.50 is too new. Maximum supported API version is 1.41")
	resp, body = ts.do(t, http.MethodGet, "/v1.12/version")
	wantErrorBody(t, resp, body, http.StatusBadRequest, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version")

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/nope"},
		{http.MethodGet, "/v1.41/nope"},
		{http.MethodGet, "/v1.41"},
		{http.MethodGet, "/vx/version"},
		{http.MethodPost, "/version"}, // known path, other method
		{http.MethodDelete, "/v1.41/info"},
	} {
		resp, body := ts.do(t, tc.method, tc.path)
		wantErrorBody(t, resp, body, http.StatusNotFound, "page not found")
	}
}

func TestCORS(t *testing.T) {
	ts := startUnix(t, Options{CORSHeader: "https://ui.example"}, Backends{})
	resp, _ := ts.do(t, http.MethodGet, "/v1.41/version")
	wantHeader(t, resp.Header, "Access-Control-Allow-Origin", "https://ui.example")
	wantHeader(t, resp.Header, "Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth")
	wantHeader(t, resp.Header, "Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")

	// Preflight on any path answers 200, as dockerd's OPTIONS catch-all.
	resp, _ = ts.do(t, http.MethodOptions, "/v1.41/containers/create")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("OPTIONS status %d", resp.StatusCode)
	}
	wantHeader(t, resp.Header, "Access-Control-Allow-Origin", "https://ui.example")

	plain := startUnix(t, Options{}, Backends{})
	resp, _ = plain.do(t, http.MethodGet, "/version")
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("CORS header without CORSHeader: %q", v)
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{fmt.Errorf("No such container: web: %w", errdefs.ErrNotFound), 404, "No such container: web: not found"},
		{errdefs.ErrNotFound.WithMessage("No such image: busybox:latest"), 404, "No such image: busybox:latest"},
		{errdefs.ErrConflict.WithMessage("Container abc is not running"), 409, "Container abc is not running"},
		{fmt.Errorf("name: %w", errdefs.ErrAlreadyExists), 409, "name: already exists"},
		{fmt.Errorf("bad: %w", errdefs.ErrInvalidArgument), 400, "bad: invalid argument"},
		{errdefs.ErrNotModified, 304, ""},
		{errdefs.ErrUnauthenticated.WithMessage("login failed"), 401, "login failed"},
		{errdefs.ErrPermissionDenied.WithMessage("denied"), 403, "denied"},
		{errdefs.ErrNotImplemented.WithMessage("not here"), 501, "not here"},
		{errdefs.ErrUnavailable.WithMessage("busy"), 503, "busy"},
		{errors.New("disk on fire"), 500, "disk on fire"},
		{fmt.Errorf("wrapped twice: %w", fmt.Errorf("inner: %w", errdefs.ErrNotFound)), 404, "wrapped twice: inner: not found"},
	}
	ts := startUnix(t, Options{}, Backends{}, func(s *Server) {
		s.Echo().GET("/test/err/:i", func(c echo.Context) error {
			var i int
			fmt.Sscan(c.Param("i"), &i)
			return cases[i].err
		})
	})
	for i, tc := range cases {
		if got := StatusFromError(tc.err); got != tc.code {
			t.Errorf("StatusFromError(%v) = %d, want %d", tc.err, got, tc.code)
		}
		resp, body := ts.do(t, http.MethodGet, fmt.Sprintf("/v1.41/test/err/%d", i))
		if tc.code == http.StatusNotModified {
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Errorf("304 case: %d %q", resp.StatusCode, body)
			}
			continue
		}
		wantErrorBody(t, resp, body, tc.code, tc.msg)
	}
}

func TestPanicIs500(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{}, func(s *Server) {
		s.Echo().GET("/test/panic", func(c echo.Context) error { panic("boom") })
	})
	resp, body := ts.do(t, http.MethodGet, "/test/panic")
	wantErrorBody(t, resp, body, 500, "internal error: boom")
	// The server survives.
	if resp, _ := ts.do(t, http.MethodGet, "/_ping"); resp.StatusCode != 200 {
		t.Fatalf("ping after panic: %d", resp.StatusCode)
	}
}

func TestDebugAccessLog(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startUnix(t, Options{Debug: true, Logger: log}, Backends{})
	ts.do(t, http.MethodGet, "/v1.41/version")
	ts.do(t, http.MethodGet, "/v1.41/nope")
	out := buf.String()
	for _, want := range []string{`uri=/v1.41/version status=200`, `uri=/v1.41/nope status=404`} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %q:\n%s", want, out)
		}
	}

	// Without Debug the logger's level decides (berthd flips it on SIGHUP).
	buf.Reset()
	infoLog := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	quiet := startUnix(t, Options{Logger: infoLog}, Backends{})
	quiet.do(t, http.MethodGet, "/v1.41/version")
	if strings.Contains(buf.String(), "api request") {
		t.Errorf("access log without Debug:\n%s", buf.String())
	}
}

func TestHijack(t *testing.T) {
	gotEOF := make(chan struct{}, 2)
	ts := startUnix(t, Options{}, Backends{}, func(s *Server) {
		s.Echo().POST("/test/hijack", func(c echo.Context) error {
			// Like exec start: decode a JSON body, leaving its trailing
			// newline unread.
			if c.Request().ContentLength > 0 {
				var opts struct{ Detach bool }
				if err := json.NewDecoder(c.Request().Body).Decode(&opts); err != nil {
					return err
				}
			}
			conn, br, err := Hijack(c)
			if err != nil {
				return err
			}
			defer conn.Close()
			// Echo stdin until the client half-closes, then keep writing:
			// a half-close is not a disconnect.
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			fmt.Fprintf(conn, "echo:%s", line)
			if _, err := io.Copy(io.Discard, br); err != nil {
				return err
			}
			gotEOF <- struct{}{}
			fmt.Fprint(conn, "after-eof\n")
			return conn.(interface{ CloseWrite() error }).CloseWrite()
		})
	})

	conn, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Request and the first stdin bytes in one write: the buffered reader
	// must hand those bytes to the handler.
	body := "{\"Detach\":false,\"Tty\":false}\n"
	fmt.Fprintf(conn, "POST /v1.41/test/hijack HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%shello\n", len(body), body)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if status != "HTTP/1.1 101 UPGRADED\r\n" {
		t.Fatalf("status line %q", status)
	}
	hdr := map[string]string{}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimRight(l, "\r\n"), ": ")
		hdr[k] = v
	}
	for k, v := range map[string]string{
		"Content-Type": "application/vnd.docker.raw-stream", "Connection": "Upgrade", "Upgrade": "tcp", "Api-Version": "1.41",
	} {
		if hdr[k] != v {
			t.Errorf("hijack header %s = %q, want %q (all: %v)", k, hdr[k], v, hdr)
		}
	}
	if l, _ := br.ReadString('\n'); l != "echo:hello\n" {
		t.Fatalf("echoed %q", l)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotEOF:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not see the half-close")
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "after-eof\n" {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}

	// Without Upgrade: dockerd's 200 fallback.
	conn2, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprint(conn2, "POST /test/hijack HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nhi\n")
	br2 := bufio.NewReader(conn2)
	if l, _ := br2.ReadString('\n'); l != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("fallback status line %q", l)
	}
}

// lockedBuffer is a goroutine-safe strings.Builder for log capture.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
