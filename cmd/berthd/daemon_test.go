package main

import (
	"bytes"
	"context"

	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/fixtures/load"
	"github.com/berth-dev/berth/mount"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dockerCLI is the acceptance client: the unmodified docker CLI.
const dockerCLI = "/usr/local/bin/docker"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// berthdBinary is $BERTH_BIN/berthd (make test builds it) or a fresh build.
func berthdBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		p := filepath.Join(dir, "berthd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berthd-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "berthd")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type daemonProc struct {
	t       *testing.T
	dir     string
	sock    string
	host    string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   *sync.Mutex
	exited  chan struct{}
	config  string
	dataDir string
}

type lockedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// startDaemon runs berthd on its own temp paths with extra flags; it is
// stopped by PID at cleanup.
func startDaemon(t *testing.T, dir string, extra ...string) *daemonProc {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	d := &daemonProc{t: t, dir: dir, sock: filepath.Join(dir, "berth.sock"), log: &bytes.Buffer{}, logMu: &sync.Mutex{},
		exited: make(chan struct{}), config: filepath.Join(dir, "daemon.json"), dataDir: filepath.Join(dir, "data")}
	d.host = "unix://" + d.sock
	if _, err := os.Stat(d.config); os.IsNotExist(err) {
		os.WriteFile(d.config, []byte("{}\n"), 0o644)
	}
	args := append([]string{
		"--data-root", d.dataDir, "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "berthd.pid"), "--config-file", d.config,
		"-H", d.host,
	}, extra...)
	d.cmd = exec.Command(berthdBinary(t), args...)
	d.cmd.Stdout = lockedBuffer{d.logMu, d.log}
	d.cmd.Stderr = lockedBuffer{d.logMu, d.log}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("berthd exited at start:\n%s", d.logs())
		default:
		}
		if resp, err := d.client().Get("http://berth/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("berthd did not answer /_ping:\n%s", d.logs())
	return nil
}

func (d *daemonProc) logs() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

func (d *daemonProc) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	// Containers go first: with --live-restore they would outlive berthd.
	if out, _, code := d.docker("ps", "-aq"); code == 0 {
		if ids := strings.Fields(out); len(ids) > 0 {
			d.docker(append([]string{"rm", "-f"}, ids...)...)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

func (d *daemonProc) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		var dl netDialer
		return dl.DialContext(ctx, "unix", d.sock)
	}}}
}

// docker runs the real docker CLI against the daemon.
func (d *daemonProc) docker(args ...string) (stdout, stderr string, code int) {
	return runDocker(d.t, d.host, nil, args...)
}

func runDocker(t *testing.T, host string, env []string, args ...string) (string, string, int) {
	t.Helper()
	return runDockerIn(t, host, env, nil, args...)
}

// runDockerStdin runs the docker CLI with stdin from a string.
func runDockerStdin(t *testing.T, host, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runDockerIn(t, host, nil, strings.NewReader(stdin), args...)
}

func runDockerIn(t *testing.T, host string, env []string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(dockerCLI, append([]string{"-H", host}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir(), "PATH=/usr/bin:/bin"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// seedImages puts fixture images into a data root before berthd opens it
// (pull lands in a later issue; this is the store's own API).
func seedImages(t *testing.T, dataRoot string, images map[string]v1.Image) map[string]chain.Image {
	t.Helper()
	ctx := context.Background()
	st, err := cas.Open(ctx, dataRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	drv, err := mount.New(ctx, "", filepath.Join(dataRoot, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := chain.Open(ctx, st, drv, chain.WithDeviceNodes(true))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]chain.Image{}
	for ref, img := range images {
		ci, err := load.LoadImage(ctx, s, img, ref)
		if err != nil {
			t.Fatal(err)
		}
		out[ref] = ci
	}
	return out
}

func busybox(t *testing.T) v1.Image {
	t.Helper()
	img, err := fixtures.BusyboxImage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestDockerCLIVersionInfoPing(t *testing.T) {
	d := startDaemon(t, "")
	out, errOut, code := d.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Client.APIVersion}}")
	if code != 0 || errOut != "" || strings.TrimSpace(out) != "1.41 linux 1.41" {
		t.Fatalf("docker version: %d %q %q", code, out, errOut)
	}
	out, errOut, code = d.docker("info")
	if code != 0 {
		t.Fatalf("docker info: %d %q", code, errOut)
	}
	for _, want := range []string{"Storage Driver: overlay2", "Docker Root Dir: " + d.dataDir, "Images: 0", "Default Runtime: runc", "seccomp", "127.0.0.0/8"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
	resp, err := d.client().Get("http://berth/v1.99/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "client version 1.99 is too new. Maximum supported API version is 1.41") {
		t.Fatalf("too new: %d %s", resp.StatusCode, body)
	}
}

func TestDockerCLIImagesTagRmiInspectHistory(t *testing.T) {
	dir := t.TempDir()
	seeded := seedImages(t, filepath.Join(dir, "data"), map[string]v1.Image{"busybox:latest": busybox(t)})
	bb := seeded["busybox:latest"]
	d := startDaemon(t, dir)

	out, errOut, code := d.docker("images")
	short := bb.ID.Encoded()[:12]
	if code != 0 || !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "busybox") || !strings.Contains(out, short) {
		t.Fatalf("images: %d %q\n%s", code, errOut, out)
	}
	if _, errOut, code = d.docker("tag", "busybox", "127.0.0.1:5000/team/bb:v1"); code != 0 {
		t.Fatalf("tag: %d %s", code, errOut)
	}
	out, _, _ = d.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(out, "127.0.0.1:5000/team/bb:v1 "+short) || !strings.Contains(out, "busybox:latest "+short) {
		t.Fatalf("images after tag:\n%s", out)
	}
	out, _, _ = d.docker("images", "-q", "--filter", "reference=busybox")
	if strings.TrimSpace(out) != short {
		t.Fatalf("images -q --filter reference=busybox: %q", out)
	}
	out, _, code = d.docker("inspect", "--format", "{{.Id}} {{index .RepoTags 0}} {{.RootFS.Type}} {{len .RootFS.Layers}} {{.GraphDriver.Name}}", "busybox")
	if code != 0 || strings.TrimSpace(out) != bb.ID.String()+" 127.0.0.1:5000/team/bb:v1 layers 1 overlay2" {
		t.Fatalf("inspect: %d %q", code, out)
	}
	out, _, code = d.docker("history", "--format", "{{.ID}}|{{.CreatedBy}}", "busybox")
	if code != 0 || !strings.HasPrefix(out, short+"|") {
		t.Fatalf("history: %d %q", code, out)
	}

	// Missing objects: exit code and message as dockerd gives them.
	_, errOut, code = d.docker("inspect", "nope")
	if code != 1 || strings.TrimSpace(errOut) != "Error: No such object: nope" {
		t.Fatalf("inspect missing: %d %q", code, errOut)
	}
	_, errOut, code = d.docker("image", "inspect", "nope")
	if code != 1 || strings.TrimSpace(errOut) != "Error response from daemon: No such image: nope:latest" {
		t.Fatalf("image inspect missing: %d %q", code, errOut)
	}
	_, errOut, code = d.docker("rmi", "nope")
	if code != 1 || strings.TrimSpace(errOut) != "Error response from daemon: No such image: nope:latest" {
		t.Fatalf("rmi missing: %d %q", code, errOut)
	}
	_, errOut, code = d.docker("history", "nope")
	if code != 1 || strings.TrimSpace(errOut) != "Error response from daemon: No such image: nope:latest" {
		t.Fatalf("history missing: %d %q", code, errOut)
	}
	// Referenced in two repositories: deleting by ID is a conflict.
	_, errOut, code = d.docker("rmi", short)
	want := fmt.Sprintf("Error response from daemon: conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)
	if code != 1 || strings.TrimSpace(errOut) != want {
		t.Fatalf("rmi by id: %d %q", code, errOut)
	}
	out, _, code = d.docker("rmi", "127.0.0.1:5000/team/bb:v1")
	if code != 0 || strings.TrimSpace(out) != "Untagged: 127.0.0.1:5000/team/bb:v1" {
		t.Fatalf("rmi tag: %d %q", code, out)
	}
	out, _, code = d.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if code != 0 || !strings.Contains(out, "Images 1") {
		t.Fatalf("system df: %d %q", code, out)
	}
	out, errOut, code = d.docker("rmi", "busybox")
	if code != 0 || !strings.Contains(out, "Untagged: busybox:latest") || !strings.Contains(out, "Deleted: "+bb.ID.String()) {
		t.Fatalf("rmi last: %d %q %q", code, out, errOut)
	}
	out, _, _ = d.docker("images", "-q")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("images left: %q", out)
	}
	// Events of all of the above, bounded by --until so the CLI returns.
	nextSecond()
	out, errOut, code = d.docker("events", "--since", "5m", "--until", "0s", "--format", "{{.Type}} {{.Action}}")
	if code != 0 {
		t.Fatalf("events: %d %q", code, errOut)
	}
	for _, w := range []string{"image tag", "image untag", "image delete"} {
		if !strings.Contains(out, w) {
			t.Errorf("events lack %q:\n%s", w, out)
		}
	}
}

func TestDaemonJSONConflictRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte(`{"debug": true}`), 0o644)
	cmd := exec.Command(berthdBinary(t), "--config-file", cfg, "--debug", "--data-root", dir+"/data", "--exec-root", dir+"/exec",
		"--pidfile", dir+"/pid", "-H", "unix://"+dir+"/s.sock")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the following directives are specified both as a flag and in the configuration file: debug") {
		t.Fatalf("conflict: %v\n%s", err, out)
	}
	os.WriteFile(cfg, []byte(`{"no-such-key": 1}`), 0o644)
	out, err = exec.Command(berthdBinary(t), "--config-file", cfg, "--validate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no-such-key") {
		t.Fatalf("unknown key: %v\n%s", err, out)
	}
}

func TestSIGHUPReloadsDebugAndLabels(t *testing.T) {
	d := startDaemon(t, "")
	out, _, _ := d.docker("info", "--format", "{{.Debug}} {{.Labels}}")
	if strings.TrimSpace(out) != "false []" {
		t.Fatalf("before: %q", out)
	}
	os.WriteFile(d.config, []byte(`{"debug": true, "labels": ["team=storage"], "storage-driver": "vfs"}`), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ = d.docker("info", "--format", "{{.Debug}} {{.Labels}}")
		if strings.TrimSpace(out) == "true [team=storage]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: %q\n%s", out, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.logs(), "storage-driver") {
		t.Errorf("a non-reloadable change was not logged:\n%s", d.logs())
	}
	// A bad file keeps the running configuration.
	os.WriteFile(d.config, []byte(`{"debug": "yes please"`), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	out, _, _ = d.docker("info", "--format", "{{.Debug}}")
	if strings.TrimSpace(out) != "true" {
		t.Fatalf("bad reload changed the config: %q", out)
	}
}

func TestTwoDaemonsSideBySideAndPidfile(t *testing.T) {
	a := startDaemon(t, "")
	b := startDaemon(t, "")
	for _, d := range []*daemonProc{a, b} {
		if _, errOut, code := d.docker("version"); code != 0 {
			t.Fatalf("version: %s", errOut)
		}
	}
	ia, _, _ := a.docker("info", "--format", "{{.ID}}")
	ib, _, _ := b.docker("info", "--format", "{{.ID}}")
	if ia == ib {
		t.Fatal("two data roots share an engine ID")
	}
	// A second daemon on a's pidfile is refused while a lives.
	cmd := exec.Command(berthdBinary(t), "--pidfile", filepath.Join(a.dir, "berthd.pid"), "--data-root", t.TempDir(), "--exec-root", t.TempDir(),
		"-H", "unix://"+filepath.Join(t.TempDir(), "x.sock"), "--config-file", a.config)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pid file found") {
		t.Fatalf("second daemon on one pidfile: %v\n%s", err, out)
	}
}

func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	d := startDaemon(t, "")
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("berthd did not stop on SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, d.logs())
	}
	if _, err := os.Stat(filepath.Join(d.dir, "berthd.pid")); !os.IsNotExist(err) {
		t.Fatal("pidfile left behind")
	}
	if _, err := os.Stat(d.sock); !os.IsNotExist(err) {
		t.Fatal("socket left behind")
	}
}

// nextSecond waits for the next whole second: the CLI sends --until in
// whole seconds, so events of this second would fall after it.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
}
