package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/fixtures/load"
	"github.com/berth-dev/berth/mount"
)

// imageStore is a real chain store holding the busybox fixture as
// busybox:latest and 127.0.0.1:5000/team/bb:v1.
func imageStore(t *testing.T) *chain.Store {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	st, err := cas.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drv, err := mount.New(ctx, "vfs", filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := chain.Open(ctx, st, drv, chain.WithDeviceNodes(true))
	if err != nil {
		t.Fatal(err)
	}
	img, err := fixtures.BusyboxImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load.LoadImage(ctx, s, img, "busybox:latest", "127.0.0.1:5000/team/bb:v1"); err != nil {
		t.Fatal(err)
	}
	return s
}

// The image endpoints' answers fit the Engine API's own schema.
func TestImageEndpointsMatchSwagger(t *testing.T) {
	doc := loadSwagger(t)
	defs := doc["definitions"].(map[string]any)
	ts := startUnix(t, Options{}, Backends{Images: imageStore(t)})
	for path, spec := range map[string]string{
		"/images/json":                              "/images/json",
		"/images/busybox/json":                      "/images/{name}/json",
		"/images/127.0.0.1:5000/team/bb:v1/json":    "/images/{name}/json",
		"/images/127.0.0.1:5000/team/bb:v1/history": "/images/{name}/history",
	} {
		resp, body := ts.do(t, http.MethodGet, "/v1.41"+path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		c := &schemaChecker{t: t, defs: defs}
		c.check(path, responseSpec(t, doc, spec, "get")["schema"].(map[string]any), v)
		for _, e := range c.errs {
			t.Errorf("%s does not match swagger: %s", path, e)
		}
	}
}

func TestImageListFiltersAndCache(t *testing.T) {
	store := imageStore(t)
	ts := startUnix(t, Options{}, Backends{Images: store})
	list := func(q string) []ImageSummary {
		t.Helper()
		resp, body := ts.do(t, http.MethodGet, "/v1.41/images/json"+q)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
		var out []ImageSummary
		json.Unmarshal(body, &out)
		return out
	}
	all := list("")
	if len(all) != 1 || len(all[0].RepoTags) != 2 || all[0].Containers != -1 || all[0].VirtualSize != all[0].Size {
		t.Fatalf("list: %+v", all)
	}
	if got := list(`?filters={"reference":{"busybox":true}}`); len(got) != 1 || strings.Join(got[0].RepoTags, ",") != "busybox:latest" {
		t.Fatalf("reference filter: %+v", got)
	}
	if got := list(`?filters={"dangling":{"true":true}}`); len(got) != 0 {
		t.Fatalf("dangling filter: %+v", got)
	}
	// A change to the store is seen by the next (cached) answer.
	if _, err := store.DeleteImage(context.Background(), "127.0.0.1:5000/team/bb:v1", false, false); err != nil {
		t.Fatal(err)
	}
	if got := list(""); len(got) != 1 || len(got[0].RepoTags) != 1 {
		t.Fatalf("after untag the cached list is stale: %+v", got)
	}
	resp, body := ts.do(t, http.MethodGet, `/v1.41/images/json?filters={"nope":{"x":true}}`)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid filter 'nope'") {
		t.Fatalf("bad filter: %d %s", resp.StatusCode, body)
	}
}
