package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestResolveEndpoint(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
		err  string
	}{
		{name: "default is berthd's socket", want: "unix:///var/run/berth.sock"},
		{name: "DOCKER_HOST", env: map[string]string{"DOCKER_HOST": "tcp://10.0.0.1:2375"}, want: "tcp://10.0.0.1:2375"},
		{name: "-H beats DOCKER_HOST", args: []string{"-H", "unix:///run/x.sock"}, env: map[string]string{"DOCKER_HOST": "tcp://10.0.0.1"}, want: "unix:///run/x.sock"},
		{name: "tcp default port", args: []string{"-H", "tcp://example.test"}, want: "tcp://example.test:2375"},
		{name: "shorthand port", args: []string{"-H", ":4243"}, want: "tcp://localhost:4243"},
		{name: "base path kept", args: []string{"-H", "tcp://h:1/prefix"}, want: "tcp://h:1/prefix"},
		{name: "two hosts", args: []string{"-H", "unix:///a", "-H", "unix:///b"}, err: "Specify only one -H"},
		{name: "bad scheme", args: []string{"-H", "bogus://x"}, err: "Invalid bind address format: bogus://x"},
		{name: "fd is for the daemon", args: []string{"-H", "fd://"}, err: "fd:// is for berthd only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			var o clientOptions
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			o.installFlags(fs, getenv)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			ep, err := o.resolveEndpoint(fs, getenv)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error %q, got %v (%q)", tc.err, err, ep.host)
				}
				return
			}
			if err != nil || ep.host != tc.want || ep.tls != nil {
				t.Fatalf("got %q tls=%v err=%v, want %q", ep.host, ep.tls != nil, err, tc.want)
			}
		})
	}
}

func TestResolveEndpointTLSDefaults(t *testing.T) {
	pki := newTestPKI(t)
	getenv := func(k string) string {
		if k == "DOCKER_CERT_PATH" {
			return pki.dir
		}
		return ""
	}
	var o clientOptions
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.installFlags(fs, getenv)
	if err := fs.Parse([]string{"--tlsverify"}); err != nil {
		t.Fatal(err)
	}
	ep, err := o.resolveEndpoint(fs, getenv)
	if err != nil {
		t.Fatal(err)
	}
	// With TLS the default address is the TLS port, as for docker.
	if ep.host != "tcp://localhost:2376" {
		t.Fatalf("host %q", ep.host)
	}
	if ep.tls == nil || ep.tls.InsecureSkipVerify || ep.tls.RootCAs == nil || len(ep.tls.Certificates) != 1 {
		t.Fatalf("tls config %+v", ep.tls)
	}

	// --tlsverify=false still means TLS (without verification), as in
	// docker: giving the flag at all turns TLS on.
	o = clientOptions{}
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.installFlags(fs, getenv)
	if err := fs.Parse([]string{"--tlsverify=false", "-H", "tcp://127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	ep, err = o.resolveEndpoint(fs, getenv)
	if err != nil || ep.tls == nil || !ep.tls.InsecureSkipVerify {
		t.Fatalf("--tlsverify=false: %+v %v", ep, err)
	}
}

// TestProxyForTCPOnly sends a tcp request through HTTP_PROXY (the proxy
// here is the fake daemon itself, answering absolute-URI requests) and
// checks that a unix socket ignores it.
func TestProxyForTCPOnly(t *testing.T) {
	f := newFakeEngine(t, time.Now())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		proxied []string
	)
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), proxied...)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxied = append(proxied, r.RequestURI)
		mu.Unlock()
		f.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	env := map[string]string{"HTTP_PROXY": "http://" + l.Addr().String()}

	// The daemon's name never resolves: only the proxy can reach it.
	got := runBerth(t, "tcp://berth-daemon.invalid:2375", env, "", "version", "--format", "{{.Server.Version}}")
	if got.code != 0 || got.stdout != "0.1.0-test\n" {
		t.Fatalf("through proxy: %d %q %q", got.code, got.stdout, got.stderr)
	}
	if p := seen(); len(p) == 0 || !strings.HasPrefix(p[len(p)-1], "http://berth-daemon.invalid:2375/") {
		t.Fatalf("proxy saw %q", p)
	}

	before := len(seen())
	unix := startFakeEngine(t)
	got = runBerth(t, unix.host(), env, "", "version", "--format", "{{.Server.Version}}")
	if got.code != 0 || len(seen()) != before {
		t.Fatalf("unix socket: %d %q, proxy saw %q", got.code, got.stderr, seen())
	}
}

func TestProxyConfigNoProxy(t *testing.T) {
	env := map[string]string{"http_proxy": "http://proxy.test:3128", "NO_PROXY": "daemon.internal,.corp"}
	pf := proxyConfig(func(k string) string { return env[k] }).ProxyFunc()
	for host, want := range map[string]string{
		"daemon.internal:2375": "",
		"x.corp:2375":          "",
		"other.test:2375":      "http://proxy.test:3128",
	} {
		u, err := pf(&url.URL{Scheme: "http", Host: host})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if u != nil {
			got = u.String()
		}
		if got != want {
			t.Errorf("%s: proxy %q, want %q", host, got, want)
		}
	}
}

func TestDaemonErrorsExitOne(t *testing.T) {
	f := startFakeEngine(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "inspect", "nope"}, "Error response from daemon: No such image: nope:latest\n"},
		{[]string{"history", "nope:1"}, "Error response from daemon: No such image: nope:1\n"},
		{[]string{"rmi", "busybox"}, "Error response from daemon: conflict: unable to delete a1b2c3d4a1b2 (must be forced) - image is referenced in multiple repositories\n"},
		{[]string{"inspect", "nope"}, "Error: No such object: nope\n"},
	} {
		// rmi busybox by name only untags; the conflict needs the ID.
		if tc.args[0] == "rmi" {
			tc.args[1] = truncateID(idBusybox)
		}
		got := runBerth(t, f.host(), nil, "", tc.args...)
		if got.code != 1 || got.stderr != tc.want {
			t.Errorf("%v: %d %q, want 1 %q", tc.args, got.code, got.stderr, tc.want)
		}
	}
}

func TestDaemonUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	got := runBerth(t, "unix://"+sock, nil, "", "images")
	want := "Cannot connect to the Docker daemon at unix://" + sock + ". Is the docker daemon running?\n"
	if got.code != 1 || got.stderr != want {
		t.Fatalf("got %d %q, want %q", got.code, got.stderr, want)
	}
	// version still describes the client, then fails.
	got = runBerth(t, "unix://"+sock, nil, "", "version")
	if got.code != 1 || !strings.HasPrefix(got.stdout, "Client:\n Version:") || strings.Contains(got.stdout, "Server:") {
		t.Fatalf("version: %d %q %q", got.code, got.stdout, got.stderr)
	}
	// info without a daemon prints the client part and an empty server.
	got = runBerth(t, "unix://"+sock, nil, "", "info")
	if got.code != 1 || !strings.Contains(got.stdout, "\nServer:\n") || !strings.Contains(got.stderr, "Cannot connect") {
		t.Fatalf("info: %d %q %q", got.code, got.stdout, got.stderr)
	}
	// A template on client fields needs no daemon.
	got = runBerth(t, "unix://"+sock, nil, "", "info", "--format", "{{.ClientInfo.Context}}")
	if got.code != 0 || got.stdout != "default\n" {
		t.Fatalf("info client template: %d %q %q", got.code, got.stdout, got.stderr)
	}
}

func TestVersionFlagAndHelp(t *testing.T) {
	got := runBerth(t, "", nil, "", "-v")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "berth version ") || !strings.Contains(got.stdout, ", build ") {
		t.Fatalf("-v: %d %q", got.code, got.stdout)
	}
	got = runBerth(t, "", nil, "", "--help")
	for _, want := range []string{"Usage:  berth [OPTIONS] COMMAND", "Management Commands:\n  container", "\n  images      List images\n", "Global Options:", "-H, --host list"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("--help lacks %q:\n%s", want, got.stdout)
		}
	}
	// A group without a subcommand prints its help on stderr, exit 0.
	got = runBerth(t, "", nil, "", "image")
	if got.code != 0 || got.stdout != "" || !strings.HasPrefix(got.stderr, "Usage:  berth image COMMAND\n\nManage images\n\nCommands:\n  history") {
		t.Fatalf("image: %d %q %q", got.code, got.stdout, got.stderr)
	}
	got = runBerth(t, "", nil, "", "image", "ls", "--help")
	if !strings.Contains(got.stdout, "Aliases:\n  berth image ls, berth image list, berth images\n\nOptions:\n  -a, --all") {
		t.Fatalf("image ls --help:\n%s", got.stdout)
	}
}

func TestSignalCancelsWithStatus(t *testing.T) {
	f := startFakeEngine(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-H", f.host(), "events"}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	// The stream stays open (no --until) until the signal arrives.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel(signalError{sig: syscall.SIGINT})
	select {
	case code := <-done:
		if code != 130 {
			t.Fatalf("exit status %d, want 130 (stderr %q)", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events did not stop on the signal")
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("printed %d events before the signal:\n%s", n, out.String())
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
