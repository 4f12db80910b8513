package run

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Files of a container's bundle directory (<ExecRoot>/<id>/).
const (
	bundleConfigName = "config.json" // the OCI spec
	shimConfigName   = "shim.json"
	shimSocketName   = "shim.sock"
	shimLogName      = "shim.log"
	exitFileName     = "exit"
	runtimeLogName   = "runtime.log"
	initPidName      = "init.pid"
	netnsName        = "netns"
)

// shimConfig is what berthd tells a shim, in <bundle>/shim.json.
type shimConfig struct {
	ID          string `json:"id"`
	Runtime     string `json:"runtime"`     // path of a runc-compatible binary
	RuntimeRoot string `json:"runtimeRoot"` // its --root
	LogPath     string `json:"logPath"`     // json-file log; "" for none
	LogMaxSize  int64  `json:"logMaxSize,omitempty"`
	LogMaxFile  int    `json:"logMaxFile,omitempty"`
	Stdin       bool   `json:"stdin,omitempty"`
	StdinOnce   bool   `json:"stdinOnce,omitempty"`
}

// The shim protocol: a client connects to <bundle>/shim.sock, sends one
// JSON request line and reads one JSON response line. "attach" and
// "stdin" then turn the connection into a byte stream (stdcopy frames
// from the shim, raw stdin bytes to it).
const (
	opStart  = "start"  // run the container; answers its pid or the runtime's error
	opWait   = "wait"   // acknowledges, then answers again when the container has exited (or failed to start)
	opState  = "state"  // answers status and pid
	opKill   = "kill"   // sends Signal to the container's init
	opAttach = "attach" // streams Stdout/Stderr as stdcopy frames until both end
	opStdin  = "stdin"  // copies the rest of the connection to the container's stdin
)

type shimRequest struct {
	Op     string `json:"op"`
	Signal int    `json:"signal,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
}

type shimResponse struct {
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// ShimPid is the shim's own pid (start and state answers).
	ShimPid int       `json:"shimPid,omitempty"`
	Status  string    `json:"status,omitempty"` // created, running, exited
	Exit    *exitInfo `json:"exit,omitempty"`
}

// exitInfo is how a container ended; the shim also writes it to
// <bundle>/exit so a berthd that was away reads it later.
type exitInfo struct {
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
	// StartError is set when the container never ran.
	StartError string `json:"startError,omitempty"`
}

func writeExitFile(bundle string, e exitInfo) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(bundle, exitFileName), b, 0o600)
}

func readExitFile(bundle string) (exitInfo, error) {
	var e exitInfo
	b, err := os.ReadFile(filepath.Join(bundle, exitFileName))
	if err != nil {
		return e, err
	}
	err = json.Unmarshal(b, &e)
	return e, err
}

// writeFileAtomic writes through a temp file and a rename, so readers see
// the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// socketAddr returns an address for the unix socket at path. sun_path holds
// 107 bytes; a longer path is reached through /proc/self/fd of its open
// directory (release closes it once bound or connected).
func socketAddr(path string) (addr string, release func(), err error) {
	if len(path) < 100 {
		return path, func() {}, nil
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open socket dir: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(path)), func() { unix.Close(fd) }, nil
}

// shimClient talks to one container's shim.
type shimClient struct {
	bundle string
}

var errShimGone = errors.New("shim is not running")

func (c shimClient) dial(ctx context.Context) (net.Conn, error) {
	addr, release, err := socketAddr(filepath.Join(c.bundle, shimSocketName))
	if err != nil {
		return nil, err
	}
	defer release()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %w", errShimGone, err)
		}
		return nil, err
	}
	return conn, nil
}

// shimConn is an open request: resp is the shim's answer line, Read
// continues with whatever the shim streams after it.
type shimConn struct {
	net.Conn
	r    *bufio.Reader
	resp shimResponse
}

func (s *shimConn) Read(p []byte) (int, error) { return s.r.Read(p) }

// open sends req and reads the response line. A response carrying an
// error is returned as one (the connection closed).
func (c shimClient) open(ctx context.Context, req shimRequest) (*shimConn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	sc := &shimConn{Conn: conn, r: bufio.NewReader(conn)}
	line, err := sc.r.ReadBytes('\n')
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("shim %s: %w: connection closed", req.Op, errShimGone)
		}
		return nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	if err := json.Unmarshal(line, &sc.resp); err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim %s: bad response: %w", req.Op, err)
	}
	conn.SetDeadline(time.Time{})
	if sc.resp.Error != "" {
		conn.Close()
		return nil, &shimError{op: req.Op, msg: sc.resp.Error}
	}
	return sc, nil
}

// call is open for requests without a stream.
func (c shimClient) call(ctx context.Context, req shimRequest) (shimResponse, error) {
	sc, err := c.open(ctx, req)
	if err != nil {
		return shimResponse{}, err
	}
	sc.Close()
	return sc.resp, nil
}

// shimError is an error the shim answered (as opposed to failing to
// answer).
type shimError struct {
	op  string
	msg string
}

func (e *shimError) Error() string { return e.msg }

// readWaitResponse reads the answer of an opened wait request.
func readWaitResponse(sc *shimConn) (exitInfo, error) {
	line, err := sc.r.ReadBytes('\n')
	if err != nil {
		return exitInfo{}, fmt.Errorf("shim wait: %w: %w", errShimGone, err)
	}
	var resp shimResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return exitInfo{}, fmt.Errorf("shim wait: bad response: %w", err)
	}
	if resp.Exit == nil {
		return exitInfo{}, fmt.Errorf("shim wait: %s", resp.Error)
	}
	return *resp.Exit, nil
}
