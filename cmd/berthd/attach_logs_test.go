package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// attachRaw sends an attach request on a fresh connection and returns the
// status and everything the daemon sends after the response head.
func attachRaw(t *testing.T, d *daemonProc, id, query string) (int, []byte) {
	t.Helper()
	c, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "POST /v1.41/containers/%s/attach?%s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", id, query)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	rest, _ := io.ReadAll(br)
	return resp.StatusCode, rest
}

// attach with logs=1 replays what the container logged before the stream:
// alone (stream=0) for a stopped container, then the live output of a
// running one.
func TestAttachLogsReplaysOutput(t *testing.T) {
	d := opsDaemon(t)
	d.mustDocker("run", "--name", "done", "busybox", "sh", "-c", "echo out1; echo err1 >&2")
	code, body := attachRaw(t, d, "done", "logs=1&stream=0&stdout=1&stderr=1")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("attach logs: %d %s", code, body)
	}
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, bytes.NewReader(body)); err != nil {
		t.Fatalf("demux %q: %v", body, err)
	}
	if out.String() != "out1\n" || errOut.String() != "err1\n" {
		t.Fatalf("replayed stdout %q stderr %q", out.String(), errOut.String())
	}
	// stdout only.
	_, body = attachRaw(t, d, "done", "logs=1&stream=0&stdout=1")
	out.Reset()
	errOut.Reset()
	stdcopy.StdCopy(&out, &errOut, bytes.NewReader(body))
	if out.String() != "out1\n" || errOut.Len() != 0 {
		t.Fatalf("stdout only: %q %q", out.String(), errOut.String())
	}

	// A running container: the log so far, then what follows until exit.
	d.mustDocker("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo before; sleep 1; echo after")
	waitUntil(t, 10*time.Second, "first line logged", func() bool { return strings.Contains(d.mustDocker("logs", "live"), "before") })
	_, body = attachRaw(t, d, "live", "logs=1&stream=1&stdout=1")
	out.Reset()
	stdcopy.StdCopy(&out, io.Discard, bytes.NewReader(body))
	if out.String() != "before\nafter\n" {
		t.Fatalf("logs then stream: %q", out.String())
	}
}
