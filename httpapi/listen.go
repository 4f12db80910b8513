package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/moby/sys/user"
)

// DefaultSocketGroup is the group dockerd gives its socket. Like dockerd,
// a missing "docker" group is tolerated (the socket stays root-only); any
// other missing group is an error.
const DefaultSocketGroup = "docker"

// socketMode is the unix socket's permission: owner and group only.
const socketMode fs.FileMode = 0o660

// Listen opens one or more listeners per normalised host string:
//
//   - unix:///path — removes a stale socket left by a crashed daemon (but
//     refuses to steal one a live process answers on, or to delete a
//     non-socket), creates the parent directory, then chowns the socket to
//     root:group and sets mode 0660. With group "" it stays root:root.
//   - tcp://host:port — wrapped in TLS when tlsConf is not nil (with client
//     certificate verification if tlsConf asks for it).
//   - fd:// or fd://N — systemd socket activation (LISTEN_FDS): all passed
//     sockets, or only fd N. TCP ones get TLS when tlsConf is not nil.
//
// On error every listener opened so far is closed.
func Listen(ctx context.Context, hosts []string, tlsConf *tls.Config, group string) ([]net.Listener, error) {
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
		if len(tlsConf.NextProtos) == 0 {
			// Hijacked streams (attach, exec) need HTTP/1.1.
			tlsConf.NextProtos = []string{"http/1.1"}
		}
	}
	var (
		out       []net.Listener
		activated []net.Listener // systemd sockets, taken once
		fdsTaken  bool
	)
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range out {
			_ = l.Close()
		}
		for _, l := range activated {
			if l != nil && !slices.Contains(out, l) {
				_ = l.Close()
			}
		}
		return nil, err
	}
	for _, host := range hosts {
		proto, addr, ok := strings.Cut(host, "://")
		if !ok {
			return fail(fmt.Errorf("listen %q: want unix://, tcp:// or fd://", host))
		}
		switch proto {
		case "unix":
			l, err := listenUnix(ctx, addr, group)
			if err != nil {
				return fail(fmt.Errorf("listen %s: %w", host, err))
			}
			out = append(out, l)
		case "tcp":
			l, err := listenTCP(ctx, addr, tlsConf)
			if err != nil {
				return fail(fmt.Errorf("listen %s: %w", host, err))
			}
			out = append(out, l)
		case "fd":
			if !fdsTaken {
				fdsTaken = true
				var err error
				if activated, err = activation.TLSListeners(tlsConf); err != nil {
					return fail(fmt.Errorf("listen %s: socket activation: %w", host, err))
				}
			}
			ls, err := pickActivated(activated, addr)
			if err != nil {
				return fail(fmt.Errorf("listen %s: %w", host, err))
			}
			out = append(out, ls...)
		default:
			return fail(fmt.Errorf("listen %q: unsupported protocol %q (want unix, tcp or fd)", host, proto))
		}
	}
	// Activated sockets nobody asked for are not ours to keep open.
	for _, l := range activated {
		if l != nil && !slices.Contains(out, l) {
			_ = l.Close()
		}
	}
	return out, nil
}

// pickActivated selects from systemd's sockets: "" or "*" means all, a
// number the socket passed as that fd (3 is the first).
func pickActivated(activated []net.Listener, addr string) ([]net.Listener, error) {
	var all []net.Listener
	for _, l := range activated {
		if l != nil {
			all = append(all, l)
		}
	}
	if len(all) == 0 {
		return nil, errors.New("no sockets found via socket activation: make sure the service was started by systemd")
	}
	if addr == "" || addr == "*" {
		return all, nil
	}
	fd, err := strconv.Atoi(addr)
	if err != nil {
		return nil, fmt.Errorf("systemd fd address should be a number: %q", addr)
	}
	i := fd - 3
	if i < 0 || i >= len(activated) || activated[i] == nil {
		return nil, fmt.Errorf("no socket-activated listener on fd %d", fd)
	}
	return []net.Listener{activated[i]}, nil
}

func listenTCP(ctx context.Context, addr string, tlsConf *tls.Config) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tcp address must be host:port: %w", err)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	return l, nil
}

func listenUnix(ctx context.Context, path, group string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("empty socket path")
	}
	gid, err := socketGID(group)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if err := removeStaleSocket(ctx, path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	// Right after bind the socket has the umask's mode; connecting needs
	// write permission, which a usual umask (022) grants to nobody but
	// the owner, so the window before the chmod exposes nothing.
	if os.Geteuid() == 0 {
		err = os.Chown(path, 0, gid)
	} else if gid != os.Getgid() {
		err = os.Chown(path, -1, gid)
	}
	if err == nil {
		err = os.Chmod(path, socketMode)
	}
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("set socket owner and mode: %w", err)
	}
	return l, nil
}

// socketGID resolves the socket group by name or number. "" is the
// daemon's own group; a missing DefaultSocketGroup falls back to it.
func socketGID(group string) (int, error) {
	if group == "" {
		return os.Getgid(), nil
	}
	g, err := user.LookupGroup(group)
	if err == nil {
		return g.Gid, nil
	}
	if gid, nerr := strconv.Atoi(group); nerr == nil && gid >= 0 {
		return gid, nil
	}
	if group == DefaultSocketGroup {
		return os.Getgid(), nil
	}
	return -1, fmt.Errorf("socket group %q not found: %w", group, err)
}

// removeStaleSocket deletes a socket file nobody answers on. A live socket
// means another daemon runs; anything else at the path is not ours.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	if c, err := d.DialContext(dctx, "unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
