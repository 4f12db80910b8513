package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// cleanEnv keeps the caller's DOCKER_* variables out of the defaults.
func cleanEnv(t *testing.T) {
	t.Helper()
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_CONFIG", "")
}

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadWith loads berthd's configuration from a daemon.json holding content
// and the given flags.
func loadWith(t *testing.T, content string, args ...string) (*DaemonConfig, error) {
	t.Helper()
	p := writeConfigFile(t, content)
	return LoadDaemonConfig(append([]string{"--config-file", p}, args...))
}

func mustLoad(t *testing.T, content string, args ...string) *DaemonConfig {
	t.Helper()
	c, err := loadWith(t, content, args...)
	if err != nil {
		t.Fatalf("LoadDaemonConfig: %v", err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, "")
	if !slices.Equal(c.Hosts, []string{"unix:///var/run/berth.sock"}) {
		t.Errorf("hosts = %q", c.Hosts)
	}
	if c.CgroupDriver() != "cgroupfs" || c.EffectiveLogLevel() != "info" {
		t.Errorf("cgroup driver %q, log level %q", c.CgroupDriver(), c.EffectiveLogLevel())
	}
	want := NewDaemonConfig()
	want.Hosts = []string{DefaultHost}
	want.ConfigFile = c.ConfigFile
	want.args = c.args
	want.defaultFile = DefaultDaemonConfigFile
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults differ:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadMergesFileAndFlags(t *testing.T) {
	cleanEnv(t)
	file := `{
		"data-root": "/srv/berth",
		"labels": ["env=prod", "team=core"],
		"max-concurrent-downloads": 7,
		"registry-mirrors": ["https://mirror.example.com"],
		"insecure-registries": ["10.1.0.0/16", "myregistry:5000"],
		"storage-driver": "overlay2",
		"storage-opts": ["overlay2.size=1G"],
		"default-runtime": "custom",
		"runtimes": {"custom": {"path": "/usr/local/bin/my-runc", "runtimeArgs": ["--debug"]}},
		"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}, "core": {"Hard": -1, "Soft": -1}},
		"log-opts": {"max-size": "10m"},
		"icc": false,
		"ip-masq": false,
		"shutdown-timeout": 30,
		"dns": ["8.8.8.8"],
		"exec-opts": ["native.cgroupdriver=systemd"],
		"cgroup-parent": "berth.slice",
		"bip": "172.30.0.1/16",
		"fixed-cidr": "172.30.0.0/24",
		"mtu": 1400
	}`
	c := mustLoad(t, file, "-D", "--add-runtime", "kata=/bin/kata", "-H", "unix:///tmp/b.sock", "-H", "tcp://127.0.0.1:0", "--max-concurrent-uploads", "2")
	if c.DataRoot != "/srv/berth" || !c.Debug || c.MaxConcurrentDownloads != 7 || c.MaxConcurrentUploads != 2 {
		t.Errorf("scalar merge wrong: data-root %q debug %v downloads %d uploads %d", c.DataRoot, c.Debug, c.MaxConcurrentDownloads, c.MaxConcurrentUploads)
	}
	if c.ICC || c.IPMasq || !c.IPTables || !c.IPForward || !c.UserlandProxy {
		// false in the file must not be overridden by the flags' true defaults.
		t.Errorf("booleans wrong: icc %v ip-masq %v iptables %v ip-forward %v userland-proxy %v", c.ICC, c.IPMasq, c.IPTables, c.IPForward, c.UserlandProxy)
	}
	if !slices.Equal(c.Hosts, []string{"unix:///tmp/b.sock", "tcp://127.0.0.1:0"}) {
		t.Errorf("hosts %q", c.Hosts)
	}
	if !slices.Equal(c.RegistryMirrors, []string{"https://mirror.example.com/"}) {
		t.Errorf("mirrors %q", c.RegistryMirrors)
	}
	wantRT := map[string]Runtime{
		"custom": {Path: "/usr/local/bin/my-runc", RuntimeArgs: []string{"--debug"}},
		"kata":   {Path: "/bin/kata"},
	}
	if !reflect.DeepEqual(c.Runtimes, wantRT) || c.DefaultRuntime != "custom" {
		t.Errorf("runtimes %v default %q", c.Runtimes, c.DefaultRuntime)
	}
	wantUL := map[string]*units.Ulimit{"nofile": {Name: "nofile", Hard: 2048, Soft: 1024}, "core": {Name: "core", Hard: -1, Soft: -1}}
	if !reflect.DeepEqual(c.DefaultUlimits, wantUL) {
		t.Errorf("ulimits %v", c.DefaultUlimits)
	}
	if c.EffectiveLogLevel() != "debug" {
		t.Errorf("-D: effective log level %q", c.EffectiveLogLevel())
	}
	if c.CgroupDriver() != "systemd" || c.ShutdownTimeout != 30 || c.MTU != 1400 || c.LogOpts["max-size"] != "10m" {
		t.Errorf("cgroup driver %q shutdown %d mtu %d log-opts %v", c.CgroupDriver(), c.ShutdownTimeout, c.MTU, c.LogOpts)
	}
	// A tcp listener without tlsverify is worth a warning, as dockerd logs.
	if !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "without --tlsverify is insecure") }) {
		t.Errorf("no warning for plain tcp listener: %q", c.Warnings)
	}
}

func TestLoadConflicts(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		file string
		args []string
		want string
	}{
		{`{"debug": false}`, []string{"-D"},
			"the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false)"},
		{`{"debug": false, "labels": ["a=1"]}`, []string{"--debug", "--label", "b=2"},
			"the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false), labels: (from flag: [b=2], from file: [a=1])"},
		{`{"hosts": ["unix:///x"]}`, []string{"-H", "tcp://127.0.0.1:1"},
			"hosts: (from flag: [tcp://127.0.0.1:1], from file: [unix:///x])"},
		{`{"max-concurrent-downloads": 3}`, []string{"--max-concurrent-downloads=3"},
			"max-concurrent-downloads: (from flag: 3, from file: 3)"},
		{`{"log-level": "debug"}`, []string{"-l", "info"},
			"log-level: (from flag: info, from file: debug)"},
		{`{"registry-mirrors": ["https://a"]}`, []string{"--registry-mirror", "https://b"},
			"registry-mirrors: (from flag: [https://b/], from file: [https://a])"},
		{`{"default-ulimits": {}}`, []string{"--default-ulimit", "nofile=1:2"},
			"default-ulimits: (from flag: [nofile=1:2], from file: map[])"},
		{`{"graph": "/a"}`, []string{"-g", "/b"}, "graph: (from flag: /b, from file: /a)"},
	}
	for _, tt := range tests {
		_, err := loadWith(t, tt.file, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("file %s flags %q: error %v, want it to contain %q", tt.file, tt.args, err, tt.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "unable to configure the berth daemon with file ") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestLoadRuntimesFromFlagAndFile(t *testing.T) {
	cleanEnv(t)
	// runtimes merge; only a name defined twice is an error.
	c := mustLoad(t, `{"runtimes": {"a": {"path": "/a"}}}`, "--add-runtime", "b=/b")
	if len(c.Runtimes) != 2 {
		t.Errorf("runtimes %v", c.Runtimes)
	}
	_, err := loadWith(t, `{"runtimes": {"a": {"path": "/a"}}}`, "--add-runtime", "a=/other")
	if err == nil || !strings.Contains(err.Error(), "runtime 'a' was already defined") {
		t.Errorf("duplicate runtime: %v", err)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	cleanEnv(t)
	_, err := loadWith(t, `{"foo": 1, "debug": true, "bar": {"x": 1}}`)
	want := "the following directives don't match any configuration option: bar, foo"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	// Flag names are not keys where the key is plural, as in dockerd.
	_, err = loadWith(t, `{"label": ["a=b"]}`)
	if err == nil || !strings.Contains(err.Error(), "don't match any configuration option: label") {
		t.Errorf("singular key accepted: %v", err)
	}
	// dockerd keys berthd has no use for, but which dockerd itself skips.
	c := mustLoad(t, `{"features": {"buildkit": true}}`)
	if !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, `"features"`) }) {
		t.Errorf("ignored key not reported: %q", c.Warnings)
	}
}

func TestLoadBadTypes(t *testing.T) {
	cleanEnv(t)
	tests := []struct{ file, want string }{
		{`{"max-concurrent-downloads": "3"}`, `invalid value for "max-concurrent-downloads": got JSON string, want an integer`},
		{`{"max-concurrent-downloads": 2.5}`, `invalid value for "max-concurrent-downloads": got JSON number 2.5, want an integer`},
		{`{"debug": "yes"}`, `invalid value for "debug": got JSON string, want a boolean`},
		{`{"labels": "a=b"}`, `invalid value for "labels": got JSON string, want a list of strings`},
		{`{"hosts": [1]}`, `invalid value for "hosts"`},
		{`{"log-opts": ["a"]}`, `invalid value for "log-opts": got JSON array, want an object`},
		{`{"runtimes": {"x": {"path": 1}}}`, `invalid value for "runtimes"`},
		{`{"default-ulimits": {"nofile": {"Hard": "x"}}}`, `invalid value for "default-ulimits"`},
		{`{"data-root": ["/x"]}`, `invalid value for "data-root": got JSON array, want a string`},
	}
	for _, tt := range tests {
		_, err := loadWith(t, tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("file %s: error %v, want it to contain %q", tt.file, err, tt.want)
		}
	}
}

func TestLoadBadValues(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		file string
		args []string
		want string
	}{
		{`{"max-concurrent-downloads": -1}`, nil, "invalid max-concurrent-downloads: -1"},
		{`{"max-concurrent-uploads": -2}`, nil, "invalid max-concurrent-uploads: -2"},
		{`{"log-level": "verbose"}`, nil, "invalid logging level: verbose"},
		{``, []string{"-l", "loud"}, "invalid logging level: loud"},
		{`{"labels": ["novalue"]}`, nil, "bad attribute format: novalue"},
		{`{"labels": ["a=1", "a=2"]}`, nil, "conflict labels for a=2 and a=1"},
		{`{"registry-mirrors": ["mirror.example.com"]}`, nil, "invalid registry-mirrors: invalid mirror: no scheme specified"},
		{`{"registry-mirrors": ["https://u:p@m"]}`, nil, "username/password not allowed"},
		{`{"registry-mirrors": ["https://m?x=1"]}`, nil, "query or fragment"},
		{`{"insecure-registries": ["ftp://r:5000"]}`, nil, "insecure registry ftp://r:5000 should not contain '://'"},
		{`{"insecure-registries": ["r:99999"]}`, nil, `insecure registry r:99999 is not valid: invalid port "99999"`},
		{`{"insecure-registries": ["bad host!"]}`, nil, "is not valid: invalid host"},
		{`{"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 10, "Hard": 5}}}`, nil, "ulimit soft limit must be less than or equal to hard limit: 10 > 5"},
		{`{"default-ulimits": {"bogus": {"Soft": 1, "Hard": 1}}}`, nil, "invalid ulimit type: bogus"},
		{`{"default-ulimits": {"nofile": {"Name": "nproc", "Soft": 1, "Hard": 1}}}`, nil, `invalid default-ulimits "nofile"`},
		{`{"bip": "172.17.0.1"}`, nil, `invalid bip "172.17.0.1"`},
		{`{"fixed-cidr": "nonsense"}`, nil, `invalid fixed-cidr "nonsense"`},
		{`{"bip": "10.0.0.1/8", "bridge": "br0"}`, nil, "mutually exclusive"},
		{`{"ip": "300.1.1.1"}`, nil, "invalid ip: IP address is not correctly formatted: 300.1.1.1"},
		{`{"mtu": -1}`, nil, "invalid mtu: -1"},
		{`{"dns": ["8.8.8"]}`, nil, "invalid dns: IP address is not correctly formatted: 8.8.8"},
		{`{"dns-search": ["-x-"]}`, nil, "invalid dns-search"},
		{`{"default-runtime": "nope"}`, nil, "specified default runtime 'nope' does not exist"},
		{``, []string{"--default-runtime", "nope"}, "specified default runtime 'nope' does not exist"},
		{`{"runtimes": {"runc": {"path": "/usr/bin/runc"}}}`, nil, "runtime name 'runc' is reserved"},
		{`{"runtimes": {"x": {}}}`, nil, "runtime x has no path"},
		{`{"exec-opts": ["native.cgroupdriver=foo"]}`, nil, "native.cgroupdriver option foo not supported"},
		{`{"exec-opts": ["nonsense"]}`, nil, "invalid exec-opt (nonsense): must be formatted 'opt=value'"},
		{`{"exec-opts": ["native.other=1"]}`, nil, "unknown option: 'native.other'"},
		{`{"exec-opts": ["native.cgroupdriver=systemd"], "cgroup-parent": "/berth"}`, nil, "valid slice"},
		{`{"storage-opts": ["nokey"]}`, nil, `invalid storage-opts "nokey"`},
		{`{"hosts": ["/var/run/berth.sock"]}`, nil, "invalid hosts: Invalid bind address format: /var/run/berth.sock"},
		{`{"hosts": ["udp://x"]}`, nil, "invalid hosts: Invalid bind address format: udp://x"},
		{`{"graph": "/g", "data-root": "/d"}`, nil, `cannot specify both "--graph" and "--data-root" option`},
		{`{"graph": "/g"}`, []string{"--data-root", "/d"}, `cannot specify both "--graph" and "--data-root" option`},
	}
	for _, tt := range tests {
		_, err := loadWith(t, tt.file, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("file %s flags %q: error %v, want it to contain %q", tt.file, tt.args, err, tt.want)
		}
	}
}

func TestLoadNormalizes(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, `{
		"labels": ["a=1", "b=2", "a=1"],
		"registry-mirrors": ["https://m.example.com", "https://m.example.com/", "http://m2:5000/v2"],
		"insecure-registries": ["http://reg:5000", "HTTPS://reg2", "10.1.2.3/16", "reg:5000", "[::1]:5000"],
		"log-level": "WARN",
		"graph": "/old/place"
	}`)
	if !slices.Equal(c.Labels, []string{"a=1", "b=2"}) {
		t.Errorf("labels %q", c.Labels)
	}
	if !slices.Equal(c.RegistryMirrors, []string{"https://m.example.com/", "http://m2:5000/v2/"}) {
		t.Errorf("mirrors %q", c.RegistryMirrors)
	}
	if !slices.Equal(c.InsecureRegistries, []string{"reg:5000", "reg2", "10.1.0.0/16", "[::1]:5000"}) {
		t.Errorf("insecure registries %q", c.InsecureRegistries)
	}
	if c.LogLevel != "warn" || c.EffectiveLogLevel() != "warn" {
		t.Errorf("log level %q effective %q", c.LogLevel, c.EffectiveLogLevel())
	}
	if c.DataRoot != "/old/place" || c.Graph != "" {
		t.Errorf("graph not folded into data-root: data-root %q graph %q", c.DataRoot, c.Graph)
	}
	for _, w := range []string{"insecure registry http://reg:5000 should not contain 'http://'", "insecure registry HTTPS://reg2 should not contain 'https://'", `"-g / --graph" flag and "graph" key are deprecated`} {
		if !slices.ContainsFunc(c.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("missing warning %q in %q", w, c.Warnings)
		}
	}
	// -g on the command line behaves the same.
	c = mustLoad(t, ``, "-g", "/flag/place")
	if c.DataRoot != "/flag/place" {
		t.Errorf("-g: data-root %q", c.DataRoot)
	}
}

func TestLoadTLSImplications(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name            string
		file            string
		args            []string
		tls, verify     bool
		hosts           []string
		wantTLSDefaults bool
	}{
		{"plain", ``, nil, false, false, []string{"unix:///var/run/berth.sock"}, false},
		{"--tls only", ``, []string{"--tls", "-H", "tcp://127.0.0.1"}, true, false, []string{"tcp://127.0.0.1:2376"}, false},
		{"--tlsverify implies tls", ``, []string{"--tlsverify", "-H", "tcp://127.0.0.1"}, true, true, []string{"tcp://127.0.0.1:2376"}, false},
		{"--tlsverify=false still turns tls on", ``, []string{"--tlsverify=false", "-H", "tcp://127.0.0.1"}, true, false, []string{"tcp://127.0.0.1:2376"}, false},
		{"tlsverify in the file", `{"tlsverify": true, "hosts": ["tcp://0.0.0.0"]}`, nil, true, true, []string{"tcp://0.0.0.0:2376"}, false},
		{"tls without -H listens on the TLS port", ``, []string{"--tlsverify"}, true, true, []string{"tcp://localhost:2376"}, false},
		{"duplicate hosts collapse", ``, []string{"-H", "tcp://127.0.0.1", "-H", "127.0.0.1:2375", "-H", "unix://", "-H", "unix:///var/run/berth.sock"}, false, false, []string{"tcp://127.0.0.1:2375", "unix:///var/run/berth.sock"}, false},
	}
	for _, tt := range tests {
		c, err := loadWith(t, tt.file, tt.args...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.TLS != tt.tls || c.TLSVerify != tt.verify || !slices.Equal(c.Hosts, tt.hosts) {
			t.Errorf("%s: tls %v verify %v hosts %q; want %v %v %q", tt.name, c.TLS, c.TLSVerify, c.Hosts, tt.tls, tt.verify, tt.hosts)
		}
	}
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	c := mustLoad(t, ``)
	if !c.TLS || !c.TLSVerify {
		t.Errorf("DOCKER_TLS_VERIFY: tls %v verify %v", c.TLS, c.TLSVerify)
	}
}

func TestLoadConfigFileHandling(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent.json")

	// A missing default file is fine...
	keys, err := readDaemonConfigFile(missing, false)
	if err != nil || keys != nil {
		t.Errorf("missing default file: %v %v", keys, err)
	}
	// ...a missing named one is not.
	_, err = LoadDaemonConfig([]string{"--config-file", missing})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing explicit file: %v", err)
	}

	// --help and --version do not need a readable file.
	for _, arg := range []string{"--version", "-v", "--help", "-h"} {
		c, err := LoadDaemonConfig([]string{"--config-file", missing, arg})
		if err != nil || !(c.ShowVersion || c.ShowHelp) {
			t.Errorf("%s: %v", arg, err)
		}
	}

	c, err := LoadDaemonConfig([]string{"--config-file", writeConfigFile(t, "{}"), "--validate"})
	if err != nil || !c.Validate {
		t.Errorf("--validate: %v %v", c, err)
	}

	if _, err := LoadDaemonConfig([]string{"--config-file", writeConfigFile(t, "{}"), "extra"}); err == nil || !strings.Contains(err.Error(), "accepts no arguments") {
		t.Errorf("positional argument: %v", err)
	}
	if _, err := LoadDaemonConfig([]string{"--bogus"}); err == nil || !strings.Contains(err.Error(), "unknown flag: --bogus") {
		t.Errorf("unknown flag: %v", err)
	}

	// Syntax errors point at the spot.
	_, err = loadWith(t, "{\n  \"debug\": true,\n  \"labels\": [\"a=b\",]\n}")
	if err == nil || !strings.Contains(err.Error(), "invalid JSON at line 3, column 20") {
		t.Errorf("syntax error: %v", err)
	}
	// Comments (as in some blog daemon.json) are not JSON.
	if _, err := loadWith(t, "{\n // mirrors\n \"debug\": true}"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("comment: %v", err)
	}
	if _, err := loadWith(t, `["debug"]`); err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
		t.Errorf("array file: %v", err)
	}
	if _, err := loadWith(t, "{\"debug\": true, \"log-level\": \"\xff\"}"); err == nil || !strings.Contains(err.Error(), "failed to decode configuration JSON") {
		t.Errorf("invalid UTF-8: %v", err)
	}

	// Byte order marks are accepted (UTF-8 and UTF-16LE), as dockerd does.
	if c := mustLoad(t, "\xef\xbb\xbf{\"debug\": true}"); !c.Debug {
		t.Error("UTF-8 BOM file not read")
	}
	utf16 := []byte{0xff, 0xfe}
	for _, r := range `{"debug": true}` {
		utf16 = append(utf16, byte(r), 0)
	}
	if c := mustLoad(t, string(utf16)); !c.Debug {
		t.Error("UTF-16 file not read")
	}

	// Empty, whitespace and null files hold no settings; a null value keeps
	// the default.
	for _, content := range []string{"", " \n\t", "null"} {
		if c := mustLoad(t, content); c.MaxConcurrentDownloads != 3 {
			t.Errorf("%q: downloads %d", content, c.MaxConcurrentDownloads)
		}
	}
	if c := mustLoad(t, `{"max-concurrent-downloads": null, "icc": null}`); c.MaxConcurrentDownloads != 3 || !c.ICC {
		t.Errorf("null values: downloads %d icc %v", c.MaxConcurrentDownloads, c.ICC)
	}
}

// The seed's daemon.json example, without the keys berth does not have and
// without "runc" in runtimes (reserved, as in current dockerd).
func TestLoadReferenceExample(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, `{"dns":[],"dns-opts":[],"dns-search":[],"exec-opts":[],"exec-root":"","storage-driver":"","storage-opts":[],
		"labels":[],"log-driver":"","log-opts":{},"mtu":0,"pidfile":"","graph":"","max-concurrent-downloads":3,
		"max-concurrent-uploads":5,"debug":true,"hosts":[],"log-level":"","tls":true,"tlsverify":true,"tlscacert":"",
		"tlscert":"","tlskey":"","api-cors-header":"","group":"","cgroup-parent":"","default-ulimits":{},
		"iptables":false,"ip-forward":false,"ip-masq":false,"userland-proxy":false,"ip":"0.0.0.0","bridge":"","bip":"",
		"fixed-cidr":"","icc":false,"registry-mirrors":[],"insecure-registries":[],"default-runtime":"runc",
		"runtimes":{"custom":{"path":"/usr/local/bin/my-runc-replacement","runtimeArgs":["--debug"]}}}`)
	if !c.Debug || !c.TLSVerify || c.IPTables || c.DefaultRuntime != "runc" || c.Runtimes["custom"].RuntimeArgs[0] != "--debug" {
		t.Errorf("reference example misread: %+v", c)
	}
	if !slices.Equal(c.Hosts, []string{DefaultTLSHost}) {
		t.Errorf("hosts %q", c.Hosts)
	}
}

func TestDaemonConfigJSONRoundTrip(t *testing.T) {
	cleanEnv(t)
	// The effective configuration marshals to daemon.json keys that load
	// back to the same configuration.
	c := mustLoad(t, `{"labels":["a=b"],"runtimes":{"x":{"path":"/x"}},"default-ulimits":{"nofile":{"Soft":1,"Hard":2}},"log-opts":{"k":"v"}}`, "-D")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range configKeys() {
		if _, ok := m[k]; !ok && k != "graph" {
			t.Errorf("key %q missing from JSON", k)
		}
	}
	// Giving "tlsverify" at all turns TLS on (dockerd), so a marshalled
	// tlsverify=false only round-trips without the key.
	delete(m, "tlsverify")
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back := mustLoad(t, string(b))
	back.args, back.ConfigFile, back.Warnings = c.args, c.ConfigFile, c.Warnings
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, c)
	}
}

func TestLoadHelpIsNotAnError(t *testing.T) {
	// pflag.ErrHelp is never returned: --help is an ordinary flag.
	c, err := LoadDaemonConfig([]string{"--help"})
	if errors.Is(err, pflag.ErrHelp) || err != nil || !c.ShowHelp {
		t.Fatalf("--help: %v %v", c, err)
	}
}
