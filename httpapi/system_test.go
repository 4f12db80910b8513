package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const dockerCLI = "/usr/local/bin/docker"

// runDocker runs the real docker CLI against host with an empty config.
func runDocker(t *testing.T, host string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, append([]string{"-H", host}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run docker %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	have := strings.Split(out, "\n")
	for _, l := range lines {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.TrimRight(h, " ") == l }) {
			t.Errorf("output lacks line %q:\n%s", l, out)
		}
	}
}

func TestDockerCLIVersionInfo(t *testing.T) {
	ts := startUnix(t, Options{Version: "0.1.0-test", GitCommit: "abc1234", BuildTime: "2026-01-02T03:04:05.000000000+00:00"}, Backends{})
	host := "unix://" + ts.sock

	out, errOut, code := runDocker(t, host, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("docker version: exit %d, stderr %q\n%s", code, errOut, out)
	}
	t.Log(out)
	wantLines(t, out,
		"Server:",
		" Engine:",
		"  Version:          0.1.0-test",
		"  API version:      1.41 (minimum version 1.24)",
		"  Go version:       "+runtime.Version(),
		"  Git commit:       abc1234",
		"  OS/Arch:          linux/"+runtime.GOARCH,
		"  Experimental:     false",
		" runc:",
		"  Version:          1.5.2",
		"  GitCommit:        v1.5.2-0-gabcdef",
	)

	out, errOut, code = runDocker(t, host, "info")
	if code != 0 || errOut != "" {
		t.Fatalf("docker info: exit %d, stderr %q\n%s", code, errOut, out)
	}
	t.Log(out)
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		" Containers: 5",
		"  Running: 2",
		"  Paused: 1",
		"  Stopped: 2",
		" Images: 7",
		" Server Version: 0.1.0-test",
		" Storage Driver: overlay2",
		"  Backing Filesystem: extfs",
		" Logging Driver: json-file",
		" Cgroup Driver: cgroupfs",
		" Cgroup Version: 1",
		"  Volume: local",
		"  Network: bridge host none",
		"  Log: json-file",
		" Swarm: inactive",
		" Runtimes: runc",
		" Default Runtime: runc",
		" runc version: v1.5.2-0-gabcdef",
		" Security Options:",
		"  seccomp",
		"   Profile: default",
		"  apparmor",
		" Kernel Version: "+unix.ByteSliceToString(uts.Release[:]),
		" OSType: linux",
		" Architecture: "+unix.ByteSliceToString(uts.Machine[:]),
		" Name: berth-test",
		" ID: BRTH:TEST:0000:1111",
		" Docker Root Dir: /var/lib/berth-test",
		" Labels:",
		"  env=test",
		" Insecure Registries:",
		"  127.0.0.1:5000",
		" Registry Mirrors:",
		"  http://127.0.0.1:5001/",
		" Live Restore Enabled: true",
	)

	// The template path decodes the full JSON too.
	out, errOut, code = runDocker(t, host, "info", "--format", "{{.NCPU}} {{.OperatingSystem}} {{.SecurityOptions}}")
	if code != 0 || errOut != "" {
		t.Fatalf("docker info --format: exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, strconvItoa(runtime.NumCPU())+" ") || !strings.Contains(out, "[name=seccomp,profile=default name=apparmor]") {
		t.Errorf("docker info --format: %q", out)
	}

	out, errOut, code = runDocker(t, host, "system", "df")
	if code != 0 || errOut != "" {
		t.Fatalf("docker system df: exit %d, stderr %q\n%s", code, errOut, out)
	}
	if !strings.HasPrefix(out, "TYPE ") || !strings.Contains(out, "Images ") {
		t.Errorf("docker system df output:\n%s", out)
	}
}

func strconvItoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDockerCLIServerError(t *testing.T) {
	sys := newFakeSystem()
	sys.err = errors.New("store offline")
	ts := startUnix(t, Options{}, Backends{System: sys})
	_, errOut, code := runDocker(t, "unix://"+ts.sock, "version")
	if code != 1 || !strings.Contains(errOut, "Error response from daemon: version components: store offline") {
		t.Errorf("docker version with failing backend: exit %d, stderr %q", code, errOut)
	}
}

func TestInfoAndVersionShape(t *testing.T) {
	ts := startUnix(t, Options{Version: "9.9.9"}, Backends{})

	resp, body := ts.do(t, http.MethodGet, "/v1.41/info")
	if resp.StatusCode != 200 {
		t.Fatalf("info: %d %s", resp.StatusCode, body)
	}
	wantHeader(t, resp.Header, "Content-Type", "application/json")
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images",
		"Driver", "DriverStatus", "Plugins", "LoggingDriver", "CgroupDriver", "CgroupVersion", "KernelVersion",
		"OperatingSystem", "OSVersion", "OSType", "Architecture", "NCPU", "MemTotal", "Name", "DockerRootDir",
		"ServerVersion", "IndexServerAddress", "RegistryConfig", "Runtimes", "DefaultRuntime", "Swarm",
		"ContainerdCommit", "RuncCommit", "InitCommit", "SecurityOptions", "Labels", "Warnings"} {
		if _, ok := info[k]; !ok {
			t.Errorf("/info lacks %s", k)
		}
	}
	if info["NCPU"] != float64(runtime.NumCPU()) {
		t.Errorf("NCPU = %v", info["NCPU"])
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if info["MemTotal"] != float64(int64(si.Totalram)*int64(si.Unit)) {
		t.Errorf("MemTotal = %v", info["MemTotal"])
	}
	osRel, _ := os.ReadFile("/etc/os-release")
	if name, _ := info["OperatingSystem"].(string); name == "" || !strings.Contains(string(osRel), strings.TrimSuffix(name, " (containerized)")) {
		t.Errorf("OperatingSystem = %q, os-release:\n%s", name, osRel)
	}
	if swarm, _ := info["Swarm"].(map[string]any); swarm["LocalNodeState"] != "inactive" {
		t.Errorf("Swarm = %v", info["Swarm"])
	}
	for _, so := range info["SecurityOptions"].([]any) {
		if !strings.HasPrefix(so.(string), "name=") {
			t.Errorf("security option %q", so)
		}
	}
	if info["ServerVersion"] != "9.9.9" || info["IndexServerAddress"] != "https://index.docker.io/v1/" || info["OSType"] != "linux" {
		t.Errorf("ServerVersion/IndexServerAddress/OSType = %v %v %v", info["ServerVersion"], info["IndexServerAddress"], info["OSType"])
	}
	if info["Containers"] != float64(5) || info["Images"] != float64(7) {
		t.Errorf("counts %v %v", info["Containers"], info["Images"])
	}

	resp, body = ts.do(t, http.MethodGet, "/version")
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Platform", "Components", "Version", "ApiVersion", "MinAPIVersion", "GoVersion", "Os", "Arch", "KernelVersion"} {
		if _, ok := v[k]; !ok {
			t.Errorf("/version lacks %s", k)
		}
	}
	if p, _ := v["Platform"].(map[string]any); p == nil || p["Name"] != "" {
		t.Errorf("Platform = %v", v["Platform"])
	}
	comps := v["Components"].([]any)
	engine := comps[0].(map[string]any)
	details := engine["Details"].(map[string]any)
	for _, k := range []string{"ApiVersion", "Arch", "BuildTime", "Experimental", "GitCommit", "GoVersion", "KernelVersion", "MinAPIVersion", "Os"} {
		if _, ok := details[k]; !ok {
			t.Errorf("Engine details lack %s", k)
		}
	}
	if engine["Name"] != "Engine" || engine["Version"] != "9.9.9" || details["ApiVersion"] != "1.41" || details["MinAPIVersion"] != "1.24" {
		t.Errorf("engine component %v", engine)
	}
	if len(comps) != 2 || comps[1].(map[string]any)["Name"] != "runc" {
		t.Errorf("components %v", comps)
	}
}

func TestDiskUsage(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{})
	resp, body := ts.do(t, http.MethodGet, "/v1.41/system/df")
	if resp.StatusCode != 200 {
		t.Fatalf("df: %d %s", resp.StatusCode, body)
	}
	if got := strings.TrimSpace(string(body)); got != `{"LayersSize":0,"Images":[],"Containers":[],"Volumes":[],"BuildCache":null}` {
		t.Errorf("empty df = %s", got)
	}

	ts2 := startUnix(t, Options{}, Backends{DiskUsage: fakeDF{}})
	_, body = ts2.do(t, http.MethodGet, "/system/df")
	var r DiskUsageReport
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.LayersSize != 1234 || len(r.Images) != 1 || r.Images[0].ID != "sha256:aaaa" {
		t.Errorf("df = %s", body)
	}
	out, errOut, code := runDocker(t, "unix://"+ts2.sock, "system", "df")
	t.Log(out)
	if code != 0 || errOut != "" || !strings.Contains(out, "1.234kB") {
		t.Errorf("docker system df: exit %d stderr %q\n%s", code, errOut, out)
	}
}

type fakeDF struct{}

func (fakeDF) DiskUsage(context.Context) (DiskUsageReport, error) {
	r := DiskUsageReport{LayersSize: 1234}
	r.Images = append(r.Images, fakeImageSummary("sha256:aaaa", 1234))
	return r, nil
}

func fakeImageSummary(id string, size int64) ImageSummary {
	return ImageSummary{ID: id, Containers: -1, Created: 1700000000, Size: size, VirtualSize: size, SharedSize: -1, RepoTags: []string{"busybox:latest"}, RepoDigests: []string{}, Labels: map[string]string{}}
}

func TestInfoFeatureWarnings(t *testing.T) {
	sys := newFakeSystem()
	sys.info.Cgroup = CgroupFeatures{MemoryLimit: true, CPUShares: true, CPUSet: true, PidsLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, OomKillDisable: true}
	sys.info.IPv4Forwarding = false
	sys.info.Warnings = []string{"WARNING: from the daemon"}
	ts := startUnix(t, Options{}, Backends{System: sys})
	_, errOut, code := runDocker(t, "unix://"+ts.sock, "info")
	if code != 0 {
		t.Fatalf("docker info: exit %d, stderr %q", code, errOut)
	}
	if want := "WARNING: from the daemon\nWARNING: No swap limit support\nWARNING: IPv4 forwarding is disabled\n"; errOut != want {
		t.Errorf("docker info stderr %q, want %q", errOut, want)
	}
	if len(sys.info.Warnings) != 1 {
		t.Error("backend's Warnings slice was modified")
	}
}

func TestInfoBackendErrorIsReported(t *testing.T) {
	sys := newFakeSystem()
	sys.err = fmt.Errorf("count containers: %w", errdefs.ErrUnavailable)
	ts := startUnix(t, Options{}, Backends{System: sys})
	resp, body := ts.do(t, http.MethodGet, "/v1.41/info")
	wantErrorBody(t, resp, body, http.StatusServiceUnavailable, "daemon info: count containers: unavailable")
}

func TestInfoDebugFields(t *testing.T) {
	ts := startUnix(t, Options{Debug: true}, Backends{})
	_, body := ts.do(t, http.MethodGet, "/info")
	var info struct {
		Debug           bool
		NFd             int
		NGoroutines     int
		NEventsListener int
		SystemTime      string
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if !info.Debug || info.NFd <= 0 || info.NGoroutines <= 0 {
		t.Errorf("debug info fields: %+v", info)
	}
	if _, err := time.Parse(time.RFC3339Nano, info.SystemTime); err != nil {
		t.Errorf("SystemTime %q: %v", info.SystemTime, err)
	}
}

func TestNoSystemBackend(t *testing.T) {
	s := New(Options{}, Backends{})
	for _, path := range []string{"/v1.41/info", "/version"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s without backend: %d %s", path, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/info", nil))
	var info struct{ Name, KernelVersion string }
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if info.Name != host || info.KernelVersion == "" {
		t.Errorf("host facts without backend: %+v", info)
	}
}
