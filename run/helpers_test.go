package run

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/cas"
	"github.com/berth-dev/berth/chain"
	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/mount"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
)

// TestMain lets the test binary be its own shim: the Manager re-execs it
// as `<test binary> shim <bundle>`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(ShimMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// runcPath finds the runc built from go.mod.
func runcPath(t testing.TB) string {
	t.Helper()
	cands := []string{}
	if b := os.Getenv("BERTH_BIN"); b != "" {
		cands = append(cands, filepath.Join(b, "runc"))
	}
	cands = append(cands, "../bin/runc")
	for _, c := range cands {
		if p, err := filepath.Abs(c); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("runc not found in %v: run `make build` (it builds bin/runc from go.mod)", cands)
	return ""
}

type testEnv struct {
	t            testing.TB
	root         string
	execRoot     string
	cgroupParent string
	cas          *cas.Store
	store        *chain.Store
	m            *Manager
	cfg          Config

	evMu   sync.Mutex
	events []Event
}

type envOption func(*Config)

func withLiveRestore() envOption { return func(c *Config) { c.LiveRestore = true } }

var busyboxOnce struct {
	sync.Once
	img v1.Image
	err error
}

func busybox(t testing.TB) v1.Image {
	busyboxOnce.Do(func() {
		busyboxOnce.img, busyboxOnce.err = fixtures.BusyboxImage(context.Background(),
			fixtures.WithConfig(func(c *v1.Config) {
				c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			}))
	})
	if busyboxOnce.err != nil {
		t.Fatal(busyboxOnce.err)
	}
	return busyboxOnce.img
}

// newEnv opens a data root with busybox:latest and a Manager on it.
func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	e := &testEnv{
		t:            t,
		root:         root,
		execRoot:     filepath.Join(root, "exec"),
		cgroupParent: "/berth-test-" + newID()[:12],
	}
	e.openStore()
	importImage(t, e.store, busybox(t), "busybox:latest")
	e.cfg = Config{
		Root:         filepath.Join(root, "containers"),
		ExecRoot:     e.execRoot,
		Store:        e.store,
		Runtimes:     map[string]string{"runc": runcPath(t)},
		CgroupParent: e.cgroupParent,
		ShimCommand:  []string{os.Args[0], "shim"},
		ShimSpare:    true,
		Events:       e.record,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	mgr, err := New(ctx, e.cfg)
	if err != nil {
		e.cas.Close()
		t.Fatal(err)
	}
	e.m = mgr
	t.Cleanup(e.cleanup)
	return e
}

// openStore opens the data root's store, as a starting berthd does.
func (e *testEnv) openStore() {
	t := e.t
	ctx := context.Background()
	st, err := cas.Open(ctx, e.root)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := mount.New(ctx, "", filepath.Join(e.root, "layers"))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	store, err := chain.Open(ctx, st, drv, chain.WithDeviceNodes(true), chain.WithImageUsers(func(ctx context.Context) map[digest.Digest][]chain.ImageUser {
		if e.m == nil {
			return nil
		}
		return e.m.ImageUsers(ctx)
	}))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e.cas, e.store = st, store
	e.cfg.Store = store
}

func (e *testEnv) record(ev Event) {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.events = append(e.events, ev)
}

func (e *testEnv) actions(id string) []string {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	var out []string
	for _, ev := range e.events {
		if ev.Actor.ID == id {
			out = append(out, string(ev.Action))
		}
	}
	return out
}

// reopen replaces the Manager (after shutting it down) and the store with
// new ones on the same directories, as a restarted berthd would.
func (e *testEnv) reopen(opts ...envOption) {
	e.t.Helper()
	e.m.Shutdown(context.Background())
	e.cas.Close()
	e.openStore()
	cfg := e.cfg
	for _, o := range opts {
		o(&cfg)
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
}

// cleanup removes every container (which must leave no mount, cgroup or
// shim behind), then checks and sweeps what would otherwise leak.
func (e *testEnv) cleanup() {
	t := e.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range e.m.all() {
		if err := e.m.Remove(ctx, c.id, RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("cleanup: remove %s: %v", c.id, err)
		}
	}
	e.m.Shutdown(ctx)
	for _, pid := range e.shimPids() {
		t.Errorf("cleanup: shim %d still running", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if mnts := e.mounts(); len(mnts) > 0 {
		t.Errorf("cleanup: mounts left: %v", mnts)
		for _, m := range mnts {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	for _, dir := range cgroupDirs(e.cgroupParent) {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if en.IsDir() {
				t.Errorf("cleanup: cgroup left: %s", filepath.Join(dir, en.Name()))
				syscall.Rmdir(filepath.Join(dir, en.Name()))
			}
		}
		syscall.Rmdir(dir)
	}
	e.cas.Close()
}

// shimPids finds live processes started for this environment: their
// command line names its exec root (or a bundle in it), or they work in a
// bundle of it.
func (e *testEnv) shimPids() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", en.Name(), "cwd"))
		if !bytes.Contains(b, []byte(e.execRoot+"/")) && !bytes.Contains(b, []byte(e.execRoot+"\x00")) &&
			!strings.HasPrefix(cwd, e.execRoot+"/") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// mounts lists mount points under the environment's root.
func (e *testEnv) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], e.root+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// cgroupDirs are the directories of parent in every mounted hierarchy.
func cgroupDirs(parent string) []string {
	var out []string
	if cgroupV2() {
		return []string{filepath.Join("/sys/fs/cgroup", parent)}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, en := range entries {
		p := filepath.Join("/sys/fs/cgroup", en.Name(), parent)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func importImage(t testing.TB, store *chain.Store, img v1.Image, ref string) chain.Image {
	t.Helper()
	ctx := context.Background()
	release := store.Lease()
	defer release()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var parent digest.Digest
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		lay, err := store.RegisterLayer(ctx, parent, rc, nil)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		parent = lay.ChainID
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	im, err := store.CreateImage(ctx, raw, chain.CreateOptions{Refs: []string{ref}})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// create makes a busybox container running cmd.
func (e *testEnv) create(cmd []string, edit ...func(*CreateRequest)) string {
	e.t.Helper()
	req := CreateRequest{Config: &container.Config{Image: "busybox", Cmd: cmd}, HostConfig: &container.HostConfig{}}
	for _, fn := range edit {
		fn(&req)
	}
	resp, err := e.m.Create(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ID
}

// run creates and starts a container and waits for its exit; it returns
// the exit code and the combined log output.
func (e *testEnv) run(cmd []string, edit ...func(*CreateRequest)) (id string, code int, out string) {
	e.t.Helper()
	id = e.create(cmd, edit...)
	code, out = e.startAndWait(id)
	return id, code, out
}

func (e *testEnv) startAndWait(id string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait, err := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.m.Start(ctx, id); err != nil {
		e.t.Fatalf("start: %v", err)
	}
	var res container.WaitResponse
	select {
	case res = <-wait:
	case <-ctx.Done():
		e.t.Fatal("container did not exit")
	}
	return int(res.StatusCode), e.logs(id, LogsOptions{Stdout: true, Stderr: true, Tail: -1})
}

// logs reads a container's logs and strips the stdcopy framing.
func (e *testEnv) logs(id string, opts LogsOptions) string {
	e.t.Helper()
	rc, err := e.m.Logs(context.Background(), id, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	stdout, stderr, err := demux(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return stdout + stderr
}

// demux splits stdcopy frames.
func demux(r io.Reader) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return o.String(), e.String(), nil
			}
			return o.String(), e.String(), err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		w := &o
		if hdr[0] == 2 {
			w = &e
		} else if hdr[0] != 1 {
			return "", "", fmt.Errorf("bad stream %d", hdr[0])
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			return o.String(), e.String(), err
		}
	}
}

func (e *testEnv) inspect(id string) container.InspectResponse {
	e.t.Helper()
	ins, err := e.m.Inspect(context.Background(), id, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return ins
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
