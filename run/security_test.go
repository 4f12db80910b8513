package run

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// procStatus runs a container that prints the named /proc/self/status
// fields of its init.
func procStatus(t *testing.T, e *testEnv, edit func(*CreateRequest), fields ...string) map[string]string {
	t.Helper()
	var edits []func(*CreateRequest)
	if edit != nil {
		edits = append(edits, edit)
	}
	_, code, out := e.run([]string{"cat", "/proc/self/status"}, edits...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	for _, f := range fields {
		if _, ok := got[f]; !ok {
			t.Fatalf("no %s in /proc/self/status", f)
		}
	}
	return got
}

func capMask(names ...string) string {
	var m uint64
	for _, n := range names {
		for i, c := range []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
			"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
			"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
			"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
			"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP"} {
			if c == n {
				m |= 1 << i
			}
		}
	}
	return strings.Repeat("0", 16-len(strconv.FormatUint(m, 16))) + strconv.FormatUint(m, 16)
}

func TestSecurityDefaultsAndOptions(t *testing.T) {
	e := newEnv(t)
	st := procStatus(t, e, nil, "CapEff", "Seccomp", "NoNewPrivs")
	if st["CapEff"] != capMask(defaultCapabilities...) {
		t.Errorf("default capabilities %s, want %s", st["CapEff"], capMask(defaultCapabilities...))
	}
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "0" {
		t.Errorf("default seccomp %s no-new-privs %s", st["Seccomp"], st["NoNewPrivs"])
	}
	st = procStatus(t, e, func(r *CreateRequest) {
		r.HostConfig.CapAdd = []string{"net_admin"}
		r.HostConfig.CapDrop = []string{"CAP_CHOWN", "kill"}
		r.HostConfig.SecurityOpt = []string{"no-new-privileges", "seccomp=unconfined"}
	}, "CapEff")
	want := []string{"CAP_NET_ADMIN"}
	for _, c := range defaultCapabilities {
		if c != "CAP_CHOWN" && c != "CAP_KILL" {
			want = append(want, c)
		}
	}
	if st["CapEff"] != capMask(want...) || st["Seccomp"] != "0" || st["NoNewPrivs"] != "1" {
		t.Errorf("tweaked: caps %s (want %s) seccomp %s nnp %s", st["CapEff"], capMask(want...), st["Seccomp"], st["NoNewPrivs"])
	}
	// Privileged: every capability, no seccomp, writable /sys, devices.
	_, code, out := e.run([]string{"sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status; test -w /sys && echo sys-rw; ls /dev | grep -c ."}, func(r *CreateRequest) {
		r.HostConfig.Privileged = true
	})
	hostDevs, _ := hostDevices()
	if code != 0 || !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "sys-rw") || strings.Contains(out, "CapEff:\t"+capMask(defaultCapabilities...)) {
		t.Errorf("privileged: %q", out)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])); n < len(hostDevs)/2 {
		t.Errorf("privileged container sees %d devices, host has %d", n, len(hostDevs))
	}
	// Masked paths stay masked without privileges: a file reads empty.
	masked := ""
	for _, p := range defaultMaskedPaths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); len(b) > 0 {
				masked = p
				break
			}
		}
	}
	if masked == "" {
		t.Fatal("no masked path with content on this host to test with")
	}
	_, _, out = e.run([]string{"sh", "-c", "cat " + masked + " | wc -c; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null || echo ro"})
	if strings.TrimSpace(out) != "0\nro" {
		t.Errorf("masked (%s) and read-only paths: %q", masked, out)
	}
}

func TestUlimitsAndShmSize(t *testing.T) {
	e := newEnv(t)
	e.cfg.DefaultUlimits = []*container.Ulimit{{Name: "nproc", Soft: 500, Hard: 600}}
	e.reopen()
	_, code, out := e.run([]string{"sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1"}, func(r *CreateRequest) {
		r.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 123, Hard: 456}}
		r.HostConfig.ShmSize = 8 << 20
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || lines[0] != "123" || lines[1] != "456" || lines[2] != "500" || !strings.Contains(lines[3], " 8192 ") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestLogRotationAndNoneDriver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Each message is ~60 bytes of JSON: 1k rotates every ~16 lines and
	// three files keep the last ~48.
	id, code, _ := e.run([]string{"sh", "-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line$i; done"}, func(r *CreateRequest) {
		r.HostConfig.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1k", "max-file": "3"}}
	})
	if code != 0 {
		t.Fatal(code)
	}
	ins := e.inspect(id)
	for _, suffix := range []string{"", ".1", ".2"} {
		st, err := os.Stat(ins.LogPath + suffix)
		if err != nil {
			t.Fatalf("log file %s: %v", suffix, err)
		}
		if st.Size() > 1024+100 {
			t.Errorf("log file %s is %d bytes", suffix, st.Size())
		}
	}
	if _, err := os.Stat(ins.LogPath + ".3"); !os.IsNotExist(err) {
		t.Errorf("a fourth file: %v", err)
	}
	out := e.logs(id, LogsOptions{Stdout: true, Tail: -1})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 30 || lines[len(lines)-1] != "line200" {
		t.Fatalf("logs across rotated files: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	first, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "line"))
	for i, l := range lines {
		if l != "line"+strconv.Itoa(first+i) {
			t.Fatalf("line %d is %q: rotated files out of order", i, l)
		}
	}
	if got := e.logs(id, LogsOptions{Stdout: true, Tail: 3}); got != "line198\nline199\nline200\n" {
		t.Fatalf("tail across rotation: %q", got)
	}

	id = e.create([]string{"echo", "nowhere"}, func(r *CreateRequest) {
		r.HostConfig.LogConfig = container.LogConfig{Type: "none"}
	})
	wait, _ := e.m.Wait(ctx, id, container.WaitConditionNextExit)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if res := <-wait; res.StatusCode != 0 {
		t.Fatal(res.StatusCode)
	}
	if e.inspect(id).LogPath != "" {
		t.Error("none driver has a log path")
	}
	if _, err := e.m.Logs(ctx, id, LogsOptions{Stdout: true}); !errdefs.IsNotImplemented(err) || err.Error() != "configured logging driver does not support reading" {
		t.Fatalf("logs with driver none: %v", err)
	}
}

func TestInspectShape(t *testing.T) {
	e := newEnv(t)
	id := e.create([]string{"sh", "-c", "exit 0"}, func(r *CreateRequest) {
		r.Name = "shape"
		r.Config.Labels = map[string]string{"a": "b"}
	})
	ins := e.inspect("shape")
	if ins.ID != id || ins.Name != "/shape" || ins.Path != "sh" || strings.Join(ins.Args, " ") != "-c exit 0" {
		t.Errorf("identity: %+v", ins)
	}
	if ins.State.Status != "created" || ins.State.StartedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("state: %+v", ins.State)
	}
	if ins.GraphDriver == nil || ins.GraphDriver.Name != e.store.Driver().Name() {
		t.Fatalf("graph driver: %+v", ins.GraphDriver)
	}
	if ins.GraphDriver.Name == "overlay2" {
		for _, k := range []string{"LowerDir", "MergedDir", "UpperDir", "WorkDir"} {
			if ins.GraphDriver.Data[k] == "" {
				t.Errorf("GraphDriver.Data lacks %s", k)
			}
		}
		if _, err := os.Stat(ins.GraphDriver.Data["UpperDir"]); err != nil {
			t.Errorf("upper dir: %v", err)
		}
	}
	hc := ins.HostConfig
	if hc.NetworkMode != "default" || hc.LogConfig.Type != "json-file" || hc.RestartPolicy.Name != "no" || hc.ShmSize != 64<<20 ||
		hc.IpcMode != "private" || hc.Runtime != "runc" || hc.OomKillDisable == nil || len(hc.MaskedPaths) == 0 || len(hc.ReadonlyPaths) == 0 {
		t.Errorf("host config defaults: %+v", hc)
	}
	if ins.Config.Hostname != id[:12] || ins.Config.Labels["a"] != "b" || ins.Config.Image != "busybox" || len(ins.Config.Env) == 0 {
		t.Errorf("config: %+v", ins.Config)
	}
	// The result is a copy.
	ins.Config.Labels["a"] = "changed"
	if e.inspect(id).Config.Labels["a"] != "b" {
		t.Error("inspect result shares the record")
	}
	for _, p := range []string{ins.HostnamePath, ins.HostsPath, ins.ResolvConfPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	resolv, _ := os.ReadFile(ins.ResolvConfPath)
	if strings.Contains(string(resolv), "nameserver 127.") || !strings.Contains(string(resolv), "nameserver ") {
		t.Errorf("resolv.conf: %q", resolv)
	}
	ins2, err := e.m.Inspect(context.Background(), id, true)
	if err != nil || ins2.SizeRw == nil || ins2.SizeRootFs == nil || *ins2.SizeRootFs <= 0 {
		t.Errorf("inspect size: %v %v", ins2.SizeRootFs, err)
	}
}
