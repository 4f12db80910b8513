package cli

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitForRequest waits until the fake has seen a request containing s.
func waitForRequest(t *testing.T, f *fakeRuntime, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.ContainsFunc(f.requestPaths(), func(r string) bool { return strings.Contains(r, s) }) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no request %q in:\n%s", s, strings.Join(f.requestPaths(), "\n"))
}

// An attached run forwards the signals berth gets to the container, and
// exits with the container's status.
func TestRunForwardsSignals(t *testing.T) {
	f := startFakeRuntime(t, time.Now())
	f.pulled["busybox:latest"] = true
	done := make(chan cliResult, 1)
	go func() { done <- runBerth(t, f.host(), nil, "", "run", "--name", "s", "busybox", "sleep") }()
	waitForRequest(t, f, "/start")
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 128+int(syscall.SIGUSR1) {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end after the forwarded signal")
	}
	waitForRequest(t, f, "/kill?signal=USR1")
}

// A container that ignores the signals keeps berth waiting, until the
// third SIGINT/SIGTERM: then berth gives up as docker does.
func TestRunGivesUpAfterThreeInterrupts(t *testing.T) {
	f := startFakeRuntime(t, time.Now())
	f.pulled["busybox:latest"] = true
	done := make(chan cliResult, 1)
	go func() { done <- runBerth(t, f.host(), nil, "", "run", "--name", "s", "busybox", "stubborn") }()
	waitForRequest(t, f, "/start")
	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT} {
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		// Each is forwarded before the next is sent.
		for n := 0; ; n++ {
			kills := 0
			for _, r := range f.requestPaths() {
				if strings.Contains(r, "/kill?signal=") {
					kills++
				}
			}
			if kills == i+1 {
				break
			}
			if n > 500 {
				t.Fatalf("signal %d not forwarded: %v", i+1, f.requestPaths())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.stderr, "got 3 SIGTERM/SIGINTs, forcefully exiting") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run still waiting after three interrupts")
	}
	if r := runBerth(t, f.host(), nil, "", "rm", "-f", "s"); r.code != 0 {
		t.Fatalf("rm -f: %+v", r)
	}
}

func TestToStatusError(t *testing.T) {
	for msg, code := range map[string]int{
		`exec: "nope": executable file not found in $PATH`: 127,
		"open /x: no such file or directory":               127,
		"exec /secret: permission denied":                  126,
		`exec: "/etc": is a directory`:                     126,
		"cgroup setup failed":                              125,
	} {
		var st statusError
		if !errors.As(toStatusError(errors.New(msg)), &st) || st.code != code {
			t.Errorf("%q: %+v, want %d", msg, st, code)
		}
		if want := "berth: " + msg + "\n\nRun 'berth run --help' for more information"; st.status != want {
			t.Errorf("%q: message %q", msg, st.status)
		}
	}
}

func TestParseVolumeSpec(t *testing.T) {
	for _, tc := range []struct {
		spec                    string
		source, target, options string
		bind                    bool
		err                     string
	}{
		{spec: "/data", target: "/data"},
		{spec: "/x", target: "/x"},
		{spec: ":a", target: ":a"}, // too short to be split, as in docker
		{spec: "/srv:/data", source: "/srv", target: "/data", bind: true},
		{spec: "/srv:/data:ro", source: "/srv", target: "/data", options: "ro", bind: true},
		{spec: "./rel:/r", source: "./rel", target: "/r", bind: true},
		{spec: "~/x:/y", source: "~/x", target: "/y", bind: true},
		{spec: "named:/v", source: "named", target: "/v"},
		{spec: "named:/v:nocopy,ro", source: "named", target: "/v", options: "nocopy,ro"},
		// A lone letter before a colon is a drive: "a:b" is one part.
		{spec: "a:b:c:d", source: "a:b", target: "c:d", bind: true},
		{spec: "a::b", source: "a:", target: "b", bind: true},
		{spec: "/x:/y:ro:z", err: "invalid spec: /x:/y:ro:z: too many colons"},
		{spec: "/x:", err: "invalid spec: /x:: empty section between colons"},
		{spec: "", err: "invalid empty volume spec"},
	} {
		v, err := parseVolumeSpec(tc.spec)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || v.source != tc.source || v.target != tc.target || v.options != tc.options || v.bind != tc.bind {
			t.Errorf("%q: %+v %v", tc.spec, v, err)
		}
	}
}
