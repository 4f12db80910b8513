package cli

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Socket defaults. berth's unix socket is its own, not dockerd's, so a berthd
// started with no -H never takes over (or collides with) a real dockerd on
// the same host; point the docker CLI at it with
// DOCKER_HOST=unix:///var/run/berth.sock.
const (
	// DefaultUnixSocket is where berthd listens when no -H is given.
	DefaultUnixSocket = "/var/run/berth.sock"
	// DefaultHost is DefaultUnixSocket as a -H value.
	DefaultHost = "unix://" + DefaultUnixSocket
	// DefaultHTTPHost is the host used when a tcp address names only a
	// port (`-H :2375`, `-H tcp://:2375`); dockerd uses localhost too.
	DefaultHTTPHost = "localhost"
	// DefaultHTTPPort is the IANA port for the plain-text Engine API.
	DefaultHTTPPort = 2375
	// DefaultTLSHTTPPort is the IANA port for the Engine API over TLS.
	DefaultTLSHTTPPort = 2376
	// DefaultTCPHost is the tcp address used for `-H tcp://` without TLS.
	DefaultTCPHost = "tcp://localhost:2375"
	// DefaultTLSHost is the tcp address used for an empty -H with TLS on.
	DefaultTLSHost = "tcp://localhost:2376"
)

// ParseDaemonHost turns one -H value (or one "hosts" entry of daemon.json)
// into the canonical address berthd listens on, with dockerd's forms:
//
//	""                    unix:///var/run/berth.sock (tcp://localhost:2376 with TLS, as dockerd)
//	unix://               unix:///var/run/berth.sock
//	unix:///path/sock     unix:///path/sock
//	tcp://                tcp://localhost:2375 (2376 with TLS)
//	tcp://host            tcp://host:2375 (2376 with TLS)
//	tcp://host:port, host:port, host:, :port
//	tcp://[::1]:2375      IPv6 literals in brackets
//	fd://, fd://3         systemd socket activation (all sockets, or one by number)
//
// A tcp address must not carry a path (the daemon cannot listen on one), so
// a bare "/path/to.sock" — which dockerd would read as a tcp host — is
// rejected; write unix:///path/to.sock.
func ParseDaemonHost(s string, tls bool) (string, error) {
	return parseHost(s, tls, false)
}

// ParseClientHost parses the address a client connects to (-H of berth,
// DOCKER_HOST). It accepts the daemon forms plus a base path on tcp
// addresses (tcp://host:2375/path, requests go below /path), and defaults to
// berthd's unix socket.
func ParseClientHost(s string, tls bool) (string, error) {
	return parseHost(s, tls, true)
}

// ValidateHost checks the syntax of a -H value without normalising it; the
// default port depends on TLS, which is only known once flags and the
// configuration file are merged.
func ValidateHost(s string) (string, error) {
	if _, err := ParseDaemonHost(s, false); err != nil {
		return s, err
	}
	return s, nil
}

func parseHost(s string, tls, allowPath bool) (string, error) {
	host := strings.TrimSpace(s)
	if host == "" {
		if tls {
			return DefaultTLSHost, nil
		}
		return DefaultHost, nil
	}
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		// host:port, :port and host: are tcp shorthands.
		proto, addr = "tcp", host
	}
	switch proto {
	case "tcp":
		port := DefaultHTTPPort
		if tls {
			port = DefaultTLSHTTPPort
		}
		return parseTCPAddr(host, addr, port, allowPath)
	case "unix":
		if strings.Contains(addr, "://") {
			return "", fmt.Errorf("Invalid proto, expected unix: %s", addr)
		}
		if addr == "" {
			addr = DefaultUnixSocket
		}
		return "unix://" + addr, nil
	case "fd":
		// Empty or "*" means every socket systemd passed; otherwise one
		// descriptor by number, which is what dockerd's listener accepts.
		if addr != "" && addr != "*" {
			if n, err := strconv.Atoi(addr); err != nil || n < 0 {
				return "", fmt.Errorf("failed to parse systemd fd address: should be a number: %s", addr)
			}
		}
		return host, nil
	default:
		return "", fmt.Errorf("Invalid bind address format: %s", host)
	}
}

// parseTCPAddr fills in the default host and port of a tcp address. orig is
// the value as given, for error messages; addr is it without "tcp://".
func parseTCPAddr(orig, addr string, defaultPort int, allowPath bool) (string, error) {
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("Invalid proto, expected tcp: %s", orig)
	}
	u, err := url.Parse("tcp://" + addr)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("Invalid bind address format: %s", orig)
	}
	// url.Parse accepts "host:" and "[::1]:" with an empty port, which
	// means the default port.
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") && !strings.HasPrefix(u.Host, "[") {
		// An IPv6 literal must be bracketed, or its last group reads as a port.
		return "", fmt.Errorf("Invalid bind address format: %s", orig)
	}
	if host == "" {
		host = DefaultHTTPHost
	}
	if port == "" {
		port = strconv.Itoa(defaultPort)
	}
	// Port 0 is allowed as in dockerd 20.10: the kernel picks a free port.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("Invalid bind address format: %s: invalid port %q", orig, port)
	}
	path := u.EscapedPath()
	if path != "" && !allowPath {
		return "", fmt.Errorf("Invalid bind address format: %s: a tcp address must not contain a path (for a unix socket write unix://%s)", orig, strings.TrimPrefix(orig, "tcp://"))
	}
	return "tcp://" + net.JoinHostPort(host, port) + path, nil
}
