package cli

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// configKeyAnnotation marks a flag with the daemon.json key it sets. The flag
// set is the single list of configuration keys: a file key is known when a
// flag carries it, and a flag and a file key conflict when they name the same
// key (plural for repeatable flags: --label ↔ "labels").
const configKeyAnnotation = "berth.dev/config-key"

// NewDaemonFlagSet returns berthd's flags with dockerd's names, shorthands
// and help, bound to cfg: parsing writes into cfg, and cfg's current values
// are the defaults shown in the usage (start from NewDaemonConfig).
// Repeatable flags append. Flags that are not configuration keys
// (--config-file, --validate, --version, --help) set cfg's json:"-" fields.
func NewDaemonFlagSet(cfg *DaemonConfig) *pflag.FlagSet {
	fs := pflag.NewFlagSet("berthd", pflag.ContinueOnError)
	key := func(flag, k string) {
		// The flag was defined just above; SetAnnotation fails only for
		// unknown names.
		if err := fs.SetAnnotation(flag, configKeyAnnotation, []string{k}); err != nil {
			panic(err)
		}
	}

	// Not configuration keys.
	fs.StringVar(&cfg.ConfigFile, "config-file", cfg.ConfigFile, "Daemon configuration file")
	fs.BoolVar(&cfg.Validate, "validate", cfg.Validate, "Validate daemon configuration and exit")
	fs.BoolVarP(&cfg.ShowVersion, "version", "v", cfg.ShowVersion, "Print version information and quit")
	fs.BoolVarP(&cfg.ShowHelp, "help", "h", cfg.ShowHelp, "Print usage")

	// Sockets and process.
	fs.VarP(newListValue(&cfg.Hosts, ValidateHost), "host", "H",
		"Daemon socket(s) to connect to (default "+DefaultHost+": berth's own socket, so it never meets a real dockerd)")
	key("host", "hosts")
	fs.StringVarP(&cfg.Group, "group", "G", cfg.Group, "Group for the unix socket")
	key("group", "group")
	fs.StringVarP(&cfg.Pidfile, "pidfile", "p", cfg.Pidfile, "Path to use for daemon PID file")
	key("pidfile", "pidfile")
	fs.StringVar(&cfg.DataRoot, "data-root", cfg.DataRoot, "Root directory of persistent berth state")
	key("data-root", "data-root")
	fs.StringVarP(&cfg.Graph, "graph", "g", cfg.Graph, "Root of the berth runtime")
	key("graph", "graph")
	_ = fs.MarkDeprecated("graph", "use --data-root instead")
	fs.StringVar(&cfg.ExecRoot, "exec-root", cfg.ExecRoot, "Root directory for execution state files")
	key("exec-root", "exec-root")

	// Logging.
	fs.BoolVarP(&cfg.Debug, "debug", "D", cfg.Debug, "Enable debug mode")
	key("debug", "debug")
	fs.StringVarP(&cfg.LogLevel, "log-level", "l", cfg.LogLevel, `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	key("log-level", "log-level")
	fs.Var(newListValue(&cfg.Labels, validateLabel), "label", "Set key=value labels to the daemon")
	key("label", "labels")

	// TLS.
	fs.BoolVar(&cfg.TLS, "tls", cfg.TLS, "Use TLS; implied by --tlsverify")
	key("tls", "tls")
	fs.BoolVar(&cfg.TLSVerify, "tlsverify", cfg.TLSVerify, "Use TLS and verify the remote")
	key("tlsverify", "tlsverify")
	fs.StringVar(&cfg.TLSCACert, "tlscacert", cfg.TLSCACert, "Trust certs signed only by this CA")
	key("tlscacert", "tlscacert")
	fs.StringVar(&cfg.TLSCert, "tlscert", cfg.TLSCert, "Path to TLS certificate file")
	key("tlscert", "tlscert")
	fs.StringVar(&cfg.TLSKey, "tlskey", cfg.TLSKey, "Path to TLS key file")
	key("tlskey", "tlskey")
	fs.StringVar(&cfg.APICorsHeader, "api-cors-header", cfg.APICorsHeader, "Set CORS headers in the Engine API")
	key("api-cors-header", "api-cors-header")

	// Registries and transfers.
	fs.IntVar(&cfg.MaxConcurrentDownloads, "max-concurrent-downloads", cfg.MaxConcurrentDownloads, "Set the max concurrent downloads")
	key("max-concurrent-downloads", "max-concurrent-downloads")
	fs.IntVar(&cfg.MaxConcurrentUploads, "max-concurrent-uploads", cfg.MaxConcurrentUploads, "Set the max concurrent uploads")
	key("max-concurrent-uploads", "max-concurrent-uploads")
	fs.Var(newListValue(&cfg.RegistryMirrors, validateMirror), "registry-mirror", "Preferred registry mirror")
	key("registry-mirror", "registry-mirrors")
	fs.Var(newListValue(&cfg.InsecureRegistries, validateIndexName), "insecure-registry", "Enable insecure registry communication")
	key("insecure-registry", "insecure-registries")

	// Storage.
	fs.StringVarP(&cfg.StorageDriver, "storage-driver", "s", cfg.StorageDriver, "Storage driver to use")
	key("storage-driver", "storage-driver")
	fs.Var(newListValue(&cfg.StorageOpts, nil), "storage-opt", "Storage driver options")
	key("storage-opt", "storage-opts")

	// Runtimes.
	fs.StringVar(&cfg.DefaultRuntime, "default-runtime", cfg.DefaultRuntime, "Default OCI runtime for containers")
	key("default-runtime", "default-runtime")
	fs.Var(&runtimeValue{dst: &cfg.Runtimes}, "add-runtime", "Register an additional OCI compatible runtime")
	key("add-runtime", "runtimes")
	fs.Var(newListValue(&cfg.ExecOpts, nil), "exec-opt", "Runtime execution options")
	key("exec-opt", "exec-opts")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", cfg.CgroupParent, "Set parent cgroup for all containers")
	key("cgroup-parent", "cgroup-parent")
	fs.Var(&ulimitValue{dst: &cfg.DefaultUlimits}, "default-ulimit", "Default ulimits for containers")
	key("default-ulimit", "default-ulimits")
	fs.BoolVar(&cfg.LiveRestore, "live-restore", cfg.LiveRestore, "Enable live restore of containers when the daemon stops")
	key("live-restore", "live-restore")
	fs.IntVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "Set the default shutdown timeout")
	key("shutdown-timeout", "shutdown-timeout")

	// Container logs.
	fs.StringVar(&cfg.LogDriver, "log-driver", cfg.LogDriver, "Default driver for container logs")
	key("log-driver", "log-driver")
	fs.Var(&mapValue{dst: &cfg.LogOpts}, "log-opt", "Default log driver options for containers")
	key("log-opt", "log-opts")

	// DNS.
	fs.Var(newListValue(&cfg.DNS, validateIPAddress), "dns", "DNS server to use")
	key("dns", "dns")
	fs.Var(newListValue(&cfg.DNSOpts, nil), "dns-opt", "DNS options to use")
	key("dns-opt", "dns-opts")
	fs.Var(newListValue(&cfg.DNSSearch, validateDNSSearch), "dns-search", "DNS search domains to use")
	key("dns-search", "dns-search")

	// Default bridge network.
	fs.StringVarP(&cfg.Bridge, "bridge", "b", cfg.Bridge, "Attach containers to a network bridge")
	key("bridge", "bridge")
	fs.StringVar(&cfg.BIP, "bip", cfg.BIP, "Specify network bridge IP")
	key("bip", "bip")
	fs.StringVar(&cfg.FixedCIDR, "fixed-cidr", cfg.FixedCIDR, "IPv4 subnet for fixed IPs")
	key("fixed-cidr", "fixed-cidr")
	fs.StringVar(&cfg.IP, "ip", cfg.IP, "Default IP when binding container ports")
	key("ip", "ip")
	fs.BoolVar(&cfg.ICC, "icc", cfg.ICC, "Enable inter-container communication")
	key("icc", "icc")
	fs.BoolVar(&cfg.IPMasq, "ip-masq", cfg.IPMasq, "Enable IP masquerading")
	key("ip-masq", "ip-masq")
	fs.BoolVar(&cfg.IPTables, "iptables", cfg.IPTables, "Enable addition of iptables rules")
	key("iptables", "iptables")
	fs.BoolVar(&cfg.IPForward, "ip-forward", cfg.IPForward, "Enable net.ipv4.ip_forward")
	key("ip-forward", "ip-forward")
	fs.IntVar(&cfg.MTU, "mtu", cfg.MTU, "Set the containers network MTU")
	key("mtu", "mtu")
	fs.BoolVar(&cfg.UserlandProxy, "userland-proxy", cfg.UserlandProxy, "Use userland proxy for loopback traffic")
	key("userland-proxy", "userland-proxy")

	return fs
}

// flagConfigKey is the daemon.json key a flag sets, "" for flags that are
// not configuration (--config-file, --validate, ...).
func flagConfigKey(f *pflag.Flag) string {
	if v := f.Annotations[configKeyAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// listValue is a repeatable flag that appends to a string slice, validating
// (and possibly normalising) each value as dockerd's ListOpts does.
type listValue struct {
	dst      *[]string
	validate func(string) (string, error)
}

func newListValue(dst *[]string, validate func(string) (string, error)) *listValue {
	return &listValue{dst: dst, validate: validate}
}

func (l *listValue) Set(v string) error {
	if l.validate != nil {
		nv, err := l.validate(v)
		if err != nil {
			return err
		}
		v = nv
	}
	*l.dst = append(*l.dst, v)
	return nil
}

// String prints like dockerd's ListOpts: empty when unset (so usage shows no
// default), "[a b]" otherwise — the form conflict messages quote.
func (l *listValue) String() string {
	if len(*l.dst) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", *l.dst)
}

func (l *listValue) Type() string { return "list" }

// mapValue is a repeatable key=value flag (--log-opt).
type mapValue struct {
	dst *map[string]string
}

func (m *mapValue) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("invalid key=value format: %s", v)
	}
	if *m.dst == nil {
		*m.dst = map[string]string{}
	}
	(*m.dst)[k] = val
	return nil
}

func (m *mapValue) String() string { return fmt.Sprintf("%v", *m.dst) }
func (m *mapValue) Type() string   { return "map" }

// runtimeValue is --add-runtime name=path, as dockerd's RuntimeOpt: names
// are lower-cased, "runc" is reserved, and a name may be given once.
type runtimeValue struct {
	dst *map[string]Runtime
}

func (r *runtimeValue) Set(v string) error {
	k, path, ok := strings.Cut(v, "=")
	k, path = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(path)
	if !ok || k == "" || path == "" {
		return fmt.Errorf("invalid runtime argument: %s", v)
	}
	if k == StockRuntimeName {
		return fmt.Errorf("runtime name '%s' is reserved", StockRuntimeName)
	}
	if *r.dst == nil {
		*r.dst = map[string]Runtime{}
	}
	if _, dup := (*r.dst)[k]; dup {
		return fmt.Errorf("runtime '%s' was already defined", k)
	}
	(*r.dst)[k] = Runtime{Path: path}
	return nil
}

func (r *runtimeValue) String() string {
	names := make([]string, 0, len(*r.dst))
	for k := range *r.dst {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprintf("%v", names)
}

func (r *runtimeValue) Type() string { return "runtime" }

// ulimitValue is --default-ulimit name=soft[:hard]; a later value for the
// same name replaces the earlier one, as in dockerd.
type ulimitValue struct {
	dst *map[string]*units.Ulimit
}

func (u *ulimitValue) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	if *u.dst == nil {
		*u.dst = map[string]*units.Ulimit{}
	}
	(*u.dst)[l.Name] = l
	return nil
}

func (u *ulimitValue) String() string {
	out := make([]string, 0, len(*u.dst))
	for _, l := range *u.dst {
		out = append(out, l.String())
	}
	sort.Strings(out)
	return fmt.Sprintf("%v", out)
}

func (u *ulimitValue) Type() string { return "ulimit" }

// Flag validators. Their messages are dockerd's.

func validateLabel(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("bad attribute format: %s", v)
	}
	return v, nil
}

func validateIPAddress(v string) (string, error) {
	ip := net.ParseIP(strings.TrimSpace(v))
	if ip == nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return ip.String(), nil
}

var (
	alphaRegexp  = regexp.MustCompile(`[a-zA-Z]`)
	domainRegexp = regexp.MustCompile(`^(:?(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$`)
)

// validateDNSSearch accepts a search domain, or "." for an empty search list.
func validateDNSSearch(v string) (string, error) {
	if v = strings.Trim(v, " "); v == "." {
		return v, nil
	}
	if alphaRegexp.FindString(v) == "" {
		return "", fmt.Errorf("%s is not a valid domain", v)
	}
	ns := domainRegexp.FindSubmatch([]byte(v))
	if len(ns) > 0 && len(ns[1]) < 255 {
		return string(ns[1]), nil
	}
	return "", fmt.Errorf("%s is not a valid domain", v)
}

// validateIndexName is dockerd's flag-time check of an insecure registry;
// schemes and host:port/CIDR syntax are checked after merging, where a
// warning can be recorded.
func validateIndexName(v string) (string, error) {
	if v == "index.docker.io" {
		v = "docker.io"
	}
	if strings.HasPrefix(v, "-") || strings.HasSuffix(v, "-") {
		return "", fmt.Errorf("invalid index name (%s). Cannot begin or end with a hyphen", v)
	}
	return v, nil
}
