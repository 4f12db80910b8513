package cli

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// fakeExecEngine answers the exec and attach endpoints as dockerd does,
// over the image fake: container "box" runs (no TTY, OpenStdin),
// "stopped" does not. An exec "runs" a script chosen by its command:
//
//	echo WORDS    prints WORDS on stdout
//	both          "out" on stdout, "err" on stderr
//	cat           copies stdin to stdout until its end
//	env           prints its User, WorkingDir and Env, one per line
//	sh -c exit N  exits N
//
// Attaching to box prints "attached" and its wait answers 3.
type fakeExecEngine struct {
	*fakeEngine

	mu      sync.Mutex
	serial  int
	execs   map[string]*container.ExecCreateRequest
	codes   map[string]int
	creates []string // exec create bodies, re-encoded
}

const fakeBoxID = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"

func startFakeExecEngine(t *testing.T) *fakeExecEngine {
	t.Helper()
	f := &fakeExecEngine{fakeEngine: newFakeEngine(t, time.Now()), execs: map[string]*container.ExecCreateRequest{}, codes: map[string]int{}}
	dir, err := os.MkdirTemp("", "berth-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f.sock = filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeExecEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	switch {
	case len(parts) == 3 && parts[0] == "containers" && parts[2] == "json" && (parts[1] == "box" || parts[1] == "stopped"):
		f.log(r)
		running := parts[1] == "box"
		writeJSON(w, http.StatusOK, container.InspectResponse{
			ID: fakeBoxID, Name: "/" + parts[1],
			State:  &container.State{Running: running, Status: map[bool]container.ContainerState{true: "running", false: "exited"}[running]},
			Config: &container.Config{OpenStdin: true},
		})
	case len(parts) == 3 && parts[0] == "containers" && parts[2] == "exec":
		f.log(r)
		f.createExec(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "exec" && parts[2] == "start":
		f.log(r)
		f.startExec(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "exec" && parts[2] == "json":
		f.log(r)
		f.mu.Lock()
		code, ok := f.codes[parts[1]]
		f.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "No such exec instance '"+parts[1]+"' found in daemon")
			return
		}
		writeJSON(w, http.StatusOK, container.ExecInspectResponse{ID: parts[1], ExitCode: &code, ContainerID: fakeBoxID})
	case len(parts) == 3 && parts[0] == "containers" && parts[1] == "box" && parts[2] == "attach":
		f.log(r)
		conn := hijack101(w)
		if conn == nil {
			return
		}
		defer conn.Close()
		conn.Write(execFrame(1, "attached\n"))
	case len(parts) == 3 && parts[0] == "containers" && parts[1] == "box" && parts[2] == "wait":
		f.log(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		// The attach's output comes first.
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(w, `{"Error":null,"StatusCode":3}`)
	default:
		f.fakeEngine.ServeHTTP(w, r)
	}
}

func (f *fakeExecEngine) log(r *http.Request) {
	f.fakeEngine.mu.Lock()
	defer f.fakeEngine.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
}

func (f *fakeExecEngine) createExec(w http.ResponseWriter, r *http.Request, name string) {
	var req container.ExecCreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch name {
	case "box":
	case "stopped":
		writeError(w, http.StatusConflict, "Container "+fakeBoxID+" is not running")
		return
	default:
		writeError(w, http.StatusNotFound, "No such container: "+name)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serial++
	id := fmt.Sprintf("e%063d", f.serial)
	f.execs[id] = &req
	b, _ := json.Marshal(req)
	f.creates = append(f.creates, string(b))
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id})
}

func (f *fakeExecEngine) startExec(w http.ResponseWriter, r *http.Request, id string) {
	var start container.ExecStartRequest
	json.NewDecoder(r.Body).Decode(&start)
	f.mu.Lock()
	req := f.execs[id]
	f.mu.Unlock()
	if req == nil {
		writeError(w, http.StatusNotFound, "No such exec instance '"+id+"' found in daemon")
		return
	}
	code := 0
	exited := func() {
		f.mu.Lock()
		f.codes[id] = code
		f.mu.Unlock()
	}
	if start.Detach {
		exited()
		w.WriteHeader(http.StatusOK)
		return
	}
	conn := hijack101(w)
	if conn == nil {
		return
	}
	// As dockerd: the exit code is final before the stream closes.
	defer conn.Close()
	defer exited()
	cmd := strings.Join(req.Cmd, " ")
	switch {
	case strings.HasPrefix(cmd, "echo "):
		conn.Write(execFrame(1, strings.TrimPrefix(cmd, "echo ")+"\n"))
	case cmd == "both":
		conn.Write(execFrame(1, "out\n"))
		conn.Write(execFrame(2, "err\n"))
	case cmd == "cat":
		b, _ := io.ReadAll(conn)
		conn.Write(execFrame(1, string(b)))
	case cmd == "env":
		conn.Write(execFrame(1, fmt.Sprintf("user=%s\nworkdir=%s\n%s\n", req.User, req.WorkingDir, strings.Join(req.Env, "\n"))))
	case strings.HasPrefix(cmd, "sh -c exit "):
		fmt.Sscan(strings.TrimPrefix(cmd, "sh -c exit "), &code)
	}
}

// hijack101 answers 101 as dockerd does and returns the raw connection.
func hijack101(w http.ResponseWriter) net.Conn {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	fmt.Fprint(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	return &halfCloser{Conn: conn, r: rw.Reader}
}

// halfCloser reads through a buffer and reports EOF at the client's
// half-close.
type halfCloser struct {
	net.Conn
	r *bufio.Reader
}

func (h *halfCloser) Read(p []byte) (int, error) { return h.r.Read(p) }

func execFrame(stream byte, s string) []byte {
	b := make([]byte, 8+len(s))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(s)))
	copy(b[8:], s)
	return b
}

// sameAsDockerExec runs args with berth and with docker, each against a
// fresh fake, and compares output, exit status, the requests made and
// the exec configurations sent.
func sameAsDockerExec(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	fb, fd := startFakeExecEngine(t), startFakeExecEngine(t)
	b := runBerth(t, fb.host(), nil, stdin, args...)
	d := runDocker(t, fd.host(), stdin, args...)
	d.stderr = strings.ReplaceAll(d.stderr, "docker", "berth")
	if b != d {
		t.Errorf("berth %s differs from docker\n--- docker (%d):\n%s%s\n--- berth (%d):\n%s%s", strings.Join(args, " "), d.code, d.stdout, d.stderr, b.code, b.stdout, b.stderr)
	}
	if bl, dl := strings.Join(fb.requestLog(), "\n"), strings.Join(fd.requestLog(), "\n"); bl != dl {
		t.Errorf("berth %s requests differ\n--- docker:\n%s\n--- berth:\n%s", strings.Join(args, " "), dl, bl)
	}
	if bc, dc := strings.Join(fb.creates, "\n"), strings.Join(fd.creates, "\n"); bc != dc {
		t.Errorf("berth %s exec config differs\n--- docker:\n%s\n--- berth:\n%s", strings.Join(args, " "), dc, bc)
	}
	return b
}

func TestExecLikeDocker(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nOVERRIDDEN=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  cliResult
	}{
		{"", []string{"exec", "box", "echo", "hello", "world"}, cliResult{stdout: "hello world\n"}},
		{"", []string{"exec", "box", "both"}, cliResult{stdout: "out\n", stderr: "err\n"}},
		{"", []string{"exec", "box", "sh", "-c", "exit", "3"}, cliResult{code: 3}},
		{"piped in\n", []string{"exec", "-i", "box", "cat"}, cliResult{stdout: "piped in\n"}},
		{"not sent\n", []string{"exec", "box", "cat"}, cliResult{}},
		{"", []string{"exec", "-e", "A=1", "--env-file", envFile, "-e", "OVERRIDDEN=flag", "-u", "nobody:users", "-w", "/tmp", "--privileged", "box", "env"},
			cliResult{stdout: "user=nobody:users\nworkdir=/tmp\nFROM_FILE=1\nOVERRIDDEN=file\nA=1\nOVERRIDDEN=flag\n"}},
		{"", []string{"exec", "-d", "box", "echo", "x"}, cliResult{}},
		{"", []string{"exec", "--detach-keys", "ctrl-x,y", "box", "echo", "k"}, cliResult{stdout: "k\n"}},
		{"", []string{"exec", "stopped", "ls"}, cliResult{code: 1, stderr: "Error response from daemon: Container " + fakeBoxID + " is not running\n"}},
		{"", []string{"exec", "nope", "ls"}, cliResult{code: 1, stderr: "Error response from daemon: No such container: nope\n"}},
		{"", []string{"exec", "-it", "box", "sh"}, cliResult{code: 1, stderr: "the input device is not a TTY\n"}},
		{"", []string{"exec", "box"}, cliResult{code: 1}},
		{"", []string{"attach", "box"}, cliResult{stdout: "attached\n", code: 3}},
		{"", []string{"attach", "--no-stdin", "--sig-proxy=false", "box"}, cliResult{stdout: "attached\n", code: 3}},
		{"", []string{"attach", "stopped"}, cliResult{code: 1, stderr: "You cannot attach to a stopped container, start it first\n"}},
		{"", []string{"container", "attach", "nope"}, cliResult{code: 1, stderr: "Error response from daemon: No such container: nope\n"}},
	} {
		got := sameAsDockerExec(t, tc.stdin, tc.args...)
		if tc.want.stderr == "" && tc.want.code == 1 {
			// A usage error: only the status is fixed here.
			if got.code != 1 {
				t.Errorf("berth %s: exit %d", strings.Join(tc.args, " "), got.code)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("berth %s: %+v, want %+v", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}
