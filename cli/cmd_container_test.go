package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// psFixture is what the fake's GET /containers/json answers: names with
// a legacy link alias, published and exposed port ranges, long commands,
// images by name, ID and digest, labels, mounts.
func psFixture(now time.Time) []container.Summary {
	bridge := &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{"bridge": {}}}
	return []container.Summary{
		{
			ID: strings.Repeat("a1", 32), Names: []string{"/web", "/other/alias"},
			Image: "127.0.0.1:5000/team/app:1.0", ImageID: idApp,
			Command: "/docker-entrypoint.sh nginx -g 'daemon off;'", Created: now.Add(-3*time.Hour - 10*time.Minute).Unix(),
			Ports: []container.PortSummary{
				{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				{PrivatePort: 443, Type: "tcp"}, {PrivatePort: 444, Type: "tcp"}, {PrivatePort: 53, Type: "udp"},
			},
			Labels: map[string]string{"b": "2", "a": "1"}, State: "running", Status: "Up 3 hours",
			SizeRw: 1234, SizeRootFs: 4261550, NetworkSettings: bridge,
			Mounts: []container.MountPoint{
				{Type: "volume", Name: "data", Driver: "local", Destination: "/data"},
				{Type: "bind", Source: "/very/long/host/path/here", Destination: "/x"},
			},
		},
		{
			ID: strings.Repeat("b2", 32), Names: []string{"/job"}, Image: "busybox", ImageID: idBusybox,
			Command: "sh -c 'exit 3'", Created: now.Add(-50*time.Minute - 20*time.Second).Unix(),
			State: "exited", Status: "Exited (3) 10 seconds ago", NetworkSettings: bridge,
		},
		{
			ID: strings.Repeat("c3", 32), Names: []string{"/byid"}, Image: idAlpine, ImageID: idAlpine,
			Command: "日本語のコマンドライン引数", Created: now.Add(-26*time.Hour - 10*time.Minute).Unix(),
			State: "created", Status: "Created",
		},
		{
			ID: strings.Repeat("d4", 32), Names: []string{"/pinned"}, Image: "busybox:v1@" + digestBusybox, ImageID: idBusybox,
			Command: "", Created: now.Add(-9 * 24 * time.Hour).Unix(),
			State: "exited", Status: "Exited (137) 8 days ago",
		},
	}
}

// cliCase is one command line run by both CLIs, after setup commands run
// by berth on each fake (IDs are deterministic, so both fakes end up in
// the same state).
type cliCase struct {
	name  string
	setup [][]string
	args  []string
	stdin string
	// pulled: busybox is already local.
	pulled bool
}

// logLine is a docker CLI logger line; its timestamp differs between two
// runs.
var logLine = regexp.MustCompile(`(?m)^time="[^"]*" level=error msg=.*\n`)

// TestContainerCommandsSameAsDockerCLI runs docker 28.2.2 and berth with
// the same arguments against the same fake engine and requires the same
// stdout, stderr ("berth" for "docker") and exit status.
func TestContainerCommandsSameAsDockerCLI(t *testing.T) {
	running := [][]string{{"run", "-d", "--name", "s", "busybox", "sleep"}}
	cases := []cliCase{
		{name: "run auto-pull", args: []string{"run", "busybox", "echo", "hi"}},
		{name: "run rm exit 3", args: []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, pulled: true},
		{name: "run not found 127", args: []string{"run", "--rm", "busybox", "nope"}, pulled: true},
		{name: "run directory 126", args: []string{"run", "--rm", "busybox", "/etc"}, pulled: true},
		{name: "run permission 126", args: []string{"run", "busybox", "/secret"}, pulled: true},
		{name: "run other failure 125", args: []string{"run", "busybox", "broken"}, pulled: true},
		{name: "run stdout and stderr", args: []string{"run", "busybox", "both"}, pulled: true},
		{name: "run attach stderr only", args: []string{"run", "-a", "stderr", "busybox", "both"}, pulled: true},
		{name: "run stdin", args: []string{"run", "-i", "--rm", "busybox", "cat"}, stdin: "piped in\nsecond line\n", pulled: true},
		{name: "run detached", args: []string{"run", "-d", "busybox", "sleep"}, pulled: true},
		{name: "run detached quiet pull", args: []string{"run", "-d", "-q", "busybox", "echo", "x"}},
		{name: "run pull never", args: []string{"run", "--pull", "never", "busybox", "echo"}},
		{name: "run pull always", args: []string{"run", "--pull", "always", "busybox", "echo", "x"}, pulled: true},
		{name: "run pull missing image", args: []string{"run", "nosuch/thing"}},
		{name: "run name conflict", setup: running, args: []string{"run", "--name", "s", "busybox", "echo"}, pulled: true},
		{name: "run bad pull option", args: []string{"run", "--pull", "sometimes", "busybox"}},
		{name: "run rm and restart", args: []string{"run", "--rm", "--restart", "always", "busybox"}},
		{name: "run detach and attach", args: []string{"run", "-d", "-a", "stdout", "busybox"}},
		{name: "run tty without terminal", args: []string{"run", "-it", "busybox"}},
		{name: "run bad volume spec", args: []string{"run", "-v", "/x:/y:ro:z", "busybox"}},
		{name: "run bad env", args: []string{"run", "-e", "=x", "busybox"}},
		{name: "run bad attach", args: []string{"run", "-a", "stdsomething", "busybox"}},
		{name: "run missing image arg", args: []string{"run"}},
		{name: "run unknown flag", args: []string{"run", "--nope", "busybox"}},
		{name: "run bad memory", args: []string{"run", "-m", "lots", "busybox"}},
		{name: "run bad restart", args: []string{"run", "--restart", ":3", "busybox"}},
		{name: "run bad security opt", args: []string{"run", "--security-opt", "label", "busybox"}},
		{name: "run log opts for none", args: []string{"run", "--log-driver", "none", "--log-opt", "max-size=1m", "busybox"}},
		{name: "create", args: []string{"create", "--name", "c1", "busybox", "echo", "hi"}, pulled: true},
		{name: "create auto-pull", args: []string{"create", "busybox"}},
		{name: "create pull never", args: []string{"create", "--pull", "never", "busybox"}},
		{name: "start", setup: [][]string{{"create", "--name", "c1", "busybox", "echo", "hi"}}, args: []string{"start", "c1"}, pulled: true},
		{name: "start attached", setup: [][]string{{"create", "--name", "c1", "busybox", "both"}}, args: []string{"start", "-a", "c1"}, pulled: true},
		{name: "start attached status", setup: [][]string{{"create", "--name", "c1", "busybox", "sh", "-c", "exit 4"}}, args: []string{"start", "-a", "c1"}, pulled: true},
		{name: "start missing", args: []string{"start", "nope", "nope2"}},
		{name: "start running", setup: running, args: []string{"start", "s"}, pulled: true},
		{name: "start attach two", args: []string{"start", "-a", "x", "y"}},
		{name: "stop", setup: running, args: []string{"stop", "-t", "1", "s", "nope"}, pulled: true},
		{name: "stop time and timeout", args: []string{"stop", "-t", "1", "--time", "2", "s"}},
		{name: "kill", setup: running, args: []string{"kill", "-s", "HUP", "s"}, pulled: true},
		{name: "kill stopped", setup: [][]string{{"create", "--name", "c1", "busybox"}}, args: []string{"kill", "c1"}, pulled: true},
		{name: "restart", setup: running, args: []string{"restart", "s"}, pulled: true},
		{name: "rm running", setup: running, args: []string{"rm", "s"}, pulled: true},
		{name: "rm force", setup: running, args: []string{"rm", "-f", "s", "nope"}, pulled: true},
		{name: "rm several", setup: [][]string{{"create", "--name", "c1", "busybox"}, {"create", "--name", "c2", "busybox"}},
			args: []string{"container", "rm", "c1", "nope", "c2"}, pulled: true},
		{name: "rm empty name", args: []string{"rm", "/"}},
		{name: "wait", setup: [][]string{{"run", "--name", "c1", "busybox", "sh", "-c", "exit 7"}}, args: []string{"wait", "c1", "nope"}, pulled: true},
		{name: "rename", setup: running, args: []string{"rename", "s", "t"}, pulled: true},
		{name: "rename missing", args: []string{"rename", "nope", "t"}},
		{name: "logs", setup: [][]string{{"run", "--name", "c1", "busybox", "both"}}, args: []string{"logs", "c1"}, pulled: true},
		{name: "logs tail", setup: [][]string{{"run", "--name", "c1", "busybox", "both"}}, args: []string{"container", "logs", "--tail", "1", "c1"}, pulled: true},
		{name: "logs missing", args: []string{"logs", "nope"}},
		{name: "container inspect format", setup: running, args: []string{"container", "inspect", "-f", "{{.Name}} {{.Config.Cmd}} {{.State.Running}}", "s"}, pulled: true},
		{name: "container inspect missing", args: []string{"container", "inspect", "nope"}},
		{name: "container prune", setup: [][]string{{"create", "busybox"}, {"run", "-d", "busybox", "sleep"}}, args: []string{"container", "prune", "-f"}, pulled: true},
		{name: "container prune declined", args: []string{"container", "prune"}, stdin: "n\n"},
		{name: "container prune nothing", args: []string{"container", "prune"}, stdin: "y\n"},
		{name: "ps", args: []string{"ps"}},
		{name: "ps all", args: []string{"ps", "-a"}},
		{name: "ps no-trunc", args: []string{"ps", "--no-trunc"}},
		{name: "ps quiet", args: []string{"ps", "-q"}},
		{name: "ps size", args: []string{"ps", "-s"}},
		{name: "ps json", args: []string{"ps", "--format", "json"}},
		{name: "ps raw", args: []string{"ps", "--format", "raw"}},
		{name: "ps raw size", args: []string{"ps", "-s", "--format", "raw"}},
		{name: "ps table", args: []string{"container", "ls", "--format", `table {{.ID}}\t{{.Labels}}\t{{.Label "a"}}\t{{.Mounts}}\t{{.LocalVolumes}}\t{{.Networks}}\t{{.State}}\t{{.CreatedAt}}\t{{.Platform}}`}},
		{name: "ps template size", args: []string{"ps", "--format", "{{.Names}} {{.Size}}"}},
		{name: "ps quiet and format", args: []string{"ps", "-q", "--format", "{{.Names}}"}},
		{name: "ps bad template", args: []string{"ps", "--format", "{{.Names"}},
		{name: "ps args", args: []string{"ps", "x"}},
		{name: "volume create", args: []string{"volume", "create", "--label", "k=v", "-o", "type=tmpfs", "v1"}},
		{name: "volume create both names", args: []string{"volume", "create", "--name", "a", "b"}},
		{name: "volume ls", setup: [][]string{{"volume", "create", "vol10"}, {"volume", "create", "vol9"}, {"volume", "create"}}, args: []string{"volume", "ls"}},
		{name: "volume ls quiet", setup: [][]string{{"volume", "create", "a"}, {"volume", "create", "b"}}, args: []string{"volume", "ls", "-q"}},
		{name: "volume ls json", setup: [][]string{{"volume", "create", "a"}}, args: []string{"volume", "ls", "--format", "json"}},
		{name: "volume ls format", setup: [][]string{{"volume", "create", "a"}}, args: []string{"volume", "ls", "--format", `table {{.Name}}\t{{.Mountpoint}}\t{{.Scope}}\t{{.Links}}\t{{.Size}}\t{{.Group}}\t{{.Status}}`}},
		{name: "volume inspect", setup: [][]string{{"volume", "create", "a"}}, args: []string{"volume", "inspect", "a", "nope"}},
		{name: "volume inspect format", setup: [][]string{{"volume", "create", "a"}}, args: []string{"volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Mountpoint}}", "a"}},
		{name: "volume rm", setup: [][]string{{"volume", "create", "a"}}, args: []string{"volume", "rm", "a", "nope"}},
		{name: "volume prune", setup: [][]string{{"volume", "create", "a"}, {"volume", "create"}}, args: []string{"volume", "prune", "-f"}},
		{name: "volume prune declined", args: []string{"volume", "prune"}, stdin: "n\n"},
		{name: "volume usage", args: []string{"volume"}},
		{name: "volume prune all at API 1.41", args: []string{"volume", "prune", "-a", "-f"}},
		{name: "run annotation at API 1.41", args: []string{"run", "--annotation", "a=b", "--health-start-interval", "1s", "busybox"}},
		{name: "volume unknown", args: []string{"volume", "nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			prepare := func() *fakeRuntime {
				f := startFakeRuntime(t, now)
				f.list = psFixture(now)
				if tc.pulled {
					f.pulled["busybox:latest"] = true
				}
				for _, args := range tc.setup {
					if r := runBerth(t, f.host(), nil, "", args...); r.code != 0 && args[0] != "run" {
						t.Fatalf("setup %v: %+v", args, r)
					}
				}
				return f
			}
			want := runDocker(t, prepare().host(), tc.stdin, tc.args...)
			got := runBerth(t, prepare().host(), nil, tc.stdin, tc.args...)
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
		})
	}
}

// TestContainerRequestsSameAsDockerCLI compares the wire side: the
// sequence of requests (run's create → attach → wait → start order
// matters to the daemon) and the create bodies, decoded, for flags that
// fill every part of the request.
func TestContainerRequestsSameAsDockerCLI(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nOVERRIDDEN=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args   []string
		pulled bool
	}{
		{args: []string{"run", "--rm", "busybox", "echo", "hi"}},
		{args: []string{"run", "-d", "busybox", "sleep"}, pulled: true},
		{args: []string{"run", "-i", "busybox", "cat"}, pulled: true},
		{args: []string{"run", "--rm", "busybox", "nope"}, pulled: true},
		{args: []string{"create", "--pull", "always", "--platform", "linux/amd64", "--name", "n1", "busybox"}},
		{args: []string{"run", "--rm", "--name", "web", "-e", "A=1", "-e", "OVERRIDDEN=flag", "--env-file", envFile,
			"-v", "/srv:/data:ro", "-v", "named:/named", "-v", "/anon", "--mount", "type=bind,source=/tmp,target=/t,readonly",
			"--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "-w", "/work", "-u", "nobody:nogroup",
			"--entrypoint", "/bin/sh", "--hostname", "box", "--domainname", "example.test", "--network", "none",
			"-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "1.5", "--cpu-shares", "512",
			"--cpuset-cpus", "0", "--pids-limit", "50", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=64",
			"--cap-add", "net_admin", "--cap-drop", "ALL", "--cap-drop", "chown", "--read-only", "--log-driver", "json-file",
			"--log-opt", "max-size=1m", "--log-opt", "max-file=2", "-l", "a=b", "--label", "c", "--stop-signal", "SIGUSR1",
			"--stop-timeout", "3", "--shm-size", "128m", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined",
			"--init", "--tmpfs", "/run:rw,size=1m", "--add-host", "db:10.0.0.2", "--dns", "10.0.0.1", "--dns-search", "example.test",
			"--sysctl", "net.ipv4.ip_forward=1", "--oom-score-adj", "100", "--group-add", "audio", "--ipc", "private",
			"-p", "127.0.0.1:8080:80/tcp", "--expose", "9000-9001", "--health-cmd", "true", "--health-interval", "5s",
			"--device", "/dev/null:/dev/mynull:r", "busybox", "-c", "echo hi"}, pulled: true},
		{args: []string{"create", "--privileged", "--restart", "on-failure:3", "--network", "host", "--entrypoint=", "-t", "-i",
			"--stop-timeout", "0", "--init=false", "--memory-swappiness", "10", "--security-opt", "systempaths=unconfined",
			"busybox"}, pulled: true},
		{args: []string{"create", "-a", "stdin", "-a", "stdout", "-v", "./rel:/rel", "-v", "a:b:c:d", "-v", ":a", "busybox"}, pulled: true},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			now := time.Now()
			df, bf := startFakeRuntime(t, now), startFakeRuntime(t, now)
			if tc.pulled {
				df.pulled["busybox:latest"], bf.pulled["busybox:latest"] = true, true
			}
			runDocker(t, df.host(), "", tc.args...)
			runBerth(t, bf.host(), nil, "", tc.args...)
			want, got := strings.Join(df.requestPaths(), "\n"), strings.Join(bf.requestPaths(), "\n")
			if got != want {
				t.Errorf("requests differ\n--- docker:\n%s\n--- berth:\n%s", want, got)
			}
			wq, wreq := df.lastCreate(t)
			gq, greq := bf.lastCreate(t)
			if !reflect.DeepEqual(gq, wq) {
				t.Errorf("create query: docker %v, berth %v", wq, gq)
			}
			// The client library of docker 28 drops fields older APIs do
			// not know (its requests are for API 1.41); compare what both
			// send.
			wb, gb := canonicalCreate(t, wreq), canonicalCreate(t, greq)
			if gb != wb {
				t.Errorf("create body differs\n--- docker:\n%s\n--- berth:\n%s", wb, gb)
			}
		})
	}
}

// canonicalCreate renders a create request as indented JSON with the
// fields the docker 28 client leaves empty at API 1.41 cleared, and
// empty lists and maps made nil, so only meaningful differences remain.
func canonicalCreate(t *testing.T, req container.CreateRequest) string {
	t.Helper()
	if req.Config != nil {
		// The docker CLI's order of -e variables changes from run to
		// run; only the order of one name's values means anything.
		slices.SortStableFunc(req.Config.Env, func(a, b string) int {
			ka, _, _ := strings.Cut(a, "=")
			kb, _, _ := strings.Cut(b, "=")
			return strings.Compare(ka, kb)
		})
	}
	if req.HostConfig != nil {
		h := req.HostConfig
		// ConsoleSize is the terminal's size; neither runs in one.
		h.ConsoleSize = [2]uint{}
		// The docker CLI gathers -v binds through a map: their order
		// changes from run to run.
		h.Binds = slices.Sorted(slices.Values(h.Binds))
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(dropEmpty(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = dropEmpty(e)
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = e
		}
		if len(x) == 0 {
			return nil
		}
		return x
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = dropEmpty(x[i])
		}
		return x
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	}
	return v
}
