package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is a running berthd or dockerd on its own paths.
type daemon struct {
	name string
	dir  string
	sock string
	cmd  *exec.Cmd
	log  *os.File
}

func binDir() string {
	if d := os.Getenv("BERTH_BIN"); d != "" {
		return d
	}
	return "bin"
}

func startBerthd(ctx context.Context, dir string, extra ...string) (*daemon, error) {
	d := &daemon{name: "berthd", dir: dir, sock: filepath.Join(dir, "berth.sock")}
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte("{}"), 0o644)
	args := append([]string{"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "berthd.pid"), "--config-file", cfg, "-H", "unix://" + d.sock}, extra...)
	return d, d.start(ctx, filepath.Join(binDir(), "berthd"), args)
}

// startDockerd runs Debian's dockerd the way BENCH.md sets up the anchor,
// so it never meets berthd or a system docker.
func startDockerd(ctx context.Context, dir string) (*daemon, error) {
	d := &daemon{name: "dockerd", dir: dir, sock: filepath.Join(dir, "docker.sock")}
	args := []string{"--data-root", filepath.Join(dir, "docker"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://" + d.sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--config-file", filepath.Join(dir, "none.json")}
	os.WriteFile(filepath.Join(dir, "none.json"), []byte("{}"), 0o644)
	return d, d.start(ctx, "/usr/sbin/dockerd", args)
}

func (d *daemon) start(ctx context.Context, bin string, args []string) error {
	log, err := os.Create(filepath.Join(d.dir, d.name+".log"))
	if err != nil {
		return err
	}
	d.log = log
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := d.client().Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
	b, _ := os.ReadFile(log.Name())
	return fmt.Errorf("%s did not answer /_ping:\n%s", d.name, b)
}

func (d *daemon) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 16,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		}}}
}

// stop ends the daemon by its PID (SIGTERM, then SIGKILL); dockerd's own
// containerd child goes with its process group.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if d.log != nil {
		d.log.Close()
	}
	if d.name == "dockerd" {
		// dockerd leaves its data-root mounts (overlay, netns) behind.
		exec.Command("sh", "-c", "grep -o ' "+d.dir+"[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l").Run()
	}
}

// rssKB of the daemon process (and, for dockerd, its containerd).
func (d *daemon) rssKB() int64 {
	total := pidRSS(d.cmd.Process.Pid)
	if d.name == "dockerd" {
		out, _ := exec.Command("pgrep", "-P", fmt.Sprint(d.cmd.Process.Pid)).Output()
		for _, p := range strings.Fields(string(out)) {
			var pid int
			fmt.Sscan(p, &pid)
			total += pidRSS(pid)
		}
	}
	return total
}

func pidRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb
		}
	}
	return 0
}

// docker runs the docker CLI against a daemon.
func (d *daemon) docker(args ...string) (string, error) {
	cmd := exec.Command("/usr/local/bin/docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "cli"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %v: %v: %s", args, err, out.String())
	}
	return out.String(), nil
}

// hammer sends GET path with clients concurrent keep-alive connections
// for dur and returns requests per second. It speaks HTTP/1.1 by hand:
// net/http's client costs as much CPU per request as a small handler, and
// on two cores that would hide the server's own cost.
func hammer(d *daemon, path string, clients int, dur time.Duration) (float64, error) {
	deadline := time.Now().Add(dur)
	type result struct {
		n   int
		err error
	}
	results := make(chan result, clients)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-bench\r\n\r\n")
	for range clients {
		go func() {
			conn, err := net.Dial("unix", d.sock)
			if err != nil {
				results <- result{0, err}
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 64<<10)
			n := 0
			for time.Now().Before(deadline) {
				if _, err := conn.Write(req); err != nil {
					results <- result{n, err}
					return
				}
				if err := readResponse(br); err != nil {
					results <- result{n, fmt.Errorf("%s %s: %w", d.name, path, err)}
					return
				}
				n++
			}
			results <- result{n, nil}
		}()
	}
	total := 0
	var firstErr error
	for range clients {
		r := <-results
		total += r.n
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	return float64(total) / dur.Seconds(), firstErr
}

// readResponse reads one 200 response (Content-Length or chunked body).
func readResponse(br *bufio.Reader) error {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("status %q", bytes.TrimSpace(status))
	}
	length, chunked := -1, false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")) && bytes.EqualFold(v, []byte("chunked")):
			chunked = true
		}
	}
	if !chunked {
		_, err := br.Discard(max(length, 0))
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil {
			return err
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
		if size == 0 {
			return nil
		}
	}
}
