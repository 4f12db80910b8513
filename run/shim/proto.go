package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Files of a container's bundle directory that belong to the shim.
const (
	ConfigFile     = "shim.json" // Config, written by berthd before the shim starts
	SocketFile     = "shim.sock"
	LogFile        = "shim.log" // the shim's own stderr
	ExitFile       = "exit"     // Exit, written when the container ends
	RuntimeLogFile = "runtime.log"
	InitPidFile    = "init.pid"
)

// Config is what berthd tells a shim, in <bundle>/shim.json.
type Config struct {
	ID          string `json:"id"`
	Runtime     string `json:"runtime"`     // path of a runc-compatible binary
	RuntimeRoot string `json:"runtimeRoot"` // its --root
	LogPath     string `json:"logPath"`     // json-file log; "" for none
	LogMaxSize  int64  `json:"logMaxSize,omitempty"`
	LogMaxFile  int    `json:"logMaxFile,omitempty"`
	Stdin       bool   `json:"stdin,omitempty"`
	StdinOnce   bool   `json:"stdinOnce,omitempty"`
	// Terminal runs the container's init on a pseudo-terminal (runc's
	// --console-socket; the spec's process.terminal must be set too): the
	// shim holds the master, its output is one raw stream (sent as
	// stream-1 frames and logged as stdout), OpStdin writes to it (a
	// client's EOF does not close it, StdinOnce or not, as with Docker)
	// and OpResize sets its size. The master exists once OpStart has
	// answered.
	Terminal bool `json:"terminal,omitempty"`
}

// WriteConfig writes cfg to bundle.
func WriteConfig(bundle string, cfg Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("write shim config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, ConfigFile), b, 0o600); err != nil {
		return fmt.Errorf("write shim config: %w", err)
	}
	return nil
}

func readConfig(bundle string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(filepath.Join(bundle, ConfigFile))
	if err != nil {
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	if cfg.ID == "" || cfg.Runtime == "" || cfg.RuntimeRoot == "" {
		return cfg, fmt.Errorf("read shim config: it lacks id, runtime or runtime root")
	}
	return cfg, nil
}

// Operations of the protocol.
const (
	OpStart  = "start"  // run the container; answers its pid or the runtime's error
	OpWait   = "wait"   // acknowledges, then answers again when the container has exited (or failed to start)
	OpState  = "state"  // answers status and pid
	OpKill   = "kill"   // sends Signal to the container's init
	OpAttach = "attach" // streams Stdout/Stderr as stdcopy frames until both end
	OpStdin  = "stdin"  // copies the rest of the connection to the container's stdin
	// OpResize sets the window size of the init's terminal (ExecID "") or
	// of a running exec's. It fails when the container is not running
	// ("container is not running") or the exec is not running; a process
	// without a terminal has nothing to size, which is no error.
	OpResize = "resize"
	// OpExec runs ExecProcess (a runtime-spec Process as JSON, a file in
	// the bundle) in the running container with `<runtime> exec --detach`
	// (--console-socket when Terminal). The answer carries its pid or the
	// runtime's error; then the connection is the exec's stream: the shim
	// sends stdcopy frames of its output (stream 1 and 2; one raw stream
	// as stream 1 with a terminal) and, last, one frame of stream
	// ExitFrame whose payload is the JSON Exit; what the client sends is
	// the exec's stdin (when Stdin; /dev/null otherwise), and the
	// client's half-close closes it (a terminal stays open and gets no
	// ^D, as with Docker). The exec is not killed when the connection
	// goes; its output is then dropped. A container that is not running
	// is answered "container is not running". The shim's files for the
	// exec (<bundle>/exec-<id>.log, .pid, .sock) and the process file,
	// when it is in the bundle, are removed when the exec ends.
	// ReadFrame reads the stream.
	OpExec = "exec"
)

// ExitFrame is the stream byte of the frame that ends an exec's stream:
// its payload is the exec's Exit as JSON.
const ExitFrame = 255

// Request is one request line.
type Request struct {
	Op     string `json:"op"`
	Signal int    `json:"signal,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	// Width and Height are OpResize's window size (columns, rows).
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// ExecID names an exec (OpExec, OpResize): letters, digits, '_',
	// '-' and '.', as it names files in the bundle.
	ExecID string `json:"execID,omitempty"`
	// ExecProcess is the path of the exec's process.json (OpExec).
	ExecProcess string `json:"execProcess,omitempty"`
	// Terminal and Stdin are the exec's (OpExec); Terminal must match
	// the process file's "terminal", or the runtime refuses.
	Terminal bool `json:"terminal,omitempty"`
	Stdin    bool `json:"stdin,omitempty"`
}

// Statuses a shim reports.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusExited  = "exited"
)

// Response is one response line.
type Response struct {
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// ShimPid is the shim's own pid (start and state answers).
	ShimPid int    `json:"shimPid,omitempty"`
	Status  string `json:"status,omitempty"` // StatusCreated, StatusRunning, StatusExited
	// StartedAt is when the runtime had started the container (start and
	// state answers, once it has).
	StartedAt time.Time `json:"startedAt,omitzero"`
	Exit      *Exit     `json:"exit,omitempty"`
}

// Exit is how a container ended; the shim also writes it to
// <bundle>/exit so a berthd that was away reads it later.
type Exit struct {
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
	// StartError is set when the container never ran.
	StartError string `json:"startError,omitempty"`
}

// WriteExitFile records e in bundle (atomically: readers see all of it or
// nothing).
func WriteExitFile(bundle string, e Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	path := filepath.Join(bundle, ExitFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ReadExitFile reads the exit recorded in bundle.
func ReadExitFile(bundle string) (Exit, error) {
	var e Exit
	b, err := os.ReadFile(filepath.Join(bundle, ExitFile))
	if err != nil {
		return e, err
	}
	err = json.Unmarshal(b, &e)
	return e, err
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
