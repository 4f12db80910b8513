package cli

import (
	"encoding/json"
	"io"
	"log"
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

// opsFake answers pause, unpause, top, stats and update for two running
// containers, "web" and "db", and a stopped one, "old", with dockerd's
// errors; everything else goes to the image fake.
type opsFake struct {
	*fakeEngine

	mu      sync.Mutex
	updates []string // update bodies as received
	psArgs  []string
}

var opsCtrs = map[string]string{
	"web": strings.Repeat("1a", 32),
	"db":  strings.Repeat("2b", 32),
	"old": strings.Repeat("3c", 32),
}

func startOpsFake(t *testing.T) *opsFake {
	t.Helper()
	f := &opsFake{fakeEngine: newFakeEngine(t, time.Now())}
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
	t.Cleanup(func() { srv.Close() })
	return f
}

// ctr resolves a name or ID as dockerd does, or answers 404.
func (f *opsFake) ctr(w http.ResponseWriter, ref string) (name, id string, ok bool) {
	for n, i := range opsCtrs {
		if ref == n || ref == i || (len(ref) >= 3 && strings.HasPrefix(i, ref)) {
			return n, i, true
		}
	}
	writeError(w, http.StatusNotFound, "No such container: "+ref)
	return "", "", false
}

func (f *opsFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	parts := strings.Split(strings.TrimPrefix(path, "/containers/"), "/")
	if path == "/containers/json" {
		w.Header().Set("Api-Version", "1.41")
		var list []container.Summary
		for _, n := range []string{"web", "db"} {
			list = append(list, container.Summary{ID: opsCtrs[n], Names: []string{"/" + n}, State: container.StateRunning})
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	if !strings.HasPrefix(path, "/containers/") || len(parts) != 2 {
		f.fakeEngine.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Server", "berth/test (linux)")
	name, id, ok := f.ctr(w, parts[0])
	if !ok {
		return
	}
	switch parts[1] {
	case "pause", "unpause":
		switch {
		case name == "old":
			writeError(w, http.StatusConflict, "Container "+id+" is not running")
		case name == "db" && parts[1] == "unpause":
			writeError(w, http.StatusConflict, "Container "+id+" is not paused")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case "top":
		if name == "old" {
			writeError(w, http.StatusConflict, "Container "+id+" is not running")
			return
		}
		f.mu.Lock()
		f.psArgs = append(f.psArgs, r.URL.Query().Get("ps_args"))
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, container.TopResponse{
			Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
			Processes: [][]string{
				{"root", "4242", "4200", "0", "10:00", "?", "00:00:00", "sh -c sleep 1000 & exec sleep 1001"},
				{"nobody", "4250", "4242", "12", "10:00", "?", "00:00:03", "sleep 1000"},
			},
		})
	case "stats":
		writeJSON(w, http.StatusOK, opsSample(name, id))
	case "update":
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		// (docker 28's client ends the body with a newline, berth's not.)
		f.updates = append(f.updates, strings.TrimSpace(string(b)))
		f.mu.Unlock()
		var u container.UpdateConfig
		_ = json.Unmarshal(b, &u)
		switch {
		case u.RestartPolicy.Name == "always" && name == "db":
			writeError(w, http.StatusConflict, "Cannot update container "+id+": Restart policy cannot be updated because AutoRemove is enabled for the container")
		case u.Memory != 0 && u.Memory < 6<<20:
			writeError(w, http.StatusBadRequest, "Minimum memory limit allowed is 6MB")
		case u.OomKillDisable != nil || u.MemoryReservation == 1<<30:
			writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{"first warning", "second warning"}})
		default:
			writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
		}
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

// opsSample is a stats answer with precpu filled (stream=false), figures
// chosen so every column has something to show.
func opsSample(name, id string) container.StatsResponse {
	s := container.StatsResponse{Name: "/" + name, ID: id}
	if name == "old" {
		return s
	}
	s.Read = time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)
	s.PreRead = s.Read.Add(-time.Second)
	s.PreCPUStats.CPUUsage.TotalUsage = 5_000_000_000
	s.PreCPUStats.SystemUsage = 1_000_000_000_000
	s.PreCPUStats.OnlineCPUs = 2
	s.CPUStats.CPUUsage.TotalUsage = 5_750_000_000
	s.CPUStats.SystemUsage = 1_002_000_000_000
	s.CPUStats.OnlineCPUs = 2
	s.MemoryStats = container.MemoryStats{Usage: 50 << 20, Limit: 256 << 20, Stats: map[string]uint64{"total_inactive_file": 8 << 20}}
	s.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 1536, TxBytes: 2_500_000}}
	s.BlkioStats.IoServiceBytesRecursive = []container.BlkioStatEntry{{Major: 8, Op: "Read", Value: 4 << 20}, {Major: 8, Op: "Write", Value: 123}}
	s.PidsStats.Current = 7
	if name == "db" {
		s.CPUStats.CPUUsage.TotalUsage = 5_000_000_000
		s.MemoryStats = container.MemoryStats{Usage: 3 << 30, Limit: 8 << 30, Stats: map[string]uint64{"inactive_file": 1 << 20}}
		s.Networks = nil
		s.PidsStats.Current = 1
	}
	return s
}

func TestContainerOpsSameAsDockerCLI(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"pause", []string{"pause", "web", "db"}},
		{"pause errors", []string{"pause", "web", "nope", "old", "db"}},
		{"pause no args", []string{"pause"}},
		{"container unpause", []string{"container", "unpause", "web", "db"}},
		{"top", []string{"top", "web"}},
		{"top ps args", []string{"top", "web", "-o", "pid,user,args"}},
		{"top not running", []string{"top", "old"}},
		{"top missing", []string{"container", "top", "nope"}},
		{"top no args", []string{"top"}},
		{"stats no-stream", []string{"stats", "--no-stream", "web", "db"}},
		{"stats no-stream running", []string{"stats", "--no-stream"}},
		{"stats no-trunc", []string{"stats", "--no-stream", "--no-trunc", "web"}},
		{"stats stopped", []string{"stats", "--no-stream", "old"}},
		{"stats json", []string{"stats", "--no-stream", "--format", "json", "web", "db"}},
		{"stats template", []string{"stats", "--no-stream", "--format", "{{.Container}} {{.Name}} {{.CPUPerc}} {{.MemPerc}} {{.PIDs}}", "web", "1a1a1a"}},
		{"stats table template", []string{"container", "stats", "--no-stream", "--format", `table {{.Name}}\t{{.MemUsage}}\t{{.NetIO}}\t{{.BlockIO}}`, "web", "db"}},
		{"stats missing", []string{"stats", "--no-stream", "web", "nope"}},
		{"update", []string{"update", "--memory", "64m", "--memory-swap", "-1", "--cpus", "1.5", "--cpu-shares", "512",
			"--cpuset-cpus", "0-1", "--pids-limit", "10", "--restart", "on-failure:3", "--blkio-weight", "300", "web", "db"}},
		{"update quota", []string{"container", "update", "--cpu-period", "100000", "--cpu-quota", "50000", "--memory-reservation", "32m", "web"}},
		{"update warnings", []string{"update", "--memory-reservation", "1g", "web", "db"}},
		{"update errors", []string{"update", "--restart", "always", "web", "db", "nope"}},
		{"update tiny memory", []string{"update", "-m", "1m", "web"}},
		{"update no flags", []string{"update", "web"}},
		{"update bad restart", []string{"update", "--restart", "sometimes", "web"}},
		{"update bad memory", []string{"update", "--memory", "lots", "web"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			df, bf := startOpsFake(t), startOpsFake(t)
			want := runDocker(t, df.host(), "", tc.args...)
			got := runBerth(t, bf.host(), nil, "", tc.args...)
			wantErr := logLine.ReplaceAllString(strings.ReplaceAll(want.stderr, "docker", "berth"), "")
			gotErr := logLine.ReplaceAllString(got.stderr, "")
			if got.stdout != want.stdout {
				t.Errorf("stdout differs\n--- docker:\n%s\n--- berth:\n%s", want.stdout, got.stdout)
			}
			if gotErr != wantErr {
				t.Errorf("stderr differs\n--- docker:\n%s\n--- berth:\n%s", wantErr, gotErr)
			}
			if got.code != want.code {
				t.Errorf("exit status: docker %d, berth %d", want.code, got.code)
			}
			if strings.Join(bf.updates, "\n") != strings.Join(df.updates, "\n") {
				t.Errorf("update bodies differ\n--- docker:\n%s\n--- berth:\n%s", strings.Join(df.updates, "\n"), strings.Join(bf.updates, "\n"))
			}
			if strings.Join(bf.psArgs, "|") != strings.Join(df.psArgs, "|") {
				t.Errorf("ps_args: docker %q, berth %q", df.psArgs, bf.psArgs)
			}
		})
	}
}
