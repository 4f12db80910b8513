package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEngine is a small Engine API server for the client tests: the
// handful of routes berth's commands use, answering from JSON fixtures as
// dockerd 20.10 (API 1.41) would, including its 404 and 409 errors. It
// keeps the tag state so tag and rmi change what images lists.
type fakeEngine struct {
	t    *testing.T
	now  time.Time
	sock string

	mu       sync.Mutex
	requests []string // "GET /v1.41/images/json?all=1"
	images   []fakeImage
}

type fakeImage struct {
	ID          string
	RepoTags    []string
	RepoDigests []string
	Created     int64
	Size        int64
	// intermediate images are only listed with all=1.
	intermediate bool
}

// Fixture IDs: 64 hex digits each, recognisable by their first letters.
var (
	idBusybox = "sha256:" + strings.Repeat("a1b2c3d4", 8)
	idApp     = "sha256:" + strings.Repeat("b2c3d4e5", 8)
	idAlpine  = "sha256:" + strings.Repeat("c3d4e5f6", 8)
	idNone    = "sha256:" + strings.Repeat("d4e5f6a7", 8)
	idInter   = "sha256:" + strings.Repeat("e5f6a7b8", 8)

	digestBusybox = "sha256:" + strings.Repeat("0f1e2d3c", 8)
	digestApp     = "sha256:" + strings.Repeat("1e2d3c4b", 8)
	digestAlpine  = "sha256:" + strings.Repeat("2d3c4b5a", 8)
)

func newFakeImages(now time.Time) []fakeImage {
	return []fakeImage{
		{ID: idBusybox, RepoTags: []string{"busybox:latest", "busybox:v1"}, RepoDigests: []string{"busybox@" + digestBusybox},
			Created: now.Add(-73 * time.Hour).Unix(), Size: 4261550},
		{ID: idAlpine, RepoDigests: []string{"alpine@" + digestAlpine},
			Created: now.Add(-130 * time.Minute).Unix(), Size: 7800000},
		{ID: idApp, RepoTags: []string{"127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:stable"}, RepoDigests: []string{"127.0.0.1:5000/team/app@" + digestApp},
			Created: now.Add(-5 * 7 * 24 * time.Hour).Unix(), Size: 123456789},
		{ID: idNone, Created: now.Add(-26 * time.Hour).Unix(), Size: 1024},
		{ID: idInter, RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"},
			Created: now.Add(-27 * time.Hour).Unix(), Size: 0, intermediate: true},
	}
}

// startFakeEngine serves the fake API on a unix socket in a temporary
// directory; it stops when the test ends.
func startFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	return startFakeEngineAt(t, time.Now())
}

// startFakeEngineAt is startFakeEngine with the fixtures' clock fixed, so
// two engines serve identical data.
func startFakeEngineAt(t *testing.T, now time.Time) *fakeEngine {
	t.Helper()
	f := newFakeEngine(t, now)
	dir, err := os.MkdirTemp("", "berth-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// A short path: unix socket paths are limited to 108 bytes.
	f.sock = filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(l)
	return f
}

func newFakeEngine(t *testing.T, now time.Time) *fakeEngine {
	return &fakeEngine{t: t, now: now, images: newFakeImages(now)}
}

// serve answers on l until the test ends.
func (f *fakeEngine) serve(l net.Listener) *http.Server {
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

func (f *fakeEngine) host() string { return "unix://" + f.sock }

// requestLog returns the requests seen so far, without the pings.
func (f *fakeEngine) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		if !strings.Contains(r, "/_ping") {
			out = append(out, r)
		}
	}
	return out
}

var versionPrefix = regexp.MustCompile(`^/v1\.[0-9]+`)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()

	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Docker-Experimental", "false")
	w.Header().Set("Server", "berth/test (linux)")

	switch {
	case path == "/_ping":
		w.Header().Set("Builder-Version", "1")
		w.Header().Set("Swarm", "inactive")
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
	case path == "/version" && r.Method == http.MethodGet:
		f.version(w)
	case path == "/info" && r.Method == http.MethodGet:
		f.info(w)
	case path == "/images/json" && r.Method == http.MethodGet:
		f.imageList(w, r)
	case path == "/images/prune" && r.Method == http.MethodPost:
		f.imagePrune(w, r)
	case path == "/system/df" && r.Method == http.MethodGet:
		f.diskUsage(w)
	case path == "/events" && r.Method == http.MethodGet:
		f.events(w, r)
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/json") && r.Method == http.MethodGet:
		f.imageInspect(w, strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/json"))
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/history") && r.Method == http.MethodGet:
		f.imageHistory(w, strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/history"))
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/tag") && r.Method == http.MethodPost:
		f.imageTag(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/tag"))
	case strings.HasPrefix(path, "/images/") && r.Method == http.MethodDelete:
		f.imageDelete(w, r, strings.TrimPrefix(path, "/images/"))
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		name := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		writeError(w, http.StatusNotFound, "No such container: "+name)
	case strings.HasPrefix(path, "/networks/"):
		name := strings.TrimPrefix(path, "/networks/")
		writeError(w, http.StatusNotFound, "network "+name+" not found")
	case strings.HasPrefix(path, "/volumes/"):
		name := strings.TrimPrefix(path, "/volumes/")
		writeError(w, http.StatusNotFound, "get "+name+": no such volume")
	case strings.HasPrefix(path, "/plugins/") && strings.HasSuffix(path, "/json"):
		name := strings.TrimSuffix(strings.TrimPrefix(path, "/plugins/"), "/json")
		writeError(w, http.StatusNotFound, fmt.Sprintf("plugin %q not found", name))
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

func (f *fakeEngine) version(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"Platform": map[string]string{"Name": ""},
		"Components": []map[string]any{
			{"Name": "Engine", "Version": "0.1.0-test", "Details": map[string]string{
				"ApiVersion": "1.41", "Arch": "amd64", "BuildTime": "2026-01-02T03:04:05.000000000+00:00",
				"Experimental": "false", "GitCommit": "abc1234", "GoVersion": "go1.26.0",
				"KernelVersion": "6.1.0-test", "MinAPIVersion": "1.24", "Os": "linux",
			}},
			{"Name": "runc", "Version": "1.5.2", "Details": map[string]string{"GitCommit": "v1.5.2-0-gdeadbee"}},
		},
		"Version": "0.1.0-test", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "GitCommit": "abc1234",
		"GoVersion": "go1.26.0", "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0-test",
		"BuildTime": "2026-01-02T03:04:05.000000000+00:00",
	})
}

func (f *fakeEngine) info(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": "BRTH:TEST:0000:1111", "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2,
		"Images": 4, "Driver": "overlay2",
		"DriverStatus":  [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		"Plugins":       map[string]any{"Volume": []string{"local"}, "Network": []string{"bridge", "host", "null"}, "Log": []string{"json-file"}},
		"LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "1",
		"KernelVersion": "6.1.0-test", "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "OSVersion": "12",
		"OSType": "linux", "Architecture": "x86_64", "NCPU": 2, "MemTotal": 4125806592,
		"Name": "testhost", "DockerRootDir": "/var/lib/berth", "ServerVersion": "0.1.0-test",
		"IndexServerAddress": "https://index.docker.io/v1/",
		"RegistryConfig": map[string]any{
			"InsecureRegistryCIDRs": []string{"127.0.0.0/8"},
			"IndexConfigs": map[string]any{
				"docker.io":      map[string]any{"Name": "docker.io", "Mirrors": []string{}, "Secure": true, "Official": true},
				"127.0.0.1:5000": map[string]any{"Name": "127.0.0.1:5000", "Mirrors": []string{}, "Secure": false, "Official": false},
			},
			"Mirrors": []string{"https://mirror.example/"},
		},
		"Runtimes":         map[string]any{"runc": map[string]string{"path": "runc"}},
		"DefaultRuntime":   "runc",
		"Swarm":            map[string]any{"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": nil},
		"InitBinary":       "",
		"ContainerdCommit": map[string]string{"ID": "", "Expected": ""},
		"RuncCommit":       map[string]string{"ID": "v1.5.2-0-gdeadbee", "Expected": "v1.5.2-0-gdeadbee"},
		"InitCommit":       map[string]string{"ID": "", "Expected": ""},
		"SecurityOptions":  []string{"name=seccomp,profile=default"},
		"Labels":           []string{"env=test"},
		"Debug":            false, "ExperimentalBuild": false, "LiveRestoreEnabled": false,
		"Warnings": []string{"WARNING: No swap limit support"},
	})
}

func (f *fakeEngine) summary(img fakeImage) map[string]any {
	tags, digests := img.RepoTags, img.RepoDigests
	if tags == nil {
		tags = []string{}
	}
	if digests == nil {
		digests = []string{}
	}
	return map[string]any{
		"Containers": -1, "Created": img.Created, "Id": img.ID, "Labels": nil, "ParentId": "",
		"RepoDigests": digests, "RepoTags": tags, "SharedSize": -1, "Size": img.Size, "VirtualSize": img.Size,
	}
}

func (f *fakeEngine) imageList(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "1"
	var filters map[string]map[string]bool
	if s := r.URL.Query().Get("filters"); s != "" {
		if err := json.Unmarshal([]byte(s), &filters); err != nil {
			writeError(w, http.StatusBadRequest, "invalid filter: "+err.Error())
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	for _, img := range f.images {
		if img.intermediate && !all {
			continue
		}
		dangling := len(img.RepoTags) == 0 || img.RepoTags[0] == "<none>:<none>"
		if d, ok := filters["dangling"]; ok && d["true"] != dangling {
			continue
		}
		if refs, ok := filters["reference"]; ok {
			match := false
			for _, tag := range img.RepoTags {
				name := tag[:strings.LastIndex(tag, ":")]
				match = match || refs[tag] || refs[name]
			}
			if !match {
				continue
			}
		}
		out = append(out, f.summary(img))
	}
	writeJSON(w, http.StatusOK, out)
}

// lookup finds an image by full or short ID, name:tag or name (meaning
// name:latest). It returns -1 when there is none.
func (f *fakeEngine) lookup(ref string) int {
	for i, img := range f.images {
		if img.ID == ref || strings.TrimPrefix(img.ID, "sha256:") == ref ||
			(len(ref) >= 12 && strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), ref)) {
			return i
		}
		if slices.Contains(img.RepoTags, withLatest(ref)) {
			return i
		}
	}
	return -1
}

func withLatest(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref
	}
	return ref + ":latest"
}

func (f *fakeEngine) imageInspect(w http.ResponseWriter, ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.lookup(ref)
	if i < 0 {
		writeError(w, http.StatusNotFound, "No such image: "+withLatest(ref))
		return
	}
	img := f.images[i]
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": img.ID, "RepoTags": img.RepoTags, "RepoDigests": img.RepoDigests, "Parent": "", "Comment": "",
		"Created":   time.Unix(img.Created, 0).UTC().Format(time.RFC3339Nano),
		"Container": "", "ContainerConfig": map[string]any{"Hostname": "", "Cmd": nil},
		"DockerVersion": "", "Author": "",
		"Config": map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"sh"}, "Labels": map[string]string{"org.example.team": "berth"}},
		"Architecture": "amd64", "Os": "linux", "Size": img.Size, "VirtualSize": img.Size,
		"GraphDriver": map[string]any{"Name": "overlay2", "Data": map[string]string{"MergedDir": "/var/lib/berth/layers/x/merged"}},
		"RootFS":      map[string]any{"Type": "layers", "Layers": []string{"sha256:" + strings.Repeat("9a", 32)}},
		"Metadata":    map[string]any{"LastTagTime": "0001-01-01T00:00:00Z"},
	})
}

func (f *fakeEngine) imageHistory(w http.ResponseWriter, ref string) {
	f.mu.Lock()
	i := f.lookup(ref)
	f.mu.Unlock()
	if i < 0 {
		writeError(w, http.StatusNotFound, "No such image: "+withLatest(ref))
		return
	}
	created := f.images[i].Created
	writeJSON(w, http.StatusOK, []map[string]any{
		{"Comment": "", "Created": created, "CreatedBy": `/bin/sh -c #(nop)  CMD ["sh"]`,
			"Id": f.images[i].ID, "Size": 0, "Tags": f.images[i].RepoTags},
		{"Comment": "imported\tfrom a tar", "Created": created - 3600,
			"CreatedBy": "/bin/sh -c #(nop) ADD file:6b2d5ba1d4a2f6f0e6d0d0a12a8b7c0c5a0e7e1f8e0b7 in / ",
			"Id":        "<missing>", "Size": 4261538, "Tags": nil},
		{"Comment": "", "Created": 946684800, "CreatedBy": "RUN\techo\ttabs", "Id": "<missing>", "Size": 12, "Tags": nil},
		{"Comment": "short", "Created": created - 7200, "CreatedBy": strings.Repeat("x", 45), "Id": "<missing>", "Size": 1500000, "Tags": nil},
	})
}

func (f *fakeEngine) imageTag(w http.ResponseWriter, r *http.Request, src string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.lookup(src)
	if i < 0 {
		writeError(w, http.StatusNotFound, "No such image: "+withLatest(src))
		return
	}
	tag := r.URL.Query().Get("repo") + ":" + r.URL.Query().Get("tag")
	for j := range f.images {
		f.images[j].RepoTags = slices.DeleteFunc(f.images[j].RepoTags, func(s string) bool { return s == tag })
	}
	f.images[i].RepoTags = append(f.images[i].RepoTags, tag)
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeEngine) imageDelete(w http.ResponseWriter, r *http.Request, ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.lookup(ref)
	if i < 0 {
		writeError(w, http.StatusNotFound, "No such image: "+withLatest(ref))
		return
	}
	img := &f.images[i]
	force := r.URL.Query().Get("force") == "1"
	byID := !slices.Contains(img.RepoTags, withLatest(ref))
	if byID && len(img.RepoTags) > 1 && !force {
		writeError(w, http.StatusConflict, fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", truncateID(img.ID)))
		return
	}
	var resp []map[string]string
	if byID {
		for _, t := range img.RepoTags {
			resp = append(resp, map[string]string{"Untagged": t})
		}
		img.RepoTags = nil
	} else {
		img.RepoTags = slices.DeleteFunc(img.RepoTags, func(s string) bool { return s == withLatest(ref) })
		resp = append(resp, map[string]string{"Untagged": withLatest(ref)})
	}
	if len(img.RepoTags) == 0 {
		for _, d := range img.RepoDigests {
			resp = append(resp, map[string]string{"Untagged": d})
		}
		resp = append(resp, map[string]string{"Deleted": img.ID},
			map[string]string{"Deleted": "sha256:" + strings.Repeat("9a", 32)})
		f.images = slices.Delete(f.images, i, i+1)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *fakeEngine) imagePrune(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"ImagesDeleted": []map[string]string{
			{"Deleted": idNone},
			{"Deleted": "sha256:" + strings.Repeat("8b", 32)},
		},
		"SpaceReclaimed": 1024 + 2048,
	})
}

func (f *fakeEngine) diskUsage(w http.ResponseWriter) {
	img := func(id string, tags []string, containers, size, shared int64) map[string]any {
		return map[string]any{"Containers": containers, "Created": f.now.Add(-50 * time.Hour).Unix(), "Id": id, "Labels": nil,
			"ParentId": "", "RepoDigests": []string{}, "RepoTags": tags, "SharedSize": shared, "Size": size, "VirtualSize": size}
	}
	ctr := func(id, name, state, status string, sizeRw int64) map[string]any {
		return map[string]any{"Id": id, "Names": []string{"/" + name}, "Image": "busybox", "ImageID": idBusybox,
			"Command": "sleep 1000000000", "Created": f.now.Add(-3 * time.Hour).Unix(), "Ports": []any{},
			"SizeRw": sizeRw, "SizeRootFs": 4261550, "Labels": map[string]string{}, "State": state, "Status": status,
			"HostConfig": map[string]string{"NetworkMode": "default"},
			"Mounts":     []map[string]any{{"Type": "volume", "Name": "data", "Driver": "local", "Destination": "/data"}}}
	}
	vol := func(name string, refs, size int64) map[string]any {
		return map[string]any{"CreatedAt": "2026-01-02T03:04:05Z", "Driver": "local", "Labels": nil,
			"Mountpoint": "/var/lib/berth/volumes/" + name + "/_data", "Name": name, "Options": nil, "Scope": "local",
			"UsageData": map[string]int64{"RefCount": refs, "Size": size}}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"LayersSize": 131518339,
		"Images": []any{
			img(idBusybox, []string{"busybox:latest", "busybox:v1"}, 2, 4261550, 4261550),
			img(idApp, []string{"127.0.0.1:5000/team/app:1.0"}, 0, 127256789, 4261550),
			img(idNone, []string{}, 0, 1024, 0),
		},
		"Containers": []any{
			ctr(strings.Repeat("f1", 32), "web", "running", "Up 3 hours", 1000),
			ctr(strings.Repeat("f2", 32), "job", "exited", "Exited (0) 2 hours ago", 2000000),
		},
		"Volumes": []any{
			vol("data", 1, 500000),
			vol("old", 0, 1500000),
			vol("unknown", 0, -1),
		},
		"BuildCache": nil,
	})
}

// fakeEventTimes are the fixture events' times: fixed instants, so their
// rendering does not depend on when the test runs.
var fakeEventTimes = []time.Time{
	time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	time.Date(2026, 1, 2, 3, 4, 6, 123456789, time.UTC),
	time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC),
}

func (f *fakeEngine) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	evs := []map[string]any{
		{"status": "tag", "id": idBusybox, "Type": "image", "Action": "tag",
			"Actor": map[string]any{"ID": idBusybox, "Attributes": map[string]string{"name": "busybox:v1"}}},
		{"status": "untag", "id": idApp, "Type": "image", "Action": "untag",
			"Actor": map[string]any{"ID": idApp, "Attributes": map[string]string{"name": "sha256:" + strings.TrimPrefix(idApp, "sha256:")}}},
		{"status": "die", "id": strings.Repeat("f1", 32), "from": "busybox", "Type": "container", "Action": "die",
			"Actor": map[string]any{"ID": strings.Repeat("f1", 32), "Attributes": map[string]string{"exitCode": "0", "image": "busybox", "name": "web"}}},
	}
	enc := json.NewEncoder(w)
	for i, ev := range evs {
		ev["scope"] = "local"
		ev["time"] = fakeEventTimes[i].Unix()
		ev["timeNano"] = fakeEventTimes[i].UnixNano()
		_ = enc.Encode(ev)
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if r.URL.Query().Get("until") != "" {
		return
	}
	<-r.Context().Done()
}

// cliResult is what one CLI run printed.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runBerth runs berth in-process against host with a controlled
// environment (no DOCKER_* or proxy variables from the test process).
func runBerth(t *testing.T, host string, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}
	if host != "" {
		args = append([]string{"-H", host}, args...)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, getenv)
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

const dockerCLIPath = "/usr/local/bin/docker"

// runDocker runs the real docker CLI (28.2.2) against host with an empty
// HOME, so no user configuration changes its output.
func runDocker(t *testing.T, host string, stdin string, args ...string) cliResult {
	t.Helper()
	if _, err := os.Stat(dockerCLIPath); err != nil {
		t.Fatalf("the docker CLI is needed to compare output: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLIPath, append([]string{"-H", host}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "TZ=" + os.Getenv("TZ")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run docker %v: %v", args, err)
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}
