package run

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"

	"github.com/berth-dev/berth/chain"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Event is a container or volume event, in the Engine API's shape; the
// caller fills in the time fields it publishes with if they are zero.
type Event = events.Message

// Config configures a Manager.
type Config struct {
	// Root is where container directories live (<data-root>/containers):
	// hostname, hosts, resolv.conf and the json-file log of each.
	Root string
	// ExecRoot holds runtime state that does not survive a reboot
	// (/run/berth): bundles, shim sockets, exit files, pinned network
	// namespaces and the runtimes' own state.
	ExecRoot string
	// VolumesRoot is where local volumes live; default
	// <dir of Root>/volumes.
	VolumesRoot string
	// Store holds images and container layers.
	Store *chain.Store

	// Runtimes maps runtime names to binaries (OCI runtimes with runc's
	// command line); DefaultRuntime names the one used when a container
	// does not choose ("runc" when empty, which must then be in Runtimes).
	Runtimes       map[string]string
	DefaultRuntime string

	// CgroupParent is the parent cgroup of containers that do not name
	// one (cgroupfs driver); default "/berth".
	CgroupParent string
	// DefaultUlimits apply unless a container sets the same ulimit.
	DefaultUlimits []*container.Ulimit
	// DNS, DNSSearch and DNSOptions replace the host's resolv.conf
	// entries for containers that do not set their own.
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	// LogDriver and LogOpts are the defaults for containers that do not
	// choose: "json-file" (default) or "none".
	LogDriver string
	LogOpts   map[string]string
	// LiveRestore keeps containers running across a berthd restart;
	// without it Shutdown stops them.
	LiveRestore bool
	// ShimCommand is the argv prefix that runs a shim (package shim's
	// Main): [<dir>/berth-shim], or [<berthd>, "shim"]; the bundle
	// directory is appended.
	ShimCommand []string
	// ShimSpare keeps one shim started ahead of time, idle until a start
	// hands it a bundle, so a start does not wait for an exec. It exits
	// with the process that started it.
	ShimSpare bool
	// InitPath is the init binary bind-mounted as /sbin/docker-init for
	// containers created with Init (--init); empty refuses them.
	InitPath string
	// ShmSize is the default /dev/shm size; default 64 MiB.
	ShmSize int64

	// Events receives every container and volume event. Optional.
	Events func(Event)

	// HostResolvConf and HostHosts are the host files containers derive
	// theirs from; defaults /etc/resolv.conf and /etc/hosts.
	HostResolvConf string
	HostHosts      string
}

const (
	defaultShmSize      = 64 << 20
	defaultCgroupParent = "/berth"
	defaultStopTimeout  = 10
)

func (c *Config) setDefaults() error {
	if c.Root == "" || c.ExecRoot == "" {
		return errors.New("run: Root and ExecRoot are required")
	}
	if c.Store == nil {
		return errors.New("run: Store is required")
	}
	if len(c.ShimCommand) == 0 {
		return errors.New("run: ShimCommand is required")
	}
	if c.VolumesRoot == "" {
		c.VolumesRoot = filepath.Join(filepath.Dir(filepath.Clean(c.Root)), "volumes")
	}
	if c.DefaultRuntime == "" {
		c.DefaultRuntime = "runc"
	}
	rts := map[string]string{}
	for name, path := range c.Runtimes {
		if !filepath.IsAbs(path) {
			p, err := exec.LookPath(path)
			if err != nil {
				return fmt.Errorf("runtime %s: %w", name, err)
			}
			path = p
		}
		rts[name] = path
	}
	c.Runtimes = rts
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		return fmt.Errorf("run: default runtime %q has no binary (Runtimes)", c.DefaultRuntime)
	}
	if c.CgroupParent == "" {
		c.CgroupParent = defaultCgroupParent
	}
	if c.LogDriver == "" {
		c.LogDriver = "json-file"
	}
	if _, err := parseLogConfig(container.LogConfig{Type: c.LogDriver, Config: c.LogOpts}); err != nil {
		return fmt.Errorf("run: default log config: %w", err)
	}
	for _, ns := range c.DNS {
		if _, err := netip.ParseAddr(ns); err != nil {
			return fmt.Errorf("run: DNS server %q is not an IP address", ns)
		}
	}
	if c.ShmSize == 0 {
		c.ShmSize = defaultShmSize
	}
	if c.HostResolvConf == "" {
		c.HostResolvConf = "/etc/resolv.conf"
	}
	if c.HostHosts == "" {
		c.HostHosts = "/etc/hosts"
	}
	return nil
}
