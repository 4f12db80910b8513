package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// fakeRuntime extends the image fake with containers and volumes: a
// small engine that "runs" a container by a script chosen from its
// command line, with dockerd's wire behaviour where the CLI depends on
// it: 404 "No such image" on create until the image is pulled, attach
// hijacked with 101 and stdcopy frames, wait headers flushed at once,
// start errors worded like runc's, 304/404/409 on the lifecycle verbs.
//
// Scripts (the command joined by spaces):
//
//	echo WORDS      prints WORDS, exits 0
//	sh -c exit N    exits N
//	cat             copies stdin to stdout, exits 0 at its end
//	both            "out" on stdout, "err" on stderr
//	sleep           runs until killed (exit 128+signal) or stopped
//	stubborn        ignores every signal but SIGKILL
//	nope, /etc, /secret, broken
//	                start fails: not found, is a directory, permission
//	                denied, another error
type fakeRuntime struct {
	*fakeEngine

	mu      sync.Mutex
	pulled  map[string]bool // image references present
	ctrs    []*fakeCtr
	serial  int
	creates []fakeCreate
	vols    []map[string]any
	// list is what GET /containers/json answers (set by the test).
	list []container.Summary
}

// fakeCreate is one POST /containers/create as received.
type fakeCreate struct {
	query url.Values
	body  []byte
}

type fakeCtr struct {
	id, name string
	image    string
	cmd      []string
	tty      bool
	stdin    bool
	remove   bool

	running bool
	status  int
	waitErr string
	logs    [][2]string // stream ("stdout"/"stderr"), line

	attach  *fakeAttach
	kill    chan int
	exited  chan struct{} // closed at each exit (replaced on start)
	removed chan struct{}
}

type fakeAttach struct {
	conn           net.Conn
	r              *bufio.Reader
	stdout, stderr bool
}

func startFakeRuntime(t *testing.T, now time.Time) *fakeRuntime {
	t.Helper()
	f := &fakeRuntime{fakeEngine: newFakeEngine(t, now), pulled: map[string]bool{}}
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
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		f.mu.Lock()
		for _, c := range f.ctrs {
			if c.running {
				select {
				case c.kill <- 9:
				default:
				}
			}
		}
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return f
}

func (f *fakeRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	if !strings.HasPrefix(path, "/containers/") && !strings.HasPrefix(path, "/volumes") && path != "/images/create" {
		f.fakeEngine.ServeHTTP(w, r)
		return
	}
	f.fakeEngine.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.fakeEngine.mu.Unlock()
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Server", "berth/test (linux)")

	q := r.URL.Query()
	switch {
	case path == "/images/create" && r.Method == http.MethodPost:
		f.pull(w, q)
	case path == "/containers/create" && r.Method == http.MethodPost:
		f.create(w, r)
	case path == "/containers/json" && r.Method == http.MethodGet:
		f.mu.Lock()
		list := f.list
		f.mu.Unlock()
		if list == nil {
			list = []container.Summary{}
		}
		writeJSON(w, http.StatusOK, list)
	case path == "/containers/prune" && r.Method == http.MethodPost:
		f.prune(w)
	case strings.HasPrefix(path, "/volumes"):
		f.volumes(w, r, strings.TrimPrefix(strings.TrimPrefix(path, "/volumes"), "/"))
	default:
		rest := strings.TrimPrefix(path, "/containers/")
		name, verb, _ := strings.Cut(rest, "/")
		f.containerVerb(w, r, name, verb)
	}
}

func (f *fakeRuntime) pull(w http.ResponseWriter, q url.Values) {
	name := strings.TrimPrefix(strings.TrimPrefix(q.Get("fromImage"), "docker.io/"), "library/")
	ref := name + ":" + q.Get("tag")
	if name != "busybox" {
		writeError(w, http.StatusNotFound, "pull access denied for "+name+", repository does not exist")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, m := range []map[string]any{
		{"status": "Pulling from library/busybox", "id": q.Get("tag")},
		{"status": "Pulling fs layer", "progressDetail": map[string]any{}, "id": "df32ed40910d"},
		{"status": "Download complete", "progressDetail": map[string]any{}, "id": "df32ed40910d"},
		{"status": "Pull complete", "progressDetail": map[string]any{}, "id": "df32ed40910d"},
		{"status": "Digest: " + digestBusybox},
		{"status": "Status: Downloaded newer image for " + ref},
	} {
		_ = enc.Encode(m)
	}
	f.mu.Lock()
	f.pulled[ref] = true
	f.mu.Unlock()
}

func (f *fakeRuntime) create(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		container.Config
		HostConfig *container.HostConfig
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, fakeCreate{query: r.URL.Query(), body: body})
	ref := withLatest(req.Image)
	if !f.pulled[ref] {
		writeError(w, http.StatusNotFound, "No such image: "+ref)
		return
	}
	name := r.URL.Query().Get("name")
	if name != "" && f.lookup(name) != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, f.lookup(name).id))
		return
	}
	f.serial++
	c := &fakeCtr{
		id:      strings.Repeat(fmt.Sprintf("%02x", 0xc0+f.serial), 32),
		name:    name,
		image:   req.Image,
		cmd:     req.Cmd,
		tty:     req.Tty,
		stdin:   req.OpenStdin,
		remove:  req.HostConfig != nil && req.HostConfig.AutoRemove,
		kill:    make(chan int, 1),
		exited:  make(chan struct{}),
		removed: make(chan struct{}),
	}
	if c.name == "" {
		c.name = fmt.Sprintf("fake_%d", f.serial)
	}
	f.ctrs = append(f.ctrs, c)
	writeJSON(w, http.StatusCreated, map[string]any{"Id": c.id, "Warnings": []string{}})
}

// lookup finds a container by name, ID or unique ID prefix (f.mu held).
func (f *fakeRuntime) lookup(ref string) *fakeCtr {
	ref = strings.TrimPrefix(ref, "/")
	for _, c := range f.ctrs {
		if c.name == ref || c.id == ref {
			return c
		}
	}
	var found *fakeCtr
	for _, c := range f.ctrs {
		if strings.HasPrefix(c.id, ref) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

func (f *fakeRuntime) containerVerb(w http.ResponseWriter, r *http.Request, name, verb string) {
	f.mu.Lock()
	c := f.lookup(name)
	f.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, "No such container: "+name)
		return
	}
	q := r.URL.Query()
	switch {
	case verb == "json" && r.Method == http.MethodGet:
		f.mu.Lock()
		state := map[string]any{"Status": "created", "Running": c.running, "ExitCode": c.status}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"Id": c.id, "Name": "/" + c.name, "Image": "sha256:" + strings.Repeat("ab", 32), "State": state,
			"Config":     map[string]any{"Image": c.image, "Cmd": c.cmd, "Tty": c.tty, "OpenStdin": c.stdin},
			"HostConfig": map[string]any{"AutoRemove": c.remove},
		})
	case verb == "attach" && r.Method == http.MethodPost:
		f.attach(w, c, q)
	case verb == "wait" && r.Method == http.MethodPost:
		f.wait(w, c, q.Get("condition"))
	case verb == "start" && r.Method == http.MethodPost:
		f.start(w, c)
	case verb == "kill" && r.Method == http.MethodPost:
		f.signal(w, c, q.Get("signal"))
	case verb == "stop" && r.Method == http.MethodPost:
		f.mu.Lock()
		running := c.running
		f.mu.Unlock()
		if !running {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.stopCtr(c)
		w.WriteHeader(http.StatusNoContent)
	case verb == "restart" && r.Method == http.MethodPost:
		f.mu.Lock()
		running := c.running
		f.mu.Unlock()
		if running {
			f.stopCtr(c)
		}
		f.start(w, c)
	case verb == "rename" && r.Method == http.MethodPost:
		f.mu.Lock()
		c.name = q.Get("name")
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case verb == "logs" && r.Method == http.MethodGet:
		f.logs(w, c, q)
	case verb == "" && r.Method == http.MethodDelete:
		f.mu.Lock()
		running := c.running
		f.mu.Unlock()
		if running && q.Get("force") != "1" {
			writeError(w, http.StatusConflict, "You cannot remove a running container "+c.id+". Stop the container before attempting removal or force remove")
			return
		}
		if running {
			f.mu.Lock()
			exited := c.exited
			f.mu.Unlock()
			c.kill <- 9
			<-exited
		}
		f.removeCtr(c)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

// stopCtr sends SIGTERM and, after a moment, SIGKILL, and waits for the
// exit.
func (f *fakeRuntime) stopCtr(c *fakeCtr) {
	f.mu.Lock()
	exited := c.exited
	f.mu.Unlock()
	c.kill <- 15
	select {
	case <-exited:
	case <-time.After(200 * time.Millisecond):
		c.kill <- 9
		<-exited
	}
}

func (f *fakeRuntime) removeCtr(c *fakeCtr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.ctrs, c); i >= 0 {
		f.ctrs = slices.Delete(f.ctrs, i, i+1)
		close(c.removed)
	}
}

// attach hijacks the connection as dockerd does; the container's run
// writes into it once started.
func (f *fakeRuntime) attach(w http.ResponseWriter, c *fakeCtr, q url.Values) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, "no hijack")
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	// Registered before the client hears 101, so its start finds it.
	f.mu.Lock()
	c.attach = &fakeAttach{conn: conn, r: rw.Reader, stdout: q.Get("stdout") == "1", stderr: q.Get("stderr") == "1"}
	f.mu.Unlock()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
}

// wait answers the headers at once and the status at the exit (or the
// removal).
func (f *fakeRuntime) wait(w http.ResponseWriter, c *fakeCtr, cond string) {
	f.mu.Lock()
	done := c.exited
	running := c.running
	f.mu.Unlock()
	if cond == "removed" {
		done = c.removed
	} else if cond == "" && !running {
		done = nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	if done != nil {
		<-done
	}
	f.mu.Lock()
	resp := map[string]any{"Error": nil, "StatusCode": c.status}
	if c.waitErr != "" {
		resp["Error"] = map[string]string{"Message": c.waitErr}
	}
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeRuntime) start(w http.ResponseWriter, c *fakeCtr) {
	f.mu.Lock()
	if c.running {
		f.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	cmd := strings.Join(c.cmd, " ")
	prefix := `failed to create task for container: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: "` + cmd + `": `
	var failure string
	switch cmd {
	case "nope":
		failure = prefix + "executable file not found in $PATH: unknown"
	case "/etc":
		failure = prefix + "is a directory: unknown"
	case "/secret":
		failure = prefix + "permission denied: unknown"
	case "broken":
		failure = "cgroup setup failed"
	}
	if failure != "" {
		c.status, c.waitErr = 128, failure
		close(c.exited)
		c.exited = make(chan struct{})
		f.mu.Unlock()
		if c.remove {
			f.removeCtr(c)
		}
		writeError(w, http.StatusBadRequest, failure)
		return
	}
	c.running, c.waitErr = true, ""
	att := c.attach
	c.attach = nil
	f.mu.Unlock()
	go f.run(c, cmd, att)
	w.WriteHeader(http.StatusNoContent)
}

// run plays the container's script, writing its output to the attach
// connection (if any) as stdcopy frames and to its log.
func (f *fakeRuntime) run(c *fakeCtr, cmd string, att *fakeAttach) {
	emit := func(stream, line string) {
		f.mu.Lock()
		c.logs = append(c.logs, [2]string{stream, line})
		f.mu.Unlock()
		if att == nil || (stream == "stdout" && !att.stdout) || (stream == "stderr" && !att.stderr) {
			return
		}
		_, _ = att.conn.Write(frame(stream, line))
	}
	status := 0
	switch {
	case strings.HasPrefix(cmd, "echo "):
		emit("stdout", strings.TrimPrefix(cmd, "echo ")+"\n")
	case strings.HasPrefix(cmd, "sh -c exit "):
		status, _ = strconv.Atoi(strings.TrimPrefix(cmd, "sh -c exit "))
	case cmd == "both":
		emit("stdout", "out\n")
		emit("stderr", "err\n")
	case cmd == "cat":
		if att != nil {
			for {
				line, err := att.r.ReadString('\n')
				if line != "" {
					emit("stdout", line)
				}
				if err != nil {
					break
				}
			}
		}
	case cmd == "sleep":
		status = 128 + <-c.kill
	case cmd == "stubborn":
		for status == 0 {
			if sig := <-c.kill; sig == 9 {
				status = 137
			}
		}
	}
	if att != nil {
		_ = att.conn.Close()
	}
	f.mu.Lock()
	c.running, c.status = false, status
	close(c.exited)
	c.exited = make(chan struct{})
	f.mu.Unlock()
	if c.remove {
		f.removeCtr(c)
	}
}

// frame is one stdcopy frame.
func frame(stream, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = 1
	if stream == "stderr" {
		b[0] = 2
	}
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

var fakeSignals = map[string]int{"": 9, "KILL": 9, "9": 9, "TERM": 15, "15": 15, "INT": 2, "HUP": 1, "USR1": 10}

func (f *fakeRuntime) signal(w http.ResponseWriter, c *fakeCtr, sig string) {
	f.mu.Lock()
	running := c.running
	f.mu.Unlock()
	if !running {
		writeError(w, http.StatusConflict, fmt.Sprintf("Cannot kill container: %s: Container %s is not running", c.name, c.id))
		return
	}
	n, ok := fakeSignals[strings.TrimPrefix(strings.ToUpper(sig), "SIG")]
	if !ok {
		writeError(w, http.StatusBadRequest, "Invalid signal: "+sig)
		return
	}
	select {
	case c.kill <- n:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRuntime) logs(w http.ResponseWriter, c *fakeCtr, q url.Values) {
	f.mu.Lock()
	lines := slices.Clone(c.logs)
	f.mu.Unlock()
	if tail, err := strconv.Atoi(q.Get("tail")); err == nil && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	for _, l := range lines {
		if q.Get(l[0]) != "1" {
			continue
		}
		if c.tty {
			_, _ = io.WriteString(w, l[1])
			continue
		}
		_, _ = w.Write(frame(l[0], l[1]))
	}
}

func (f *fakeRuntime) prune(w http.ResponseWriter) {
	f.mu.Lock()
	var deleted []string
	var gone []*fakeCtr
	for _, c := range f.ctrs {
		if !c.running {
			deleted = append(deleted, c.id)
			gone = append(gone, c)
		}
	}
	f.mu.Unlock()
	for _, c := range gone {
		f.removeCtr(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ContainersDeleted": deleted, "SpaceReclaimed": 2048 * len(deleted)})
}

func (f *fakeRuntime) volumes(w http.ResponseWriter, r *http.Request, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	find := func(n string) int {
		return slices.IndexFunc(f.vols, func(v map[string]any) bool { return v["Name"] == n })
	}
	switch {
	case name == "create" && r.Method == http.MethodPost:
		var req struct {
			Name       string
			Driver     string
			DriverOpts map[string]string
			Labels     map[string]string
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Name == "" {
			req.Name = strings.Repeat(fmt.Sprintf("%02x", len(f.vols)+0x10), 32)
		}
		if req.Labels == nil {
			req.Labels = map[string]string{}
		}
		if req.DriverOpts == nil {
			req.DriverOpts = map[string]string{}
		}
		v := map[string]any{"CreatedAt": "2026-01-02T03:04:05Z", "Driver": req.Driver, "Labels": req.Labels,
			"Mountpoint": "/var/lib/berth/volumes/" + req.Name + "/_data", "Name": req.Name, "Options": req.DriverOpts, "Scope": "local"}
		if find(req.Name) < 0 {
			f.vols = append(f.vols, v)
		}
		writeJSON(w, http.StatusCreated, v)
	case name == "" && r.Method == http.MethodGet:
		vols := f.vols
		if vols == nil {
			vols = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"Volumes": vols, "Warnings": nil})
	case name == "prune" && r.Method == http.MethodPost:
		var deleted []string
		all := strings.Contains(r.URL.Query().Get("filters"), `"all"`)
		f.vols = slices.DeleteFunc(f.vols, func(v map[string]any) bool {
			anon := len(v["Name"].(string)) == 64
			if all || anon {
				deleted = append(deleted, v["Name"].(string))
				return true
			}
			return false
		})
		writeJSON(w, http.StatusOK, map[string]any{"VolumesDeleted": deleted, "SpaceReclaimed": 4096 * len(deleted)})
	case r.Method == http.MethodGet:
		if i := find(name); i >= 0 {
			writeJSON(w, http.StatusOK, f.vols[i])
			return
		}
		writeError(w, http.StatusNotFound, "get "+name+": no such volume")
	case r.Method == http.MethodDelete:
		if i := find(name); i >= 0 {
			f.vols = slices.Delete(f.vols, i, i+1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusNotFound, "get "+name+": no such volume")
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

// lastCreate is the body of the last create request, decoded.
func (f *fakeRuntime) lastCreate(t *testing.T) (url.Values, container.CreateRequest) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.creates) == 0 {
		t.Fatal("no create request")
	}
	c := f.creates[len(f.creates)-1]
	var req container.CreateRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		t.Fatal(err)
	}
	return c.query, req
}

// requestPaths is the request log as "METHOD /path?query" without the
// API version and the pings.
func (f *fakeRuntime) requestPaths() []string {
	var out []string
	for _, r := range f.requestLog() {
		m, uri, _ := strings.Cut(r, " ")
		out = append(out, m+" "+versionPrefix.ReplaceAllString(uri, ""))
	}
	return out
}
