package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Defaults. They are dockerd's, except where berth must not share a path
// with a dockerd running on the same host (data, exec state, pid file,
// configuration file and socket — see DefaultHost).
const (
	DefaultDaemonConfigFile       = "/etc/berth/daemon.json"
	DefaultDataRoot               = "/var/lib/berth"
	DefaultExecRoot               = "/var/run/berth"
	DefaultPidfile                = "/var/run/berth.pid"
	DefaultSocketGroup            = "docker"
	DefaultLogLevel               = "info"
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
	DefaultShutdownTimeout        = 15
	DefaultLogDriver              = "json-file"
	DefaultBindIP                 = "0.0.0.0"
	// StockRuntimeName is the runtime that always exists (the runc built
	// with berth); it cannot be redefined with --add-runtime or "runtimes".
	StockRuntimeName = "runc"
)

// Runtime is one entry of "runtimes" in daemon.json (or --add-runtime).
type Runtime struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"`
}

// DaemonConfig is berthd's effective configuration: defaults, then
// daemon.json, then command-line flags. The json tags are the daemon.json
// keys, dockerd's names (plural for repeatable flags).
type DaemonConfig struct {
	Hosts    []string `json:"hosts"`
	DataRoot string   `json:"data-root"`
	// Graph is the deprecated "graph" key / -g flag; loading folds it into
	// DataRoot and clears it.
	Graph    string `json:"graph,omitempty"`
	ExecRoot string `json:"exec-root"`
	Pidfile  string `json:"pidfile"`
	Group    string `json:"group"`

	Debug    bool     `json:"debug"`
	LogLevel string   `json:"log-level"`
	Labels   []string `json:"labels"`

	TLS       bool   `json:"tls"`
	TLSVerify bool   `json:"tlsverify"`
	TLSCACert string `json:"tlscacert"`
	TLSCert   string `json:"tlscert"`
	TLSKey    string `json:"tlskey"`

	MaxConcurrentDownloads int      `json:"max-concurrent-downloads"`
	MaxConcurrentUploads   int      `json:"max-concurrent-uploads"`
	RegistryMirrors        []string `json:"registry-mirrors"`
	InsecureRegistries     []string `json:"insecure-registries"`

	StorageDriver string   `json:"storage-driver"`
	StorageOpts   []string `json:"storage-opts"`

	DefaultRuntime string                   `json:"default-runtime"`
	Runtimes       map[string]Runtime       `json:"runtimes"`
	ExecOpts       []string                 `json:"exec-opts"`
	CgroupParent   string                   `json:"cgroup-parent"`
	DefaultUlimits map[string]*units.Ulimit `json:"default-ulimits"`

	DNS       []string `json:"dns"`
	DNSOpts   []string `json:"dns-opts"`
	DNSSearch []string `json:"dns-search"`

	LogDriver string            `json:"log-driver"`
	LogOpts   map[string]string `json:"log-opts"`

	LiveRestore     bool   `json:"live-restore"`
	ShutdownTimeout int    `json:"shutdown-timeout"`
	APICorsHeader   string `json:"api-cors-header"`

	Bridge        string `json:"bridge"`
	BIP           string `json:"bip"`
	FixedCIDR     string `json:"fixed-cidr"`
	IP            string `json:"ip"`
	ICC           bool   `json:"icc"`
	IPMasq        bool   `json:"ip-masq"`
	IPTables      bool   `json:"iptables"`
	IPForward     bool   `json:"ip-forward"`
	MTU           int    `json:"mtu"`
	UserlandProxy bool   `json:"userland-proxy"`

	// Command-line only.

	// ConfigFile is the daemon.json that was (or would have been) read.
	ConfigFile string `json:"-"`
	// Validate is --validate: the caller prints "configuration OK" and
	// exits 0 once LoadDaemonConfig succeeded.
	Validate bool `json:"-"`
	// ShowVersion (--version) and ShowHelp (--help) ask the caller to print
	// and exit; LoadDaemonConfig then skips the configuration file, as
	// dockerd does, so a broken file does not hide them.
	ShowVersion bool `json:"-"`
	ShowHelp    bool `json:"-"`
	// Warnings are things the daemon should log at startup (deprecated
	// flags, normalised values, insecure listeners).
	Warnings []string `json:"-"`

	// args are the command-line arguments the config was loaded from; a
	// reload re-applies them so that flags keep winning over the file.
	args        []string
	defaultFile string
}

// NewDaemonConfig returns the defaults. The TLS file defaults follow
// dockerd: $DOCKER_CERT_PATH, else $DOCKER_CONFIG, else ~/.docker, and
// DOCKER_TLS_VERIFY turns --tlsverify on.
func NewDaemonConfig() *DaemonConfig {
	certDir := defaultCertPath()
	return &DaemonConfig{
		DataRoot:               DefaultDataRoot,
		ExecRoot:               DefaultExecRoot,
		Pidfile:                DefaultPidfile,
		Group:                  DefaultSocketGroup,
		LogLevel:               DefaultLogLevel,
		TLSVerify:              os.Getenv("DOCKER_TLS_VERIFY") != "",
		TLSCACert:              filepath.Join(certDir, "ca.pem"),
		TLSCert:                filepath.Join(certDir, "cert.pem"),
		TLSKey:                 filepath.Join(certDir, "key.pem"),
		MaxConcurrentDownloads: DefaultMaxConcurrentDownloads,
		MaxConcurrentUploads:   DefaultMaxConcurrentUploads,
		DefaultRuntime:         StockRuntimeName,
		Runtimes:               map[string]Runtime{},
		DefaultUlimits:         map[string]*units.Ulimit{},
		LogDriver:              DefaultLogDriver,
		LogOpts:                map[string]string{},
		ShutdownTimeout:        DefaultShutdownTimeout,
		IP:                     DefaultBindIP,
		ICC:                    true,
		IPMasq:                 true,
		IPTables:               true,
		IPForward:              true,
		UserlandProxy:          true,
		ConfigFile:             DefaultDaemonConfigFile,
	}
}

func defaultCertPath() string {
	if p := os.Getenv("DOCKER_CERT_PATH"); p != "" {
		return p
	}
	if p := os.Getenv("DOCKER_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker")
}

// ignoredFileKeys are dockerd keys a daemon.json may carry that berthd
// accepts without effect (dockerd skips them in its unknown-key check too).
var ignoredFileKeys = map[string]bool{
	"features":                         true,
	"builder":                          true,
	"deprecated-key-path":              true,
	"allow-nondistributable-artifacts": true,
}

// LoadDaemonConfig parses berthd's command line (args without the program
// name), reads the configuration file (--config-file, default
// /etc/berth/daemon.json; a missing default file is fine, a missing
// explicitly named one is an error), merges them and validates the result.
// As in dockerd a key may be given by a flag or by the file, never both;
// keys the file does not set keep their defaults unless a flag sets them.
//
// With --help or --version the file is not read and the returned config only
// has ShowHelp/ShowVersion set for the caller to act on.
func LoadDaemonConfig(args []string) (*DaemonConfig, error) {
	return loadDaemonConfig(args, DefaultDaemonConfigFile)
}

// loadDaemonConfig is LoadDaemonConfig with the default configuration file
// as a parameter, so tests can exercise "default file absent/present"
// without touching /etc.
func loadDaemonConfig(args []string, defaultFile string) (*DaemonConfig, error) {
	flagCfg := NewDaemonConfig()
	flagCfg.ConfigFile = defaultFile
	flags := NewDaemonFlagSet(flagCfg)
	// Errors are returned, not printed; the caller decides how to show them.
	flags.SetOutput(io.Discard)
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if flags.NArg() > 0 {
		return nil, fmt.Errorf(`"berthd" accepts no arguments, got %q`, flags.Args())
	}
	if flagCfg.ShowHelp || flagCfg.ShowVersion {
		return flagCfg, nil
	}

	file, err := readDaemonConfigFile(flagCfg.ConfigFile, flags.Changed("config-file"))
	if err != nil {
		return nil, fmt.Errorf("unable to configure the berth daemon with file %s: %w", flagCfg.ConfigFile, err)
	}
	cfg, err := mergeDaemonConfig(flagCfg, flags, file)
	if err != nil {
		return nil, fmt.Errorf("unable to configure the berth daemon with file %s: %w", flagCfg.ConfigFile, err)
	}
	if err := cfg.normalize(flags, file); err != nil {
		return nil, err
	}
	cfg.args = slices.Clone(args)
	cfg.defaultFile = defaultFile
	return cfg, nil
}

// readDaemonConfigFile returns the top-level keys of the file, nil when the
// file is absent and was not named explicitly.
func readDaemonConfigFile(path string, explicit bool) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, err
	}
	// Like dockerd, accept a UTF-8 or UTF-16 byte order mark (Notepad and
	// PowerShell write them) and insist on valid UTF-8 otherwise.
	b, n, err := transform.Bytes(transform.Chain(unicode.BOMOverride(transform.Nop), encoding.UTF8Validator), b)
	if err != nil {
		return nil, fmt.Errorf("failed to decode configuration JSON at offset %d: %w", n, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := lineCol(b, syn.Offset)
			return nil, fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, fmt.Errorf("the configuration must be a JSON object, not %s", typ.Value)
		}
		return nil, err
	}
	if keys == nil { // the file is "null"
		keys = map[string]json.RawMessage{}
	}
	return keys, nil
}

// lineCol turns the offset of a JSON syntax error (bytes read up to and
// including the offending one) into a 1-based line and column.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 1), int64(len(b)))
	before := b[:off-1] // up to the offending byte
	line = 1 + bytes.Count(before, []byte("\n"))
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// mergeDaemonConfig starts from the defaults, applies the file's keys and
// then the flags that were set on the command line.
func mergeDaemonConfig(flagCfg *DaemonConfig, flags *pflag.FlagSet, file map[string]json.RawMessage) (*DaemonConfig, error) {
	cfg := NewDaemonConfig()
	cfg.ConfigFile = flagCfg.ConfigFile
	cfg.Validate = flagCfg.Validate

	if err := checkFileKeys(flags, file); err != nil {
		return nil, err
	}

	fileKeys := make([]string, 0, len(file))
	for k := range file {
		fileKeys = append(fileKeys, k)
	}
	sort.Strings(fileKeys)
	for _, k := range fileKeys {
		if ignoredFileKeys[k] {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("configuration key %q is not supported by berthd and is ignored", k))
			continue
		}
		field := fieldByKey(cfg, k)
		if err := decodeKey(field, k, file[k]); err != nil {
			return nil, err
		}
	}

	var err error
	flags.Visit(func(f *pflag.Flag) {
		k := flagConfigKey(f)
		if k == "" || err != nil {
			return
		}
		src := fieldByKey(flagCfg, k)
		if k == "runtimes" {
			// --add-runtime adds to the file's runtimes (dockerd does not
			// count this as a conflict), but may not redefine one.
			for name, rt := range flagCfg.Runtimes {
				if _, dup := cfg.Runtimes[name]; dup {
					err = fmt.Errorf("runtime '%s' was already defined", name)
					return
				}
				if cfg.Runtimes == nil {
					cfg.Runtimes = map[string]Runtime{}
				}
				cfg.Runtimes[name] = rt
			}
			return
		}
		fieldByKey(cfg, k).Set(cloneValue(src))
	})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkFileKeys rejects keys no flag knows and keys also given as flags,
// with dockerd's messages.
func checkFileKeys(flags *pflag.FlagSet, file map[string]json.RawMessage) error {
	known := map[string]bool{}
	flags.VisitAll(func(f *pflag.Flag) {
		if k := flagConfigKey(f); k != "" {
			known[k] = true
		}
	})
	var unknown []string
	for k := range file {
		if !known[k] && !ignoredFileKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}

	var conflicts []string
	flags.Visit(func(f *pflag.Flag) {
		k := flagConfigKey(f)
		raw, inFile := file[k]
		if k == "" || k == "runtimes" || !inFile {
			return
		}
		conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %v)", k, f.Value.String(), genericJSON(raw)))
	})
	if len(conflicts) > 0 {
		return fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}
	return nil
}

// genericJSON is a file value as dockerd prints it in conflict messages.
func genericJSON(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	return v
}

// fieldByKey returns the field of cfg whose json tag is key. Keys come from
// the flag annotations, which are all fields of DaemonConfig (a test holds
// this), so a miss is a programming error.
func fieldByKey(cfg *DaemonConfig, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if jsonKey(t.Field(i)) == key {
			return v.Field(i)
		}
	}
	panic(fmt.Sprintf("cli: no DaemonConfig field for configuration key %q", key))
}

func jsonKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// configKeys lists every daemon.json key of DaemonConfig in field order.
func configKeys() []string {
	t := reflect.TypeFor[DaemonConfig]()
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k := jsonKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// decodeKey decodes one file value into its field, naming the key and the
// expected type on error. null leaves the default.
func decodeKey(field reflect.Value, key string, raw json.RawMessage) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	ptr := reflect.New(field.Type())
	if err := json.Unmarshal(raw, ptr.Interface()); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			at := ""
			if typ.Field != "" {
				at = " at " + typ.Field
			}
			return fmt.Errorf("invalid value for %q%s: got JSON %s, want %s", key, at, typ.Value, describeType(typ.Type))
		}
		return fmt.Errorf("invalid value for %q: %w", key, err)
	}
	field.Set(ptr.Elem())
	return nil
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}

// normalize folds deprecated and implied settings, canonicalises values
// (hosts, mirrors, registries, labels) and validates everything, with
// dockerd's rules and messages that name the key.
func (c *DaemonConfig) normalize(flags *pflag.FlagSet, file map[string]json.RawMessage) error {
	isSet := func(k, flag string) bool {
		_, inFile := file[k]
		return inFile || flags.Changed(flag)
	}

	if c.Graph != "" {
		c.Warnings = append(c.Warnings, `The "-g / --graph" flag and "graph" key are deprecated. Please use "--data-root" instead`)
		if isSet("data-root", "data-root") {
			return errors.New(`cannot specify both "--graph" and "--data-root" option`)
		}
		c.DataRoot = c.Graph
		c.Graph = ""
	}

	// Giving tlsverify at all, even =false, turns TLS on (dockerd).
	if c.TLSVerify || isSet("tlsverify", "tlsverify") {
		c.TLS = true
	}

	var hosts []string
	for _, h := range orDefault(c.Hosts) {
		p, err := ParseDaemonHost(h, c.TLS)
		if err != nil {
			return fmt.Errorf("invalid hosts: %w", err)
		}
		if !slices.Contains(hosts, p) {
			hosts = append(hosts, p)
		}
		if strings.HasPrefix(p, "tcp://") && !c.TLSVerify {
			c.Warnings = append(c.Warnings, fmt.Sprintf("Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network (%s)", p))
		}
	}
	c.Hosts = hosts

	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	// dockerd accepts every logrus level, in any case; the documented ones
	// are debug, info, warn, error and fatal.
	switch strings.ToLower(c.LogLevel) {
	case "panic", "fatal", "error", "warn", "info", "debug", "trace":
		c.LogLevel = strings.ToLower(c.LogLevel)
	default:
		return fmt.Errorf("invalid logging level: %s", c.LogLevel)
	}

	labels, err := conflictFreeLabels(c.Labels)
	if err != nil {
		return err
	}
	c.Labels = labels

	if c.MaxConcurrentDownloads < 0 {
		return fmt.Errorf("invalid max-concurrent-downloads: %d (must be 0 or more)", c.MaxConcurrentDownloads)
	}
	if c.MaxConcurrentUploads < 0 {
		return fmt.Errorf("invalid max-concurrent-uploads: %d (must be 0 or more)", c.MaxConcurrentUploads)
	}

	var mirrors []string
	for _, m := range c.RegistryMirrors {
		nm, err := validateMirror(m)
		if err != nil {
			return fmt.Errorf("invalid registry-mirrors: %w", err)
		}
		if !slices.Contains(mirrors, nm) {
			mirrors = append(mirrors, nm)
		}
	}
	c.RegistryMirrors = mirrors

	insecure, warnings, err := normalizeInsecureRegistries(c.InsecureRegistries)
	if err != nil {
		return fmt.Errorf("invalid insecure-registries: %w", err)
	}
	c.InsecureRegistries = insecure
	c.Warnings = append(c.Warnings, warnings...)

	for _, o := range c.StorageOpts {
		if k, _, ok := strings.Cut(o, "="); !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("invalid storage-opts %q: must be formatted 'key=value'", o)
		}
	}

	if err := c.validateRuntimes(); err != nil {
		return err
	}
	execOpts, err := parseExecOpts(c.ExecOpts)
	if err != nil {
		return err
	}
	if execOpts["native.cgroupdriver"] == "systemd" && c.CgroupParent != "" && !strings.HasSuffix(c.CgroupParent, ".slice") {
		return errors.New(`cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`)
	}

	for name, u := range c.DefaultUlimits {
		if u == nil {
			return fmt.Errorf("invalid default-ulimits %q: no limits given", name)
		}
		if u.Name == "" {
			u.Name = name
		}
		if u.Name != name {
			return fmt.Errorf("invalid default-ulimits %q: Name is %q", name, u.Name)
		}
		if _, err := u.GetRlimit(); err != nil {
			return fmt.Errorf("invalid default-ulimits: invalid ulimit type: %s", name)
		}
		if u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
			return fmt.Errorf("invalid default-ulimits %q: ulimit soft limit must be less than or equal to hard limit: %d > %d", name, u.Soft, u.Hard)
		}
	}

	for i, d := range c.DNS {
		ip, err := validateIPAddress(d)
		if err != nil {
			return fmt.Errorf("invalid dns: %w", err)
		}
		c.DNS[i] = ip
	}
	for i, d := range c.DNSSearch {
		s, err := validateDNSSearch(d)
		if err != nil {
			return fmt.Errorf("invalid dns-search: %w", err)
		}
		c.DNSSearch[i] = s
	}

	for k := range c.LogOpts {
		if strings.TrimSpace(k) == "" {
			return errors.New("invalid log-opts: empty option name")
		}
	}

	if c.Bridge != "" && c.BIP != "" {
		return errors.New("You specified -b & --bip, mutually exclusive options. Please specify only one")
	}
	if c.BIP != "" {
		if _, _, err := net.ParseCIDR(c.BIP); err != nil {
			return fmt.Errorf("invalid bip %q: must be an address in CIDR notation, like 172.17.0.1/16", c.BIP)
		}
	}
	if c.FixedCIDR != "" {
		if _, _, err := net.ParseCIDR(c.FixedCIDR); err != nil {
			return fmt.Errorf("invalid fixed-cidr %q: must be a subnet in CIDR notation, like 172.17.0.0/16", c.FixedCIDR)
		}
	}
	if c.IP == "" {
		c.IP = DefaultBindIP
	}
	ip, err := validateIPAddress(c.IP)
	if err != nil {
		return fmt.Errorf("invalid ip: %w", err)
	}
	c.IP = ip
	if c.MTU < 0 {
		return fmt.Errorf("invalid mtu: %d (must be 0 or more)", c.MTU)
	}
	return nil
}

func orDefault(hosts []string) []string {
	if len(hosts) == 0 {
		// One empty entry means the default socket (TLS-dependent).
		return []string{""}
	}
	return hosts
}

// conflictFreeLabels drops repeated identical labels and rejects one key
// with two values, keeping the first order.
func conflictFreeLabels(labels []string) ([]string, error) {
	seen := map[string]string{}
	var out []string
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid labels: bad attribute format: %s", l)
		}
		if prev, dup := seen[k]; dup {
			if prev != v {
				return nil, fmt.Errorf("conflict labels for %s=%s and %s=%s", k, v, k, prev)
			}
			continue
		}
		seen[k] = v
		out = append(out, l)
	}
	return out, nil
}

// validateMirror checks that a mirror is an http(s) URL and returns it with
// a trailing slash (dockerd's normal form).
func validateMirror(m string) (string, error) {
	if scheme, _, ok := strings.Cut(m, "://"); !ok || scheme == "" {
		return "", fmt.Errorf("invalid mirror: no scheme specified for %q: must use either 'https://' or 'http://'", m)
	}
	u, err := url.Parse(m)
	if err != nil {
		return "", fmt.Errorf("invalid mirror: %q is not a valid URI", m)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("invalid mirror: unsupported scheme %q in %q: must use either 'https://' or 'http://'", u.Scheme, m)
	}
	if u.Host == "" {
		return "", fmt.Errorf("invalid mirror: no host in %q", m)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid mirror: query or fragment at end of the URI %q", m)
	}
	if u.User != nil {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return "", fmt.Errorf("invalid mirror: username/password not allowed in URI %q", u)
	}
	return strings.TrimSuffix(m, "/") + "/", nil
}

// normalizeInsecureRegistries follows dockerd's loadInsecureRegistries:
// host[:port] or a CIDR; an http:// or https:// prefix is removed with a
// warning, any other scheme is an error; duplicates are dropped.
func normalizeInsecureRegistries(regs []string) (out, warnings []string, err error) {
	for _, r := range regs {
		if _, err := validateIndexName(r); err != nil {
			return nil, nil, err
		}
		lr := strings.ToLower(r)
		switch {
		case strings.HasPrefix(lr, "http://"):
			warnings = append(warnings, fmt.Sprintf("insecure registry %s should not contain 'http://' and 'http://' has been removed from the insecure registry config", r))
			r = r[len("http://"):]
		case strings.HasPrefix(lr, "https://"):
			warnings = append(warnings, fmt.Sprintf("insecure registry %s should not contain 'https://' and 'https://' has been removed from the insecure registry config", r))
			r = r[len("https://"):]
		case strings.Contains(r, "://"):
			return nil, nil, fmt.Errorf("insecure registry %s should not contain '://'", r)
		}
		r = strings.TrimSuffix(r, "/")
		if _, ipnet, err := net.ParseCIDR(r); err == nil {
			r = ipnet.String()
		} else if err := validateHostPort(r); err != nil {
			return nil, nil, fmt.Errorf("insecure registry %s is not valid: %w", r, err)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, warnings, nil
}

func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if net.ParseIP(strings.Trim(host, "[]")) == nil && !domainRegexp.MatchString(host) {
		return fmt.Errorf("invalid host %q", host)
	}
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
	}
	return nil
}

func (c *DaemonConfig) validateRuntimes() error {
	if _, ok := c.Runtimes[StockRuntimeName]; ok {
		return fmt.Errorf("invalid runtimes: runtime name '%s' is reserved", StockRuntimeName)
	}
	for name, rt := range c.Runtimes {
		if name == "" {
			return errors.New("invalid runtimes: empty runtime name")
		}
		if rt.Path == "" {
			return fmt.Errorf("invalid runtimes: runtime %s has no path", name)
		}
	}
	if c.DefaultRuntime == "" {
		c.DefaultRuntime = StockRuntimeName
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; c.DefaultRuntime != StockRuntimeName && !ok {
		return fmt.Errorf("specified default runtime '%s' does not exist", c.DefaultRuntime)
	}
	return nil
}

// parseExecOpts parses exec-opts as dockerd does on Linux: opt=value, the
// only option being native.cgroupdriver=cgroupfs|systemd.
func parseExecOpts(opts []string) (map[string]string, error) {
	out := map[string]string{}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("invalid exec-opt (%s): must be formatted 'opt=value'", o)
		}
		switch k {
		case "native.cgroupdriver":
			if v != "cgroupfs" && v != "systemd" {
				return nil, fmt.Errorf("invalid exec-opt (%s): native.cgroupdriver option %s not supported", o, v)
			}
		case "isolation":
			return nil, fmt.Errorf("invalid exec-opt (%s): option '%s' is only supported on windows", o, k)
		default:
			return nil, fmt.Errorf("invalid exec-opt (%s): unknown option: '%s'", o, k)
		}
		out[k] = v
	}
	return out, nil
}

// EffectiveLogLevel is the level the daemon logs at: debug mode forces
// "debug" whatever log-level says, as in dockerd.
func (c *DaemonConfig) EffectiveLogLevel() string {
	if c.Debug {
		return "debug"
	}
	return c.LogLevel
}

// CgroupDriver is the native.cgroupdriver exec-opt, "cgroupfs" by default.
func (c *DaemonConfig) CgroupDriver() string {
	opts, err := parseExecOpts(c.ExecOpts)
	if err != nil || opts["native.cgroupdriver"] == "" {
		return "cgroupfs"
	}
	return opts["native.cgroupdriver"]
}
