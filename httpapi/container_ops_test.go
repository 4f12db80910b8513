package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/run"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// fakeOps is a containers backend with only the ops of container_ops.go
// (the embedded Containers is nil: other endpoints are not called).
type fakeOps struct {
	Containers

	mu      sync.Mutex
	paused  map[string]bool
	psArgs  string
	stats   []run.StatsOptions
	updates []container.UpdateConfig
	streams chan struct{} // closed when a stream ends
}

func newFakeOps() *fakeOps {
	return &fakeOps{paused: map[string]bool{}, streams: make(chan struct{}, 4)}
}

const fakeOpsID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func (f *fakeOps) known(ref string) error {
	if ref != "web" {
		return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
	}
	return nil
}

func (f *fakeOps) Pause(_ context.Context, ref string) error {
	if err := f.known(ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused[ref] {
		return errdefs.ErrConflict.WithMessage("Container " + fakeOpsID + " is already paused")
	}
	f.paused[ref] = true
	return nil
}

func (f *fakeOps) Unpause(_ context.Context, ref string) error {
	if err := f.known(ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused[ref] {
		return errdefs.ErrConflict.WithMessage("Container " + fakeOpsID + " is not paused")
	}
	f.paused[ref] = false
	return nil
}

func (f *fakeOps) Top(_ context.Context, ref, psArgs string) (container.TopResponse, error) {
	if err := f.known(ref); err != nil {
		return container.TopResponse{}, err
	}
	f.mu.Lock()
	f.psArgs = psArgs
	f.mu.Unlock()
	return container.TopResponse{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"42", "sleep 100"}}}, nil
}

func (f *fakeOps) Stats(ctx context.Context, ref string, opts run.StatsOptions, send func(*container.StatsResponse) error) error {
	if err := f.known(ref); err != nil {
		return err
	}
	if opts.Stream && opts.OneShot {
		return errdefs.ErrInvalidArgument.WithMessage("cannot have stream=true and one-shot=true")
	}
	f.mu.Lock()
	f.stats = append(f.stats, opts)
	f.mu.Unlock()
	defer func() { f.streams <- struct{}{} }()
	for i := 1; ; i++ {
		s := &container.StatsResponse{ID: fakeOpsID, Name: "/web", Read: time.Unix(int64(i), 0).UTC()}
		s.CPUStats.CPUUsage.TotalUsage = uint64(i) * 1000
		if err := send(s); err != nil {
			return err
		}
		if !opts.Stream {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *fakeOps) Update(_ context.Context, ref string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	if err := f.known(ref); err != nil {
		return container.UpdateResponse{}, err
	}
	f.mu.Lock()
	f.updates = append(f.updates, cfg)
	f.mu.Unlock()
	if cfg.RestartPolicy.Name == "always" {
		return container.UpdateResponse{}, fmt.Errorf("Cannot update container %s: %w", fakeOpsID,
			errdefs.ErrConflict.WithMessage("Restart policy cannot be updated because AutoRemove is enabled for the container"))
	}
	return container.UpdateResponse{Warnings: []string{}}, nil
}

func (ts *testServer) send(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://api.moby.localhost"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, []byte(b.String())
}

func TestPauseUnpauseRoutes(t *testing.T) {
	f := newFakeOps()
	ts := startUnix(t, Options{}, Backends{Containers: f})
	resp, body := ts.do(t, http.MethodPost, "/v1.41/containers/web/pause")
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("pause: %d %q", resp.StatusCode, body)
	}
	resp, body = ts.do(t, http.MethodPost, "/containers/web/pause")
	wantErrorBody(t, resp, body, http.StatusConflict, "Container "+fakeOpsID+" is already paused")
	resp, _ = ts.do(t, http.MethodPost, "/v1.41/containers/web/unpause")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("unpause: %d", resp.StatusCode)
	}
	resp, body = ts.do(t, http.MethodPost, "/v1.41/containers/web/unpause")
	wantErrorBody(t, resp, body, http.StatusConflict, "Container "+fakeOpsID+" is not paused")
	resp, body = ts.do(t, http.MethodPost, "/v1.41/containers/nope/pause")
	wantErrorBody(t, resp, body, http.StatusNotFound, "No such container: nope")
}

func TestTopRoute(t *testing.T) {
	f := newFakeOps()
	ts := startUnix(t, Options{}, Backends{Containers: f})
	resp, body := ts.do(t, http.MethodGet, "/v1.41/containers/web/top?ps_args=aux")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"Processes":[["42","sleep 100"]],"Titles":["PID","CMD"]}` {
		t.Fatalf("top: %d %s", resp.StatusCode, body)
	}
	wantHeader(t, resp.Header, "Content-Type", "application/json")
	if f.psArgs != "aux" {
		t.Errorf("ps_args %q", f.psArgs)
	}
	resp, body = ts.do(t, http.MethodGet, "/v1.41/containers/nope/top")
	wantErrorBody(t, resp, body, http.StatusNotFound, "No such container: nope")
}

func TestStatsRoute(t *testing.T) {
	f := newFakeOps()
	ts := startUnix(t, Options{}, Backends{Containers: f})

	// stream=false: one object, then the end.
	resp, body := ts.do(t, http.MethodGet, "/v1.41/containers/web/stats?stream=false")
	if resp.StatusCode != http.StatusOK || strings.Count(string(body), "\n") != 1 {
		t.Fatalf("stream=false: %d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp.Header, "Content-Type", "application/json")
	var s container.StatsResponse
	if err := json.Unmarshal(body, &s); err != nil || s.Name != "/web" || s.ID != fakeOpsID {
		t.Fatalf("sample %q: %v", body, err)
	}
	for _, key := range []string{`"read":`, `"preread":`, `"cpu_stats":`, `"precpu_stats":`, `"memory_stats":`, `"pids_stats":`, `"blkio_stats":`, `"num_procs":0`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("sample lacks %s: %s", key, body)
		}
	}
	ts.do(t, http.MethodGet, "/v1.41/containers/web/stats?stream=0&one-shot=1")
	<-f.streams
	<-f.streams
	if len(f.stats) != 2 || f.stats[0] != (run.StatsOptions{}) || f.stats[1] != (run.StatsOptions{OneShot: true}) {
		t.Fatalf("options: %+v", f.stats)
	}

	// Streamed by default, until the client goes.
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.moby.localhost/v1.41/containers/web/stats", nil)
	sresp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(sresp.Body)
	for i := 1; i <= 3; i++ {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if s.CPUStats.CPUUsage.TotalUsage != uint64(i)*1000 {
			t.Fatalf("sample %d: %+v", i, s.CPUStats)
		}
	}
	cancel()
	sresp.Body.Close()
	select {
	case <-f.streams:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end when the client went away")
	}
	if !f.stats[2].Stream {
		t.Fatalf("default is not a stream: %+v", f.stats[2])
	}

	resp, body = ts.do(t, http.MethodGet, "/v1.41/containers/nope/stats?stream=false")
	wantErrorBody(t, resp, body, http.StatusNotFound, "No such container: nope")
	resp, body = ts.do(t, http.MethodGet, "/v1.41/containers/web/stats?stream=1&one-shot=1")
	wantErrorBody(t, resp, body, http.StatusBadRequest, "cannot have stream=true and one-shot=true")
}

func TestUpdateRoute(t *testing.T) {
	f := newFakeOps()
	ts := startUnix(t, Options{}, Backends{Containers: f})
	resp, body := ts.send(t, http.MethodPost, "/v1.41/containers/web/update", `{"Memory":67108864,"NanoCpus":500000000,"PidsLimit":10,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}`)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"Warnings":[]}` {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	u := f.updates[0]
	if u.Memory != 64<<20 || u.NanoCPUs != 5e8 || u.PidsLimit == nil || *u.PidsLimit != 10 || u.RestartPolicy.Name != "on-failure" || u.RestartPolicy.MaximumRetryCount != 2 {
		t.Fatalf("decoded: %+v", u)
	}
	if resp, _ := ts.send(t, http.MethodPost, "/v1.41/containers/web/update", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("empty update: %d", resp.StatusCode)
	}
	resp, body = ts.send(t, http.MethodPost, "/v1.41/containers/web/update", `{"Memory":`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.send(t, http.MethodPost, "/v1.41/containers/web/update", `{"RestartPolicy":{"Name":"always"}}`)
	wantErrorBody(t, resp, body, http.StatusConflict, "Cannot update container "+fakeOpsID+": Restart policy cannot be updated because AutoRemove is enabled for the container")
	resp, body = ts.send(t, http.MethodPost, "/v1.41/containers/nope/update", `{}`)
	wantErrorBody(t, resp, body, http.StatusNotFound, "No such container: nope")
}
