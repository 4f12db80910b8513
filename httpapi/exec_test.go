package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeExecs is a containers backend with exec and resize: the exec
// handlers' wire behaviour is tested against it. Methods of Containers it
// does not implement are never called.
type fakeExecs struct {
	Containers

	mu      sync.Mutex
	execs   map[string]*fakeExec
	resizes []string
	serial  int
}

type fakeExec struct {
	req      container.ExecCreateRequest
	started  bool
	exitCode *int
}

func newFakeExecs() *fakeExecs { return &fakeExecs{execs: map[string]*fakeExec{}} }

func (f *fakeExecs) Inspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	switch ref {
	case "paused":
		return container.InspectResponse{ID: ref, State: &container.State{Running: true, Paused: true}, Config: &container.Config{}}, nil
	case "running":
		return container.InspectResponse{ID: ref, State: &container.State{Running: true}, Config: &container.Config{}}, nil
	}
	return container.InspectResponse{}, errdefs.ErrNotFound.WithMessage("No such container: " + ref)
}

func (f *fakeExecs) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	switch ref {
	case "running":
	case "stopped":
		return "", errdefs.ErrConflict.WithMessage("Container " + strings.Repeat("c", 64) + " is not running")
	default:
		return "", errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial++
	id := fmt.Sprintf("exec%d", f.serial)
	f.execs[id] = &fakeExec{req: req}
	return id, nil
}

// ExecStart "runs" the command: "out" writes a line to each stream, "cat"
// echoes stdin until its end, "fail" cannot start (after the attach, as
// a runtime failure), "exit N" exits N.
func (f *fakeExecs) ExecStart(ctx context.Context, id string, opts run.ExecStartOptions, attach func(tty bool) (run.ExecStreams, error)) error {
	f.mu.Lock()
	x := f.execs[id]
	if x == nil {
		f.mu.Unlock()
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("No such exec instance '%s' found in daemon", id))
	}
	if x.started {
		f.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec command %s is already running", id))
	}
	x.started = true
	req := x.req
	f.mu.Unlock()
	exit := func(code int) {
		f.mu.Lock()
		x.exitCode = &code
		f.mu.Unlock()
	}
	if opts.Detach || attach == nil {
		exit(0)
		return nil
	}
	streams, err := attach(req.Tty)
	if err != nil {
		return err
	}
	write := func(stream byte, s string) {
		if req.Tty {
			streams.Output.Write([]byte(s))
			return
		}
		streams.Output.Write(stdcopyFrame(stream, []byte(s)))
	}
	switch cmd := strings.Join(req.Cmd, " "); {
	case cmd == "out":
		write(1, "to stdout\n")
		write(2, "to stderr\n")
		exit(0)
	case cmd == "cat":
		b, _ := io.ReadAll(streams.Stdin)
		write(1, string(b))
		exit(0)
	case cmd == "fail":
		exit(127)
		return errdefs.ErrInvalidArgument.WithMessage("OCI runtime exec failed: exec: \"fail\": executable file not found in $PATH: unknown")
	case strings.HasPrefix(cmd, "exit "):
		var code int
		fmt.Sscan(strings.TrimPrefix(cmd, "exit "), &code)
		exit(code)
	}
	return nil
}

func (f *fakeExecs) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.execs[id]
	if x == nil {
		return container.ExecInspectResponse{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("No such exec instance '%s' found in daemon", id))
	}
	return container.ExecInspectResponse{ID: id, Running: x.started && x.exitCode == nil, ExitCode: x.exitCode, ContainerID: "running",
		ProcessConfig: &container.ExecProcessConfig{Entrypoint: x.req.Cmd[0], Arguments: x.req.Cmd[1:], Tty: x.req.Tty}}, nil
}

func (f *fakeExecs) ExecResize(ctx context.Context, id string, h, w uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.execs[id] == nil {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("No such exec instance '%s' found in daemon", id))
	}
	f.resizes = append(f.resizes, fmt.Sprintf("exec %s %dx%d", id, h, w))
	return nil
}

func (f *fakeExecs) Resize(ctx context.Context, ref string, h, w uint) error {
	if ref == "stopped" {
		return errdefs.ErrConflict.WithMessage("Container " + strings.Repeat("c", 64) + " is not running")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resizes = append(f.resizes, fmt.Sprintf("container %s %dx%d", ref, h, w))
	return nil
}

func sdkClient(t *testing.T, sock string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExecCreateErrors(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{Containers: newFakeExecs()})
	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/v1.41/containers/running/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
		{"/v1.41/containers/nope/exec", `{"Cmd":["ls"]}`, 404, "No such container: nope"},
		{"/v1.41/containers/stopped/exec", `{"Cmd":["ls"]}`, 409, "Container " + strings.Repeat("c", 64) + " is not running"},
		{"/v1.41/containers/running/exec", `{"Cmd":`, 400, ""},
		{"/v1.41/exec/nope/start", `{"Detach":false}`, 404, "No such exec instance 'nope' found in daemon"},
		{"/v1.41/exec/nope/resize?h=1&w=2", ``, 404, "No such exec instance 'nope' found in daemon"},
		{"/v1.41/containers/running/resize?w=2", ``, 400, ""},
		{"/v1.41/containers/stopped/resize?h=1&w=2", ``, 409, "Container " + strings.Repeat("c", 64) + " is not running"},
		{"/v1.41/containers/paused/attach?stream=1&stdout=1", ``, 409, "container paused is paused, unpause the container before attach."},
		{"/v1.41/containers/running/attach?stream=1&stdout=1&detachKeys=ctrl-", ``, 400, "Invalid detach keys (ctrl-) provided"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://x"+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d (%s), want %d", tc.path, resp.StatusCode, body, tc.code)
			continue
		}
		var e struct{ Message string }
		json.Unmarshal(body, &e)
		if tc.msg != "" && e.Message != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.path, e.Message, tc.msg)
		}
	}
}

func TestExecStartStreamsAndInspect(t *testing.T) {
	f := newFakeExecs()
	ts := startUnix(t, Options{}, Backends{Containers: f})
	c := sdkClient(t, ts.sock)
	ctx := t.Context()

	create := func(cmd string, tty, stdin bool) string {
		t.Helper()
		res, err := c.ExecCreate(ctx, "running", client.ExecCreateOptions{Cmd: strings.Fields(cmd), TTY: tty, AttachStdin: stdin, AttachStdout: true, AttachStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	inspect := func(id string) container.ExecInspectResponse {
		t.Helper()
		resp, body := ts.do(t, http.MethodGet, "/v1.41/exec/"+id+"/json")
		if resp.StatusCode != 200 {
			t.Fatalf("inspect %s: %d %s", id, resp.StatusCode, body)
		}
		var out container.ExecInspectResponse
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Created, not started: ExitCode is null on the wire.
	id := create("out", false, false)
	if _, body := ts.do(t, http.MethodGet, "/v1.41/exec/"+id+"/json"); !bytes.Contains(body, []byte(`"ExitCode":null`)) {
		t.Errorf("inspect before start: %s", body)
	}
	// Without a TTY: stdcopy frames, each stream on its own.
	att, err := c.ExecAttach(ctx, id, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	if _, err := stdcopy.StdCopy(&so, &se, att.Reader); err != nil {
		t.Fatal(err)
	}
	att.Close()
	if so.String() != "to stdout\n" || se.String() != "to stderr\n" {
		t.Errorf("demuxed: %q %q", so.String(), se.String())
	}
	if ins := inspect(id); ins.ExitCode == nil || *ins.ExitCode != 0 || ins.Running {
		t.Errorf("inspect after: %+v", ins)
	}
	// A second start conflicts.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://x/v1.41/exec/"+id+"/start", strings.NewReader(`{}`))
	if resp, err := ts.client.Do(req); err != nil || resp.StatusCode != 409 {
		t.Errorf("second start: %v %v", resp, err)
	}

	// With a TTY: raw bytes.
	id = create("out", true, false)
	att, err = c.ExecAttach(ctx, id, client.ExecAttachOptions{TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(att.Reader)
	att.Close()
	if string(raw) != "to stdout\nto stderr\n" {
		t.Errorf("tty stream: %q", raw)
	}

	// Stdin up to the client's half-close.
	id = create("cat", false, true)
	att, err = c.ExecAttach(ctx, id, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	att.Conn.Write([]byte("typed in\n"))
	att.CloseWrite()
	so.Reset()
	if _, err := stdcopy.StdCopy(&so, io.Discard, att.Reader); err != nil || so.String() != "typed in\n" {
		t.Errorf("stdin echoed: %q %v", so.String(), err)
	}
	att.Close()

	// An exit code, final once the stream closes.
	id = create("exit 7", false, false)
	att, _ = c.ExecAttach(ctx, id, client.ExecAttachOptions{})
	io.Copy(io.Discard, att.Reader)
	att.Close()
	if res, err := c.ExecInspect(ctx, id, client.ExecInspectOptions{}); err != nil || res.ExitCode != 7 {
		t.Errorf("exit 7: %+v %v", res, err)
	}

	// A start that fails after the hijack: the message is in the stream.
	id = create("fail", false, false)
	att, _ = c.ExecAttach(ctx, id, client.ExecAttachOptions{})
	so.Reset()
	stdcopy.StdCopy(&so, io.Discard, att.Reader)
	att.Close()
	if !strings.Contains(so.String(), "executable file not found") || !strings.HasSuffix(so.String(), "\r\n") {
		t.Errorf("start error in stream: %q", so.String())
	}
	if res, _ := c.ExecInspect(ctx, id, client.ExecInspectOptions{}); res.ExitCode != 127 {
		t.Errorf("failed start exit code: %d", res.ExitCode)
	}

	// Detached: 200, no stream.
	id = create("out", false, false)
	if _, err := c.ExecStart(ctx, id, client.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}

	// Resizes reach the backend.
	if _, err := c.ExecResize(ctx, id, client.ExecResizeOptions{Height: 30, Width: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerResize(ctx, "running", client.ContainerResizeOptions{Height: 40, Width: 120}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := strings.Join(f.resizes, "; ")
	f.mu.Unlock()
	if got != "exec "+id+" 30x100; container running 40x120" {
		t.Errorf("resizes: %s", got)
	}
}

// TestExecStartRawUpgrade checks the bytes of the hijack answer and that
// the JSON body's trailing newline is not taken for stdin.
func TestExecStartRawUpgrade(t *testing.T) {
	f := newFakeExecs()
	ts := startUnix(t, Options{}, Backends{Containers: f})
	c := sdkClient(t, ts.sock)
	res, err := c.ExecCreate(t.Context(), "running", client.ExecCreateOptions{Cmd: []string{"cat"}, TTY: true, AttachStdin: true, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := "{\"Detach\":false,\"Tty\":true}\n"
	fmt.Fprintf(conn, "POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n%sabc", res.ID, len(body), body)
	conn.(*net.UnixConn).CloseWrite()
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if status != "HTTP/1.1 101 UPGRADED\r\n" {
		t.Fatalf("status line %q", status)
	}
	hdrs := map[string]string{}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSpace(l), ": ")
		hdrs[k] = v
	}
	if hdrs["Content-Type"] != "application/vnd.docker.raw-stream" || hdrs["Upgrade"] != "tcp" || hdrs["Connection"] != "Upgrade" {
		t.Errorf("headers %v", hdrs)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "abc" {
		t.Errorf("stream %q, want the stdin echoed raw", rest)
	}
}

// stdcopyFrame wraps p in one stdcopy frame of stream.
func stdcopyFrame(stream byte, p []byte) []byte {
	out := make([]byte, 8+len(p))
	out[0] = stream
	binary.BigEndian.PutUint32(out[4:8], uint32(len(p)))
	copy(out[8:], p)
	return out
}
