package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// serveOn starts s on a fresh unix socket without the automatic cleanup of
// startUnix, so the test drives Shutdown itself.
func serveOn(t *testing.T, s *Server) (sock string, served chan error) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "berth.sock")
	ls, err := Listen(t.Context(), []string{"unix://" + sock}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	served = make(chan error, 1)
	go func() { served <- s.Serve(ls) }()
	t.Cleanup(func() { _ = s.Shutdown(expired()) })
	return sock, served
}

func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func openEventStream(t *testing.T, sock string, q url.Values) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://x/v1.41/events?"+q.Encode(), nil)
	resp, err := unixClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

func TestShutdownWaitsForStreamThenCloses(t *testing.T) {
	s := New(Options{Logger: testLogger(t)}, Backends{System: newFakeSystem()})
	sock, served := serveOn(t, s)

	// An endless events stream is in flight.
	_, br := openEventStream(t, sock, nil)
	for s.Events().Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	start := time.Now()
	go func() { shut <- s.Shutdown(ctx) }()

	// New connections are refused at once…
	deadline := time.Now().Add(time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still there after shutdown started: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v, want nil after Shutdown", err)
	}

	// …while the stream in flight keeps working during the grace period.
	s.Events().Publish(containerEvent("c1", "web", "busybox", "stop", time.Now()))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("stream broken during grace period: %v", err)
	}
	if want := `"Action":"stop"`; !strings.Contains(line, want) {
		t.Errorf("event during shutdown: %s", line)
	}

	// When the grace period ends the stream is closed.
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("Shutdown returned after %v, before its deadline", d)
	}
	// The stream ends (cleanly, as the handler sees its context end, or
	// by the connection closing); it must not hang.
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, br)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Shutdown gave up")
	}
}

func TestShutdownLetsFiniteStreamFinish(t *testing.T) {
	s := New(Options{Logger: testLogger(t)}, Backends{System: newFakeSystem()})
	sock, _ := serveOn(t, s)

	until := time.Now().Add(500 * time.Millisecond)
	_, br := openEventStream(t, sock, url.Values{"until": {fmt.Sprintf("%.9f", float64(until.UnixNano())/1e9)}})
	for s.Events().Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	read := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(br)
		read <- string(b)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	time.Sleep(100 * time.Millisecond)
	s.Events().Publish(containerEvent("c1", "web", "busybox", "die", time.Now()))

	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil once the stream ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the stream ended")
	}
	if time.Now().Before(until) {
		t.Error("Shutdown returned before the in-flight stream ended")
	}
	if body := <-read; !strings.Contains(body, `"Action":"die"`) {
		t.Errorf("stream body %q", body)
	}
}

func TestShutdownClosesHijacked(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := New(Options{Logger: testLogger(t)}, Backends{System: newFakeSystem()})
	handlerDone := make(chan error, 1)
	s.Echo().POST("/test/attach", func(c echo.Context) error {
		conn, br, err := Hijack(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		fmt.Fprint(conn, "attached\n")
		// Block reading "stdin" until the server closes the connection.
		_, err = io.Copy(io.Discard, br)
		handlerDone <- err
		return nil
	})
	sock, _ := serveOn(t, s)

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1.41/test/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "attached\n" {
			break
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded (hijacked conn still open)", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("Shutdown did not wait for the hijacked conn (%v)", d)
	}
	select {
	case <-handlerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("hijacked connection not closed by Shutdown")
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("client connection still open")
	}
}

func TestShutdownWaitsForHijackedToEnd(t *testing.T) {
	s := New(Options{Logger: testLogger(t)}, Backends{System: newFakeSystem()})
	s.Echo().POST("/test/exec", func(c echo.Context) error {
		conn, _, err := Hijack(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		time.Sleep(300 * time.Millisecond) // the "process" runs
		fmt.Fprint(conn, "exit 0\n")
		return nil
	})
	sock, _ := serveOn(t, s)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /test/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	if l, _ := br.ReadString('\n'); l != "HTTP/1.1 101 UPGRADED\r\n" {
		t.Fatalf("status %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "exit 0\n") {
		t.Errorf("hijacked stream cut short: %q", rest)
	}
}
