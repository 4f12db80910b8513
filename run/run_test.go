package run

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
)

func TestRunEchoWritesJSONLog(t *testing.T) {
	e := newEnv(t)
	id, code, out := e.run([]string{"echo", "hi"})
	if code != 0 || out != "hi\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	ins := e.inspect(id)
	if ins.State.Status != container.StateExited || ins.State.ExitCode != 0 || ins.State.Running || ins.State.Pid != 0 {
		t.Fatalf("state after exit: %+v", ins.State)
	}
	if ins.State.StartedAt == "0001-01-01T00:00:00Z" || ins.State.FinishedAt == "0001-01-01T00:00:00Z" {
		t.Fatalf("times not recorded: %+v", ins.State)
	}
	b, err := os.ReadFile(ins.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]string
	if err := json.Unmarshal(b, &entry); err != nil {
		t.Fatalf("log line %q: %v", b, err)
	}
	if entry["log"] != "hi\n" || entry["stream"] != "stdout" {
		t.Fatalf("log entry %v", entry)
	}
	if _, err := time.Parse(time.RFC3339Nano, entry["time"]); err != nil {
		t.Fatalf("log time %q: %v", entry["time"], err)
	}
	if !strings.HasSuffix(ins.LogPath, "/"+id+"/"+id+"-json.log") {
		t.Errorf("log path %s", ins.LogPath)
	}
	acts := strings.Join(e.actions(id), ",")
	if acts != "create,start,die" {
		t.Errorf("events: %s", acts)
	}
	// The run's bundle, netns and mount are gone once it exited.
	if _, err := os.Stat(e.m.bundleDir(id)); !os.IsNotExist(err) {
		t.Errorf("bundle kept after exit: %v", err)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Errorf("mounts kept after exit: %v", mnts)
	}
}

func TestExitCodeAndStatusText(t *testing.T) {
	e := newEnv(t)
	id, code, _ := e.run([]string{"sh", "-c", "echo oops >&2; exit 3"})
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	stderr := e.logs(id, LogsOptions{Stderr: true, Tail: -1})
	if stderr != "oops\n" {
		t.Fatalf("stderr %q", stderr)
	}
	if out := e.logs(id, LogsOptions{Stdout: true, Tail: -1}); out != "" {
		t.Fatalf("stdout %q", out)
	}
	list, err := e.m.List(context.Background(), ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !strings.HasPrefix(list[0].Status, "Exited (3) ") || !strings.HasSuffix(list[0].Status, " ago") {
		t.Fatalf("list: %+v", list)
	}
	if list[0].Command != "sh -c echo oops >&2; exit 3" || list[0].Names[0][0] != '/' {
		t.Errorf("summary %+v", list[0])
	}
}

func TestMissingExecutableFailsStartCleanly(t *testing.T) {
	e := newEnv(t)
	id := e.create([]string{"nope"})
	err := e.m.Start(context.Background(), id)
	if err == nil {
		t.Fatal("start of a missing executable succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, `exec: "nope": executable file not found in $PATH`) ||
		!strings.HasPrefix(msg, "failed to create task for container: ") || !strings.HasSuffix(msg, ": unknown") {
		t.Fatalf("error text: %s", msg)
	}
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("error class: %v", err)
	}
	ins := e.inspect(id)
	if ins.State.ExitCode != 127 || ins.State.Error == "" || ins.State.Status != container.StateCreated {
		t.Fatalf("state after failed start: %+v", ins.State)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Fatalf("mounts after failed start: %v", mnts)
	}
	for _, d := range cgroupDirs(e.cgroupParent) {
		if _, err := os.Stat(filepath.Join(d, id)); err == nil {
			t.Fatalf("cgroup left: %s", filepath.Join(d, id))
		}
	}
	if _, err := os.Stat(e.m.bundleDir(id)); !os.IsNotExist(err) {
		t.Fatalf("bundle left: %v", err)
	}
	// A directory is not executable: 126 territory.
	id2 := e.create([]string{"/etc"})
	err = e.m.Start(context.Background(), id2)
	if err == nil || !(strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "is a directory")) {
		t.Fatalf("start of a directory: %v", err)
	}
	if ins := e.inspect(id2); ins.State.ExitCode != 126 {
		t.Fatalf("exit code for a directory: %d", ins.State.ExitCode)
	}
}

func TestFailedStartWithAutoRemoveLeavesNothing(t *testing.T) {
	e := newEnv(t)
	id := e.create([]string{"nope"}, func(r *CreateRequest) { r.HostConfig.AutoRemove = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	removed, err := e.m.Wait(ctx, id, container.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(ctx, id); err == nil {
		t.Fatal("start succeeded")
	}
	select {
	case res := <-removed:
		if res.StatusCode != 127 {
			t.Errorf("removed wait status %d", res.StatusCode)
		}
	case <-ctx.Done():
		t.Fatal("wait removed did not resolve after a failed start")
	}
	if _, err := e.m.Inspect(ctx, id, false); !errdefs.IsNotFound(err) {
		t.Fatalf("record kept: %v", err)
	}
	if _, err := e.store.RWLayerOf(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("layer kept: %v", err)
	}
	if _, err := os.Stat(e.m.containerDir(id)); !os.IsNotExist(err) {
		t.Fatalf("container dir kept: %v", err)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Fatalf("mounts: %v", mnts)
	}
	for _, d := range cgroupDirs(e.cgroupParent) {
		if _, err := os.Stat(filepath.Join(d, id)); err == nil {
			t.Fatalf("cgroup left: %s", filepath.Join(d, id))
		}
	}
	// A successful --rm run is removed after its exit too.
	id = e.create([]string{"true"}, func(r *CreateRequest) { r.HostConfig.AutoRemove = true })
	removed, _ = e.m.Wait(ctx, id, container.WaitConditionRemoved)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-removed:
		if res.StatusCode != 0 {
			t.Errorf("status %d", res.StatusCode)
		}
	case <-ctx.Done():
		t.Fatal("--rm container not removed")
	}
	if e.m.Exists(id) {
		t.Fatal("--rm container still listed")
	}
}

func TestEnvWorkdirUserHostname(t *testing.T) {
	e := newEnv(t)
	_, code, out := e.run([]string{"sh", "-c", `echo "$FOO|$(pwd)|$(id -u):$(id -g)|$(hostname)|$HOSTNAME|$(cat /etc/hostname)"`}, func(r *CreateRequest) {
		r.Config.Env = []string{"FOO=bar baz"}
		r.Config.WorkingDir = "/work/dir"
		r.Config.User = "nobody"
		r.Config.Hostname = "box1"
	})
	if code != 0 || out != "bar baz|/work/dir|65534:65534|box1|box1|box1\n" {
		t.Fatalf("exit %d output %q", code, out)
	}
	_, _, out = e.run([]string{"id"}, func(r *CreateRequest) { r.Config.User = "www-data:nogroup" })
	if !strings.HasPrefix(out, "uid=33") || !strings.Contains(out, "gid=65534") {
		t.Fatalf("id as www-data:nogroup: %q", out)
	}
	id := e.create([]string{"id"}, func(r *CreateRequest) { r.Config.User = "nosuchuser" })
	err := e.m.Start(context.Background(), id)
	if err == nil || !strings.Contains(err.Error(), "no matching entries in passwd file") {
		t.Fatalf("unknown user: %v", err)
	}
	// Default hostname is the short ID; /etc/hosts maps it.
	id, _, out = e.run([]string{"sh", "-c", "hostname; cat /etc/hosts"})
	if !strings.HasPrefix(out, id[:12]+"\n") || !strings.Contains(out, "127.0.0.1\tlocalhost\n") ||
		!strings.Contains(out, "::1\tlocalhost ip6-localhost ip6-loopback\n") || !strings.Contains(out, "\t"+id[:12]+"\n") {
		t.Fatalf("hostname and hosts: %q", out)
	}
}

func TestNetworkModes(t *testing.T) {
	e := newEnv(t)
	for _, mode := range []string{"", "none", "bridge"} {
		_, code, out := e.run([]string{"sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; cat /proc/net/dev | grep -c :"},
			func(r *CreateRequest) { r.HostConfig.NetworkMode = container.NetworkMode(mode) })
		if code != 0 || !strings.HasPrefix(out, "lo\n") || !strings.HasSuffix(out, "\n1\n") {
			t.Errorf("network %q: exit %d, %q", mode, code, out)
		}
		if !strings.Contains(out, "unknown") && !strings.Contains(out, "up") {
			t.Errorf("network %q: lo not up: %q", mode, out)
		}
	}
	hostIfs, _ := os.ReadDir("/sys/class/net")
	hostname, _ := os.Hostname()
	_, code, out := e.run([]string{"sh", "-c", "ls /sys/class/net | wc -l; hostname"},
		func(r *CreateRequest) { r.HostConfig.NetworkMode = "host" })
	want := strings.TrimSpace(itoa(len(hostIfs))) + "\n" + hostname + "\n"
	if code != 0 || strings.ReplaceAll(out, " ", "") != want {
		t.Errorf("host network: exit %d, %q, want %q", code, out, want)
	}
	// A network that does not exist is a 404 as in dockerd.
	_, err := e.m.Create(context.Background(), CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{NetworkMode: "nosuchnet"}})
	if !errdefs.IsNotFound(err) || err.Error() != "network nosuchnet not found" {
		t.Errorf("unknown network: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := func() *container.Config { return &container.Config{Image: "busybox", Cmd: []string{"true"}} }
	_, err := e.m.Create(ctx, CreateRequest{Config: &container.Config{Image: "nosuch", Cmd: []string{"true"}}})
	if !errdefs.IsNotFound(err) || err.Error() != "No such image: nosuch:latest" {
		t.Errorf("missing image: %v", err)
	}
	resp, err := e.m.Create(ctx, CreateRequest{Name: "web", Config: cfg()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Create(ctx, CreateRequest{Name: "/web", Config: cfg()})
	want := `Conflict. The container name "/web" is already in use by container "` + resp.ID + `". You have to remove (or rename) that container to be able to reuse that name.`
	if !errdefs.IsConflict(err) || err.Error() != want {
		t.Errorf("name conflict: %v", err)
	}
	cases := []struct {
		name string
		hc   container.HostConfig
		cfg  func(*container.Config)
		want string
	}{
		{"negative memory", container.HostConfig{Resources: container.Resources{Memory: -1}}, nil, "Minimum memory limit allowed is 6MB"},
		{"unknown capability", container.HostConfig{CapAdd: []string{"NOPE"}}, nil, `unknown capability: "CAP_NOPE"`},
		{"bad bind", container.HostConfig{Binds: []string{"/a:/b:/c:/d"}}, nil, "invalid volume specification: '/a:/b:/c:/d'"},
		{"bad mode", container.HostConfig{Binds: []string{"/a:/b:xyz"}}, nil, "invalid mode: xyz"},
		{"relative target", container.HostConfig{Binds: []string{"/a:b"}}, nil, "invalid volume specification: '/a:b'"},
		{"ulimit above hard", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1 << 40, Hard: 1 << 40}}}}, nil, "ulimit nofile: hard limit"},
		{"soft above hard", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}}, nil, "ulimit soft limit must be less than or equal to hard limit"},
		{"unknown ulimit", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}}, nil, "invalid ulimit type: bogus"},
		{"bad log driver", container.HostConfig{LogConfig: container.LogConfig{Type: "syslogx"}}, nil, "no log driver named 'syslogx'"},
		{"bad log opt", container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"colour": "red"}}}, nil, "unknown log opt 'colour' for json-file log driver"},
		{"relative workdir", container.HostConfig{}, func(c *container.Config) { c.WorkingDir = "rel" }, "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{"rm with restart", container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, nil, "can't create 'AutoRemove' container with restart policy"},
		{"bad security opt", container.HostConfig{SecurityOpt: []string{"bogus"}}, nil, "invalid --security-opt"},
		{"mount source missing", container.HostConfig{Mounts: []mounttypes.Mount{{Type: "bind", Source: "/nonexistent/x", Target: "/x"}}}, nil, "bind source path does not exist: /nonexistent/x"},
		{"unknown runtime", container.HostConfig{Runtime: "kata"}, nil, "unknown or invalid runtime name: kata"},
	}
	for _, tc := range cases {
		hc := tc.hc
		c := cfg()
		if tc.cfg != nil {
			tc.cfg(c)
		}
		_, err := e.m.Create(ctx, CreateRequest{Config: c, HostConfig: &hc})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want 400 %q)", tc.name, err, tc.want)
		}
	}
	_, err = e.m.Create(ctx, CreateRequest{Name: "bad name!", Config: cfg()})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "Invalid container name (bad name!)") {
		t.Errorf("invalid name: %v", err)
	}
	// Only the one good container exists; failed creates left nothing.
	list, _ := e.m.List(ctx, ListOptions{All: true})
	if len(list) != 1 {
		t.Errorf("containers after failed creates: %d", len(list))
	}
	rws, _ := e.store.RWLayers(ctx)
	if len(rws) != 1 {
		t.Errorf("container layers after failed creates: %d", len(rws))
	}
	entries, _ := os.ReadDir(e.cfg.Root)
	if len(entries) != 1 {
		t.Errorf("container dirs after failed creates: %d", len(entries))
	}
	if _, err := e.m.Inspect(ctx, "nosuch", false); !errdefs.IsNotFound(err) || err.Error() != "No such container: nosuch" {
		t.Errorf("inspect missing: %v", err)
	}
	if err := e.m.Start(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("start missing: %v", err)
	}
}
