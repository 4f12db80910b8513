package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/run"
	"github.com/moby/moby/api/types/container"
)

// fakeList is a containers backend with only List and Generation.
type fakeList struct {
	Containers

	mu    sync.Mutex
	gen   uint64
	list  []container.Summary
	opts  []run.ListOptions
	calls int
}

func (f *fakeList) Generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

func (f *fakeList) List(_ context.Context, opts run.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.opts = append(f.opts, opts)
	out := make([]container.Summary, len(f.list))
	copy(out, f.list)
	return out, nil
}

func (f *fakeList) set(fn func(f *fakeList)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// TestContainerListAnswerKept: within one generation an answer is only
// re-encoded when a Status text ages; any other change comes with a new
// generation (run's contract), so the fake changes a name without one to
// show which answers came from the cache.
func TestContainerListAnswerKept(t *testing.T) {
	f := &fakeList{gen: 1, list: []container.Summary{
		{ID: "a1", Names: []string{"/one"}, State: container.StateRunning, Status: "Up 2 seconds"},
		{ID: "b2", Names: []string{"/two"}, State: container.StateCreated, Status: "Created"},
	}}
	ts := startUnix(t, Options{}, Backends{Containers: f})
	get := func(path string) string {
		t.Helper()
		resp, body := ts.do(t, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	first := get("/v1.41/containers/json?all=1")
	want, err := encodeJSON(f.list)
	if err != nil {
		t.Fatal(err)
	}
	if first != string(want) {
		t.Fatalf("answer\n%s\nwant WriteJSON's encoding\n%s", first, want)
	}

	f.set(func(f *fakeList) { f.list[1].Names = []string{"/changed-without-generation"} })
	if got := get("/v1.41/containers/json?all=1"); got != first {
		t.Fatalf("same generation and statuses: answer re-encoded:\n%s", got)
	}
	if f.calls != 2 {
		t.Fatalf("List called %d times; the statuses are read from it every time", f.calls)
	}

	f.set(func(f *fakeList) { f.list[0].Status = "Up 3 seconds" })
	if got := get("/v1.41/containers/json?all=1"); !strings.Contains(got, "Up 3 seconds") || !strings.Contains(got, "changed-without-generation") {
		t.Fatalf("an aged status must give a fresh answer:\n%s", got)
	}

	f.set(func(f *fakeList) { f.gen = 2; f.list[0].Names = []string{"/renamed"} })
	if got := get("/v1.41/containers/json?all=1"); !strings.Contains(got, "/renamed") {
		t.Fatalf("a new generation must give a fresh answer:\n%s", got)
	}

	// Other queries are answers of their own; sizes and filters are
	// never kept (they depend on more than the containers).
	if got := get("/v1.41/containers/json"); !strings.Contains(got, "/renamed") {
		t.Fatalf("plain list: %s", got)
	}
	for i, q := range []string{"all=1&size=1", `all=1&filters={"name":["one"]}`} {
		get("/v1.41/containers/json?" + q)
		name := fmt.Sprintf("/again-%d", i)
		f.set(func(f *fakeList) { f.list[0].Names = []string{name} })
		if got := get("/v1.41/containers/json?" + q); !strings.Contains(got, name) {
			t.Fatalf("%s: answer was kept:\n%s", q, got)
		}
	}
}

// TestActivityCountsRoutedRequests: the daemon's idle detection sees every
// routed request end, answered or refused.
func TestActivityCountsRoutedRequests(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{Containers: &fakeList{gen: 1}})
	_, before := ts.Activity()
	ts.do(t, http.MethodGet, "/v1.41/containers/json")
	ts.do(t, http.MethodGet, "/v1.41/no/such/route")
	// The handler finishes just after the client has its answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		inflight, after := ts.Activity()
		if inflight == 0 && after == before+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("inflight %d, ended %d → %d; want 0 and +2", inflight, before, after)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
