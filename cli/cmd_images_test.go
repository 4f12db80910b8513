package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// lastQuery returns the decoded query of the last logged request whose
// path ends with suffix.
func lastQuery(t *testing.T, f *fakeEngine, method, suffix string) url.Values {
	t.Helper()
	log := f.requestLog()
	for i := len(log) - 1; i >= 0; i-- {
		m, uri, _ := strings.Cut(log[i], " ")
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		if m == method && strings.HasSuffix(u.Path, suffix) {
			return u.Query()
		}
	}
	t.Fatalf("no %s …%s in %q", method, suffix, log)
	return nil
}

func TestTagThenRmiChangesListing(t *testing.T) {
	f := startFakeEngine(t)
	if got := runBerth(t, f.host(), nil, "", "tag", "busybox:v1", "127.0.0.1:5000/mirror/busybox:copy"); got.code != 0 || got.stdout != "" || got.stderr != "" {
		t.Fatalf("tag: %+v", got)
	}
	q := lastQuery(t, f, "POST", "/images/busybox:v1/tag")
	if q.Get("repo") != "127.0.0.1:5000/mirror/busybox" || q.Get("tag") != "copy" {
		t.Fatalf("tag query %v", q)
	}
	got := runBerth(t, f.host(), nil, "", "images", "--format", "{{.Repository}}:{{.Tag}}", "127.0.0.1:5000/mirror/busybox")
	// The daemon lists the whole image, with all its names.
	if got.stdout != "busybox:latest\nbusybox:v1\n127.0.0.1:5000/mirror/busybox:copy\n" {
		t.Fatalf("images after tag: %q", got.stdout)
	}

	// rmi goes on after a failure and reports each error; exit 1.
	got = runBerth(t, f.host(), nil, "", "rmi", "nope", "127.0.0.1:5000/mirror/busybox:copy", "busybox:v1")
	if got.code != 1 {
		t.Fatalf("rmi exit %d", got.code)
	}
	if got.stdout != "Untagged: 127.0.0.1:5000/mirror/busybox:copy\nUntagged: busybox:v1\n" {
		t.Fatalf("rmi stdout %q", got.stdout)
	}
	if got.stderr != "Error response from daemon: No such image: nope:latest\n" {
		t.Fatalf("rmi stderr %q", got.stderr)
	}

	// Removing the last tag deletes the image and its layers.
	got = runBerth(t, f.host(), nil, "", "image", "rm", "busybox")
	want := fmt.Sprintf("Untagged: busybox:latest\nUntagged: busybox@%s\nDeleted: %s\nDeleted: sha256:%s\n", digestBusybox, idBusybox, strings.Repeat("9a", 32))
	if got.code != 0 || got.stdout != want {
		t.Fatalf("rmi last tag: %d %q", got.code, got.stdout)
	}
	if q := lastQuery(t, f, "DELETE", "/images/busybox"); q.Get("force") != "" || q.Get("noprune") != "" {
		t.Fatalf("rmi query %v", q)
	}
	got = runBerth(t, f.host(), nil, "", "images", "-q", "--no-trunc")
	if strings.Contains(got.stdout, idBusybox) {
		t.Fatalf("busybox still listed:\n%s", got.stdout)
	}

	// -f: a missing image is only a warning.
	got = runBerth(t, f.host(), nil, "", "rmi", "-f", "--no-prune", "nope")
	if got.code != 0 || got.stderr != "Error response from daemon: No such image: nope:latest\n" {
		t.Fatalf("rmi -f missing: %+v", got)
	}
	if q := lastQuery(t, f, "DELETE", "/images/nope"); q.Get("force") != "1" || q.Get("noprune") != "1" {
		t.Fatalf("rmi -f query %v", q)
	}
}

func TestTagRefusesDigestTarget(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "", "tag", "busybox", "busybox@"+digestBusybox)
	if got.code != 1 || got.stderr != "refusing to create a tag with a digest reference\n" {
		t.Fatalf("%+v", got)
	}
	if len(f.requestLog()) != 0 {
		t.Fatalf("requests were sent: %q", f.requestLog())
	}
}

func TestImagesFiltersQuery(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "", "images", "-a", "-f", "label=a=b", "--filter", " Dangling = false ", "busybox")
	if got.code != 0 {
		t.Fatalf("%+v", got)
	}
	q := lastQuery(t, f, "GET", "/images/json")
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(q.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]bool{"label": {"a=b": true}, "dangling": {"false": true}, "reference": {"busybox": true}}
	if fmt.Sprint(filters) != fmt.Sprint(want) || q.Get("all") != "1" {
		t.Fatalf("query %v, filters %v", q, filters)
	}
	want2 := "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\n" +
		"busybox      latest    a1b2c3d4a1b2   3 days ago   4.26MB\n" +
		"busybox      v1        a1b2c3d4a1b2   3 days ago   4.26MB\n"
	if got.stdout != want2 {
		t.Fatalf("stdout:\n%s\nwant:\n%s", got.stdout, want2)
	}
}

func TestImagePrunePrompt(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "no\n", "image", "prune")
	if got.code != 0 || got.stdout != "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] " {
		t.Fatalf("declined: %+v", got)
	}
	for _, r := range f.requestLog() {
		if strings.Contains(r, "/images/prune") {
			t.Fatalf("prune sent after no: %q", r)
		}
	}

	got = runBerth(t, f.host(), nil, "Y\n", "image", "prune", "-a", "--filter", "until=24h", "--filter", "label!=keep")
	want := "WARNING! This will remove all images without at least one container associated to them.\n" +
		"Are you sure you want to continue? [y/N] Deleted Images:\n" +
		"deleted: " + idNone + "\n" +
		"deleted: sha256:" + strings.Repeat("8b", 32) + "\n\n" +
		"Total reclaimed space: 3.072kB\n"
	if got.code != 0 || got.stdout != want {
		t.Fatalf("accepted: %d\n%s\nwant\n%s", got.code, got.stdout, want)
	}
	q := lastQuery(t, f, "POST", "/images/prune")
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(q.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if !filters["dangling"]["false"] || !filters["until"]["24h"] || !filters["label!"]["keep"] {
		t.Fatalf("prune filters %v", filters)
	}
}

func TestHistoryDefaultTable(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "", "history", "busybox")
	want := "IMAGE          CREATED      CREATED BY                                      SIZE      COMMENT\n" +
		"a1b2c3d4a1b2   3 days ago   /bin/sh -c #(nop)  CMD [\"sh\"]                   0B        \n" +
		"<missing>      3 days ago   /bin/sh -c #(nop) ADD file:6b2d5ba1d4a2f6f0e…   4.26MB    imported   from a tar\n" +
		"<missing>      N/A          RUN echo tabs                                   12B       \n" +
		"<missing>      3 days ago   " + strings.Repeat("x", 45) + "   1.5MB     short\n"
	if got.code != 0 || got.stdout != want {
		t.Fatalf("history:\n%q\nwant:\n%q", got.stdout, want)
	}
}

func TestEventsDefaultFormat(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "", "events", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-03T00:00:00Z", "--filter", "type=image")
	ts := func(i int) string {
		return fakeEventTimes[i].In(time.Local).Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	want := ts(0) + " image tag " + idBusybox + " (name=busybox:v1)\n" +
		ts(1) + " image untag " + idApp + " (name=" + idApp + ")\n" +
		ts(2) + " container die " + strings.Repeat("f1", 32) + " (exitCode=0, image=busybox, name=web)\n"
	if got.code != 0 || got.stdout != want {
		t.Fatalf("events: %d\n%s\nwant\n%s\n%s", got.code, got.stdout, want, got.stderr)
	}
	q := lastQuery(t, f, "GET", "/events")
	since := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	if q.Get("since") != fmt.Sprintf("%d.000000000", since) || q.Get("until") != fmt.Sprintf("%d.000000000", since+86400) {
		t.Fatalf("events query %v", q)
	}
	if q.Get("filters") != `{"type":{"image":true}}` {
		t.Fatalf("events filters %q", q.Get("filters"))
	}

	got = runBerth(t, f.host(), nil, "", "events", "--since", "bogus")
	if got.code != 1 || got.stderr != "failed to parse value as time or duration: \"bogus\"\n" {
		t.Fatalf("bad since: %+v", got)
	}
}

func TestInspectTemplates(t *testing.T) {
	f := startFakeEngine(t)
	// One template per object; the typed fields and the raw fallback
	// (VirtualSize is not in the client's image type) both work, and a
	// missing object is reported after the others were printed.
	got := runBerth(t, f.host(), nil, "", "inspect", "--type", "image", "-f", "{{.Os}} {{.VirtualSize}} {{join .RepoTags \",\"}}", "busybox", "nope", "127.0.0.1:5000/team/app:1.0")
	want := "linux 4261550 busybox:latest,busybox:v1\nlinux 123456789 127.0.0.1:5000/team/app:1.0,127.0.0.1:5000/team/app:stable\n"
	if got.code != 1 || got.stdout != want || got.stderr != "Error response from daemon: No such image: nope:latest\n" {
		t.Fatalf("inspect: %d %q %q", got.code, got.stdout, got.stderr)
	}
	// A field nobody has is an error on the raw fallback.
	got = runBerth(t, f.host(), nil, "", "image", "inspect", "-f", "{{.NoSuchField}}", "busybox")
	if got.code != 1 || !strings.Contains(got.stderr, `map has no entry for key "NoSuchField"`) {
		t.Fatalf("missing key: %d %q %q", got.code, got.stdout, got.stderr)
	}
	got = runBerth(t, f.host(), nil, "", "inspect", "-f", "{{.Os", "busybox")
	if got.code != 64 || !strings.HasPrefix(got.stderr, "template parsing error: ") {
		t.Fatalf("bad template: %d %q", got.code, got.stderr)
	}
}

func TestVersionAndInfoClientSections(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), nil, "", "version")
	for _, want := range []string{"Client:\n Version:           dev\n API version:       1.41 (downgraded from 1.56)\n Go version:        go",
		"\n Context:           default\n\nServer:\n Engine:\n  Version:          0.1.0-test\n  API version:      1.41 (minimum version 1.24)\n",
		"  Built:            Fri Jan  2 03:04:05 2026\n", " runc:\n  Version:          1.5.2\n  GitCommit:        v1.5.2-0-gdeadbee\n"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("version lacks %q:\n%s", want, got.stdout)
		}
	}
	got = runBerth(t, f.host(), nil, "", "-D", "info")
	if !strings.HasPrefix(got.stdout, "Client:\n Version:    dev\n Context:    default\n Debug Mode: true\n\nServer:\n Containers: 3\n") ||
		!strings.Contains(got.stdout, " Insecure Registries:\n  127.0.0.1:5000\n  127.0.0.0/8\n Registry Mirrors:\n  https://mirror.example/\n") {
		t.Fatalf("info:\n%s", got.stdout)
	}
	got = runBerth(t, f.host(), nil, "", "info", "--format", "{{json .ClientInfo.Plugins}} {{.ServerVersion}}")
	if got.code != 0 || got.stdout != "[] 0.1.0-test\n" {
		t.Fatalf("info format: %+v", got)
	}
	got = runBerth(t, f.host(), nil, "", "version", "--format", "json")
	var v struct {
		Client map[string]any
		Server map[string]any
	}
	if err := json.Unmarshal([]byte(got.stdout), &v); err != nil || v.Server["ApiVersion"] != "1.41" || v.Client["ApiVersion"] != "1.41" {
		t.Fatalf("version json: %v %q", err, got.stdout)
	}
}

func TestAPIVersionFromEnvironment(t *testing.T) {
	f := startFakeEngine(t)
	got := runBerth(t, f.host(), map[string]string{"DOCKER_API_VERSION": "1.40"}, "", "images", "-q")
	if got.code != 0 {
		t.Fatalf("%+v", got)
	}
	if log := f.requestLog(); len(log) != 1 || !strings.HasPrefix(log[0], "GET /v1.40/images/json") {
		t.Fatalf("requests %q", log)
	}
}
