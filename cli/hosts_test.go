package cli

import (
	"strings"
	"testing"
)

func TestParseDaemonHost(t *testing.T) {
	tests := []struct {
		in      string
		plain   string // without TLS
		withTLS string // with TLS
	}{
		{"", "unix:///var/run/berth.sock", "tcp://localhost:2376"},
		{"   ", "unix:///var/run/berth.sock", "tcp://localhost:2376"},
		{"unix://", "unix:///var/run/berth.sock", "unix:///var/run/berth.sock"},
		{"unix:///run/b.sock", "unix:///run/b.sock", "unix:///run/b.sock"},
		{"unix://relative/b.sock", "unix://relative/b.sock", "unix://relative/b.sock"},
		{"tcp://", "tcp://localhost:2375", "tcp://localhost:2376"},
		{"tcp://127.0.0.1", "tcp://127.0.0.1:2375", "tcp://127.0.0.1:2376"},
		{"tcp://127.0.0.1:4243", "tcp://127.0.0.1:4243", "tcp://127.0.0.1:4243"},
		{"tcp://0.0.0.0:2375", "tcp://0.0.0.0:2375", "tcp://0.0.0.0:2375"},
		{"tcp://192.168.59.106", "tcp://192.168.59.106:2375", "tcp://192.168.59.106:2376"},
		{"tcp://example.com:", "tcp://example.com:2375", "tcp://example.com:2376"},
		{"tcp://:7777", "tcp://localhost:7777", "tcp://localhost:7777"},
		{":5555", "tcp://localhost:5555", "tcp://localhost:5555"},
		{"0.0.0.0:5555", "tcp://0.0.0.0:5555", "tcp://0.0.0.0:5555"},
		{"host:", "tcp://host:2375", "tcp://host:2376"},
		{"host", "tcp://host:2375", "tcp://host:2376"},
		{"tcp://[::1]:2375", "tcp://[::1]:2375", "tcp://[::1]:2375"},
		{"[::1]:2375", "tcp://[::1]:2375", "tcp://[::1]:2375"},
		{"tcp://[::1]", "tcp://[::1]:2375", "tcp://[::1]:2376"},
		{"tcp://[::1]:", "tcp://[::1]:2375", "tcp://[::1]:2376"},
		{"tcp://[fe80::1%25eth0]:99", "tcp://[fe80::1%eth0]:99", "tcp://[fe80::1%eth0]:99"},
		{"tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"},
		{"fd://", "fd://", "fd://"},
		{"fd://3", "fd://3", "fd://3"},
		{"fd://*", "fd://*", "fd://*"},
	}
	for _, tt := range tests {
		got, err := ParseDaemonHost(tt.in, false)
		if err != nil || got != tt.plain {
			t.Errorf("ParseDaemonHost(%q, false) = %q, %v; want %q", tt.in, got, err, tt.plain)
		}
		got, err = ParseDaemonHost(tt.in, true)
		if err != nil || got != tt.withTLS {
			t.Errorf("ParseDaemonHost(%q, true) = %q, %v; want %q", tt.in, got, err, tt.withTLS)
		}
	}
}

func TestParseDaemonHostErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"foo://x", "Invalid bind address format: foo://x"},
		{"udp://127.0.0.1:2375", "Invalid bind address format: udp://127.0.0.1:2375"},
		{"unix://tcp://x", "Invalid proto, expected unix: tcp://x"},
		{"tcp://unix:///x", "Invalid proto, expected tcp: tcp://unix:///x"},
		{"tcp://h:abc", "Invalid bind address format: tcp://h:abc"},
		{"tcp://h:99999", "Invalid bind address format: tcp://h:99999"},
		{"tcp://::1", "Invalid bind address format: tcp://::1"},
		{"tcp://::1:2375", "Invalid bind address format: tcp://::1:2375"},
		{"tcp://user@h:1", "Invalid bind address format: tcp://user@h:1"},
		{"tcp://a:1?x=1", "Invalid bind address format: tcp://a:1?x=1"},
		// A bare path is a tcp address with a path in dockerd's grammar;
		// it cannot be listened on.
		{"/var/run/berth.sock", "must not contain a path"},
		{"tcp://a:1/b", "must not contain a path"},
		{"fd://abc", "failed to parse systemd fd address: should be a number: abc"},
		{"fd://-1", "failed to parse systemd fd address"},
	}
	for _, tt := range tests {
		got, err := ParseDaemonHost(tt.in, false)
		if err == nil {
			t.Errorf("ParseDaemonHost(%q) = %q, want error containing %q", tt.in, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDaemonHost(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
		if _, err := ValidateHost(tt.in); err == nil {
			t.Errorf("ValidateHost(%q) accepted an invalid host", tt.in)
		}
	}
}

func TestValidateHostKeepsInput(t *testing.T) {
	// The flag keeps what the user typed; the port is chosen after TLS is
	// known.
	got, err := ValidateHost("tcp://127.0.0.1")
	if err != nil || got != "tcp://127.0.0.1" {
		t.Fatalf("ValidateHost = %q, %v", got, err)
	}
}

func TestParseClientHost(t *testing.T) {
	tests := []struct {
		in   string
		tls  bool
		want string
	}{
		{"", false, "unix:///var/run/berth.sock"},
		{"tcp://host:2375/path", false, "tcp://host:2375/path"},
		{"tcp://host/base/v", true, "tcp://host:2376/base/v"},
		{"tcp://127.0.0.1", true, "tcp://127.0.0.1:2376"},
		{":5555", false, "tcp://localhost:5555"},
		{"unix:///var/run/docker.sock", false, "unix:///var/run/docker.sock"},
	}
	for _, tt := range tests {
		got, err := ParseClientHost(tt.in, tt.tls)
		if err != nil || got != tt.want {
			t.Errorf("ParseClientHost(%q, %v) = %q, %v; want %q", tt.in, tt.tls, got, err, tt.want)
		}
	}
	if _, err := ParseClientHost("ftp://x", false); err == nil {
		t.Error("ParseClientHost accepted ftp://")
	}
}
