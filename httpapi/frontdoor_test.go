package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// quietLogger is the logger without debug: with debug on every request
// goes through net/http for the access log, and the front door stands
// aside.
func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func dialRaw(t *testing.T, sock string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readRaw(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// One keep-alive connection: the loop answers ping and the image list
// (a miss, then a hit), hands the connection to net/http at the first
// other request, and net/http answers everything after it, byte for byte
// as the loop would have.
func TestFrontDoorAnswersThenHandsOff(t *testing.T) {
	ts := startUnix(t, Options{Logger: quietLogger(t)}, Backends{Images: imageStore(t)})
	c, br := dialRaw(t, ts.sock)
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readRaw(t, br, "GET")
	if resp.StatusCode != 200 || body != "OK" || resp.Header.Get("Api-Version") == "" || resp.Header.Get("Date") == "" {
		t.Fatalf("ping: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	send("HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readRaw(t, br, "HEAD"); resp.StatusCode != 200 || body != "" || resp.ContentLength != 0 {
		t.Fatalf("HEAD ping: %d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	var lists []string
	for range 2 {
		send("GET /v1.41/images/json?all=1 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body = readRaw(t, br, "GET")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("images: %d %v", resp.StatusCode, resp.Header)
		}
		lists = append(lists, body)
	}
	var imgs []ImageSummary
	if err := json.Unmarshal([]byte(lists[0]), &imgs); err != nil || len(imgs) == 0 || lists[0] != lists[1] {
		t.Fatalf("image lists: %v %q %q", err, lists[0], lists[1])
	}
	if n := ts.front.served.Load(); n != 4 {
		t.Fatalf("the loop answered %d requests, want 4", n)
	}
	// A request the loop does not serve, then more on the same
	// connection: net/http has it now.
	send("GET /v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readRaw(t, br, "GET"); resp.StatusCode != 200 || !strings.Contains(body, `"ApiVersion"`) {
		t.Fatalf("version after handoff: %d %q", resp.StatusCode, body)
	}
	send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readRaw(t, br, "GET"); resp.StatusCode != 200 || body != "OK" {
		t.Fatalf("ping after handoff: %d %q", resp.StatusCode, body)
	}
	send("GET /v1.41/images/json?all=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body = readRaw(t, br, "GET"); resp.StatusCode != 200 || body != lists[0] {
		t.Fatalf("images through net/http differ:\n%q\n%q", body, lists[0])
	}
	if n := ts.front.served.Load(); n != 4 {
		t.Fatalf("the loop answered %d requests after the handoff", n-4)
	}
}

// Pipelined requests keep their order across the handoff, a head that
// arrives in pieces goes to net/http whole, and bad requests get
// net/http's answers.
func TestFrontDoorPipelinedAndSplitRequests(t *testing.T) {
	ts := startUnix(t, Options{Logger: quietLogger(t)}, Backends{Images: imageStore(t)})
	c, br := dialRaw(t, ts.sock)
	io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []string{"OK", `"ID"`, "OK"} {
		resp, body := readRaw(t, br, "GET")
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("pipelined %d: %d %q", i, resp.StatusCode, body)
		}
	}

	c2, br2 := dialRaw(t, ts.sock)
	io.WriteString(c2, "GET /_ping HTTP/1.1\r\nHo")
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c2, "st: x\r\n\r\n")
	if resp, body := readRaw(t, br2, "GET"); resp.StatusCode != 200 || body != "OK" {
		t.Fatalf("split head: %d %q", resp.StatusCode, body)
	}

	// A body, a close and an unknown route all go to net/http.
	c3, br3 := dialRaw(t, ts.sock)
	io.WriteString(c3, "GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp, body := readRaw(t, br3, "GET"); resp.StatusCode != 200 || body != "OK" {
		t.Fatalf("ping with a body: %d %q", resp.StatusCode, body)
	}
	if resp, _ := readRaw(t, br3, "GET"); resp.StatusCode != 404 {
		t.Fatalf("unknown route: %d", resp.StatusCode)
	}
	if _, err := br3.ReadByte(); err != io.EOF {
		t.Fatalf("Connection: close left the connection open: %v", err)
	}
}

// Shutdown closes the connections waiting in the loop, as net/http closes
// its idle ones, and does not wait for them.
func TestFrontDoorShutdownClosesIdle(t *testing.T) {
	s := New(Options{Logger: quietLogger(t), Version: "0.1.0-test"}, Backends{System: newFakeSystem()})
	sock, served := serveOn(t, s)
	c, br := dialRaw(t, sock)
	io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readRaw(t, br, "GET"); resp.StatusCode != 200 || body != "OK" {
		t.Fatalf("ping: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle connection still open after shutdown")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
