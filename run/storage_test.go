package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/fixtures"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	mounttypes "github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

func TestBindMountsReadWriteAndReadOnly(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "made", "by", "bind")
	_, code, out := e.run([]string{"sh", "-c", "cat /rw/in; echo; echo written > /rw/out; (echo x > /ro/y) 2>/dev/null || echo ro-refused; ls -d /new"}, func(r *CreateRequest) {
		r.HostConfig.Binds = []string{host + ":/rw", host + ":/ro:ro", missing + ":/new"}
	})
	if code != 0 || out != "from host\nro-refused\n/new\n" {
		t.Fatalf("exit %d output %q", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "written\n" {
		t.Fatalf("write through rw bind: %q %v", b, err)
	}
	if _, err := os.Stat(missing); err != nil {
		t.Fatalf("-v did not create the missing source: %v", err)
	}
	ins := e.inspect(e.m.all()[0].id)
	if len(ins.Mounts) != 3 || ins.Mounts[0].Type != "bind" || ins.Mounts[1].RW || ins.Mounts[1].Propagation != "rprivate" {
		t.Errorf("inspect mounts: %+v", ins.Mounts)
	}
}

func TestNamedVolumePersistsAcrossContainers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, code, _ := e.run([]string{"sh", "-c", "echo kept > /data/f"}, func(r *CreateRequest) {
		r.HostConfig.Binds = []string{"vol1:/data"}
	})
	if code != 0 {
		t.Fatalf("writer exit %d", code)
	}
	id2, code, out := e.run([]string{"cat", "/data/f"}, func(r *CreateRequest) {
		r.HostConfig.Mounts = []mountT{{Type: "volume", Source: "vol1", Target: "/data", ReadOnly: true}}
	})
	if code != 0 || out != "kept\n" {
		t.Fatalf("reader: exit %d %q", code, out)
	}
	vol, err := e.m.Volumes().Get(ctx, "vol1")
	if err != nil || vol.Driver != "local" || vol.Scope != "local" || !strings.HasSuffix(vol.Mountpoint, "/vol1/_data") {
		t.Fatalf("volume: %+v %v", vol, err)
	}
	err = e.m.Volumes().Remove(ctx, "vol1", false)
	if !errdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), "remove vol1: volume is in use - [") || !strings.Contains(err.Error(), id2) {
		t.Fatalf("remove in use: %v", err)
	}
	for _, c := range e.m.all() {
		if err := e.m.Remove(ctx, c.id, RemoveOptions{RemoveVolumes: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Named volumes outlive their containers even with -v.
	if _, err := e.m.Volumes().Get(ctx, "vol1"); err != nil {
		t.Fatalf("named volume removed with its container: %v", err)
	}
	if err := e.m.Volumes().Remove(ctx, "vol1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Volumes().Get(ctx, "vol1"); !errdefs.IsNotFound(err) || err.Error() != "get vol1: no such volume" {
		t.Fatalf("get removed volume: %v", err)
	}
}

// mountT keeps the table above short.
type mountT = mounttypes.Mount

func TestImageVolumeIsCopiedUpAndAnonymous(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec, err := fixtures.BusyboxLayerSpec(ctx, fixtures.HostBusybox)
	if err != nil {
		t.Fatal(err)
	}
	spec.Entries = append(spec.Entries,
		fixtures.Entry{Path: "srv", Type: fixtures.TypeDir, UID: 33, GID: 33, Mode: 0o750},
		fixtures.Entry{Path: "srv/index.html", Type: fixtures.TypeFile, Data: []byte("hello volume"), UID: 33, GID: 33},
		// Hard links and xattrs survive the copy, as with Docker's.
		fixtures.Entry{Path: "srv/index.htm", Type: fixtures.TypeHardlink, Target: "srv/index.html"},
		fixtures.Entry{Path: "srv/tagged", Type: fixtures.TypeFile, Data: []byte("x"), Xattrs: map[string]string{"user.berth": "kept"}})
	img, err := fixtures.ImageFromSpecs([]fixtures.LayerSpec{spec}, fixtures.WithCmd("sh"), fixtures.WithConfig(func(c *v1.Config) {
		c.Volumes = map[string]struct{}{"/srv": {}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	importImage(t, e.store, img, "web:latest")
	id, code, out := e.run([]string{"sh", "-c", "cat /srv/index.html; echo; stat -c '%u:%g %a' /srv; " +
		"[ $(stat -c %i /srv/index.html) = $(stat -c %i /srv/index.htm) ] && stat -c %h /srv/index.htm"}, func(r *CreateRequest) {
		r.Config.Image = "web"
	})
	if code != 0 || out != "hello volume\n33:33 750\n2\n" {
		t.Fatalf("exit %d %q", code, out)
	}
	ins := e.inspect(id)
	if len(ins.Mounts) == 1 {
		var buf [16]byte
		n, err := unix.Getxattr(filepath.Join(ins.Mounts[0].Source, "tagged"), "user.berth", buf[:])
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			t.Fatalf("xattr of the copied file: %v", err)
		}
		if err == nil && string(buf[:n]) != "kept" {
			t.Fatalf("xattr of the copied file: %q", buf[:n])
		}
	}
	if len(ins.Mounts) != 1 || ins.Mounts[0].Type != "volume" || len(ins.Mounts[0].Name) != 64 {
		t.Fatalf("anonymous volume mount: %+v", ins.Mounts)
	}
	name := ins.Mounts[0].Name
	vol, err := e.m.Volumes().Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vol.Labels[anonymousLabel]; !ok {
		t.Errorf("anonymous volume lacks its label: %v", vol.Labels)
	}
	if err := e.m.Remove(ctx, id, RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Volumes().Get(ctx, name); !errdefs.IsNotFound(err) {
		t.Fatalf("anonymous volume kept after rm -v: %v", err)
	}
}

func TestVolumeServiceListPrune(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v := e.m.Volumes()
	if _, err := v.Create(ctx, volume.CreateRequest{Name: "va", Labels: map[string]string{"team": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create(ctx, volume.CreateRequest{Name: "vb"}); err != nil {
		t.Fatal(err)
	}
	anon, err := v.Create(ctx, volume.CreateRequest{})
	if err != nil || len(anon.Name) != 64 {
		t.Fatalf("anonymous create: %+v %v", anon, err)
	}
	if _, err := v.Create(ctx, volume.CreateRequest{Name: "bad/name"}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad name: %v", err)
	}
	e.create([]string{"true"}, func(r *CreateRequest) { r.HostConfig.Binds = []string{"vb:/b"} })
	list, err := v.List(ctx, map[string][]string{"label": {"team=x"}})
	if err != nil || len(list) != 1 || list[0].Name != "va" {
		t.Fatalf("label filter: %+v %v", list, err)
	}
	list, _ = v.List(ctx, map[string][]string{"dangling": {"false"}})
	if len(list) != 1 || list[0].Name != "vb" {
		t.Fatalf("dangling=false: %+v", list)
	}
	// API ≥ 1.42 prune: only anonymous unused volumes.
	rep, err := v.Prune(ctx, nil, false)
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] != anon.Name {
		t.Fatalf("prune anonymous: %+v %v", rep, err)
	}
	rep, err = v.Prune(ctx, nil, true)
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] != "va" {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
	list, _ = v.List(ctx, nil)
	if len(list) != 1 || list[0].Name != "vb" {
		t.Fatalf("left after prune: %+v", list)
	}
}

func TestReadOnlyRootfs(t *testing.T) {
	e := newEnv(t)
	_, code, out := e.run([]string{"sh", "-c", "(touch /x) 2>/dev/null || echo refused; echo ok > /tmpfs/f && cat /tmpfs/f; (echo ns >> /etc/hosts) 2>/dev/null && echo hosts-writable; true"}, func(r *CreateRequest) {
		r.HostConfig.ReadonlyRootfs = true
		r.HostConfig.Tmpfs = map[string]string{"/tmpfs": "size=1m"}
	})
	if code != 0 || !strings.HasPrefix(out, "refused\nok\n") || strings.Contains(out, "hosts-writable") {
		t.Fatalf("exit %d %q", code, out)
	}
}

func TestMemoryLimitVisibleInContainerCgroup(t *testing.T) {
	e := newEnv(t)
	const limit = 64 << 20
	file := "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if cgroupV2() {
		file = "/sys/fs/cgroup/memory.max"
	}
	id := e.create([]string{"sh", "-c", "cat " + file + "; sleep 30"}, func(r *CreateRequest) {
		r.HostConfig.Memory = limit
		pids := int64(50)
		r.HostConfig.PidsLimit = &pids
	})
	ctx := context.Background()
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "limit in logs", func() bool {
		return e.logs(id, LogsOptions{Stdout: true, Tail: -1}) != ""
	})
	if out := e.logs(id, LogsOptions{Stdout: true, Tail: -1}); strings.TrimSpace(out) != strconv.Itoa(limit) {
		t.Fatalf("limit seen inside: %q", out)
	}
	// And the host's view of the same cgroup.
	hostFile := filepath.Join("/sys/fs/cgroup/memory", e.cgroupParent, id, "memory.limit_in_bytes")
	pidsFile := filepath.Join("/sys/fs/cgroup/pids", e.cgroupParent, id, "pids.max")
	if cgroupV2() {
		hostFile = filepath.Join("/sys/fs/cgroup", e.cgroupParent, id, "memory.max")
		pidsFile = filepath.Join("/sys/fs/cgroup", e.cgroupParent, id, "pids.max")
	}
	if b, err := os.ReadFile(hostFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(limit) {
		t.Fatalf("host cgroup %s: %q %v", hostFile, b, err)
	}
	if b, err := os.ReadFile(pidsFile); err != nil || strings.TrimSpace(string(b)) != "50" {
		t.Fatalf("pids limit %s: %q %v", pidsFile, b, err)
	}
	ins := e.inspect(id)
	if ins.HostConfig.Memory != limit || ins.HostConfig.MemorySwap != 2*limit {
		t.Errorf("inspect memory %d swap %d", ins.HostConfig.Memory, ins.HostConfig.MemorySwap)
	}
	zero := 0
	if err := e.m.Stop(ctx, id, &zero); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(hostFile)); !os.IsNotExist(err) {
		t.Fatalf("cgroup kept after stop: %v", err)
	}
}
