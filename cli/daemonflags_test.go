package cli

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// Every flag that is a configuration key names a DaemonConfig field, and
// every daemon.json key of DaemonConfig can be set by a flag; otherwise the
// unknown-key and conflict checks would silently miss it.
func TestFlagKeysMatchConfigFields(t *testing.T) {
	fs := NewDaemonFlagSet(NewDaemonConfig())
	flagKeys := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if k := flagConfigKey(f); k != "" {
			if prev, dup := flagKeys[k]; dup {
				t.Errorf("key %q set by both --%s and --%s", k, prev, f.Name)
			}
			flagKeys[k] = f.Name
		}
	})
	fields := configKeys()
	for _, k := range fields {
		if _, ok := flagKeys[k]; !ok {
			t.Errorf("daemon.json key %q has no flag", k)
		}
	}
	for k, f := range flagKeys {
		if !slices.Contains(fields, k) {
			t.Errorf("flag --%s names key %q, which is not a DaemonConfig field", f, k)
		}
	}
}

func TestDaemonFlagNames(t *testing.T) {
	fs := NewDaemonFlagSet(NewDaemonConfig())
	want := map[string]string{ // name -> shorthand
		"host": "H", "debug": "D", "log-level": "l", "pidfile": "p", "group": "G",
		"graph": "g", "storage-driver": "s", "bridge": "b", "version": "v", "help": "h",
		"data-root": "", "exec-root": "", "label": "", "tls": "", "tlsverify": "",
		"tlscacert": "", "tlscert": "", "tlskey": "", "max-concurrent-downloads": "",
		"max-concurrent-uploads": "", "registry-mirror": "", "insecure-registry": "",
		"storage-opt": "", "default-runtime": "", "add-runtime": "", "exec-opt": "",
		"cgroup-parent": "", "dns": "", "dns-opt": "", "dns-search": "",
		"default-ulimit": "", "log-driver": "", "log-opt": "", "live-restore": "",
		"shutdown-timeout": "", "api-cors-header": "", "bip": "", "fixed-cidr": "",
		"ip": "", "icc": "", "ip-masq": "", "iptables": "", "ip-forward": "", "mtu": "",
		"userland-proxy": "", "config-file": "", "validate": "",
	}
	for name, short := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("missing flag --%s", name)
			continue
		}
		if f.Shorthand != short {
			t.Errorf("--%s shorthand = %q, want %q", name, f.Shorthand, short)
		}
	}
	if f := fs.Lookup("graph"); f.Deprecated == "" {
		t.Error("--graph should be deprecated in favour of --data-root")
	}
	if !strings.Contains(fs.Lookup("host").Usage, DefaultHost) {
		t.Errorf("--host help does not document the default socket: %q", fs.Lookup("host").Usage)
	}
}

func TestDaemonFlagDefaults(t *testing.T) {
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("HOME", "/home/someone")
	fs := NewDaemonFlagSet(NewDaemonConfig())
	want := map[string]string{
		"data-root":                "/var/lib/berth",
		"exec-root":                "/var/run/berth",
		"pidfile":                  "/var/run/berth.pid",
		"config-file":              "/etc/berth/daemon.json",
		"group":                    "docker",
		"log-level":                "info",
		"max-concurrent-downloads": "3",
		"max-concurrent-uploads":   "5",
		"default-runtime":          "runc",
		"log-driver":               "json-file",
		"shutdown-timeout":         "15",
		"ip":                       "0.0.0.0",
		"icc":                      "true",
		"ip-masq":                  "true",
		"iptables":                 "true",
		"ip-forward":               "true",
		"userland-proxy":           "true",
		"mtu":                      "0",
		"debug":                    "false",
		"tls":                      "false",
		"tlsverify":                "false",
		"live-restore":             "false",
		"tlscacert":                "/home/someone/.docker/ca.pem",
		"tlscert":                  "/home/someone/.docker/cert.pem",
		"tlskey":                   "/home/someone/.docker/key.pem",
	}
	for name, def := range want {
		if got := fs.Lookup(name).DefValue; got != def {
			t.Errorf("--%s default = %q, want %q", name, got, def)
		}
	}
}

func TestDaemonFlagCertEnv(t *testing.T) {
	t.Setenv("DOCKER_CERT_PATH", "/certs")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	cfg := NewDaemonConfig()
	if cfg.TLSCACert != "/certs/ca.pem" || cfg.TLSCert != "/certs/cert.pem" || cfg.TLSKey != "/certs/key.pem" {
		t.Errorf("DOCKER_CERT_PATH not honoured: %q %q %q", cfg.TLSCACert, cfg.TLSCert, cfg.TLSKey)
	}
	if !cfg.TLSVerify {
		t.Error("DOCKER_TLS_VERIFY did not turn tlsverify on")
	}
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_CONFIG", "/cfg")
	if got := NewDaemonConfig().TLSCACert; got != "/cfg/ca.pem" {
		t.Errorf("DOCKER_CONFIG not honoured: %q", got)
	}
}

func TestDaemonFlagParsing(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *DaemonConfig)
	}{
		{"shorthands", []string{"-D", "-l", "warn", "-p", "/p.pid", "-G", "staff", "-s", "vfs", "-b", "br0"}, func(t *testing.T, c *DaemonConfig) {
			if !c.Debug || c.LogLevel != "warn" || c.Pidfile != "/p.pid" || c.Group != "staff" || c.StorageDriver != "vfs" || c.Bridge != "br0" {
				t.Errorf("got %+v", c)
			}
		}},
		{"repeatable hosts", []string{"-H", "unix:///a.sock", "-H", "tcp://127.0.0.1", "--host=:5555"}, func(t *testing.T, c *DaemonConfig) {
			want := []string{"unix:///a.sock", "tcp://127.0.0.1", ":5555"}
			if !slices.Equal(c.Hosts, want) {
				t.Errorf("hosts %q, want %q", c.Hosts, want)
			}
		}},
		{"repeatable lists", []string{
			"--label", "a=1", "--label=b=2",
			"--registry-mirror", "https://m.example.com", "--registry-mirror", "http://m2:5000/",
			"--insecure-registry", "r:5000", "--insecure-registry", "10.0.0.0/8",
			"--storage-opt", "overlay2.size=1G", "--exec-opt", "native.cgroupdriver=systemd",
			"--dns", "8.8.8.8", "--dns", "::1", "--dns-opt", "ndots:2", "--dns-search", "example.com",
		}, func(t *testing.T, c *DaemonConfig) {
			eq := func(name string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			eq("labels", c.Labels, []string{"a=1", "b=2"})
			eq("mirrors", c.RegistryMirrors, []string{"https://m.example.com/", "http://m2:5000/"})
			eq("insecure", c.InsecureRegistries, []string{"r:5000", "10.0.0.0/8"})
			eq("storage-opts", c.StorageOpts, []string{"overlay2.size=1G"})
			eq("exec-opts", c.ExecOpts, []string{"native.cgroupdriver=systemd"})
			eq("dns", c.DNS, []string{"8.8.8.8", "::1"})
			eq("dns-opts", c.DNSOpts, []string{"ndots:2"})
			eq("dns-search", c.DNSSearch, []string{"example.com"})
		}},
		{"runtimes, ulimits, log opts", []string{
			"--add-runtime", "custom=/usr/local/bin/my-runc", "--add-runtime", "Kata=/bin/kata",
			"--default-ulimit", "nofile=1024:2048", "--default-ulimit", "nproc=512", "--default-ulimit", "nofile=10:20",
			"--log-opt", "max-size=10m", "--log-opt", "max-file=3",
		}, func(t *testing.T, c *DaemonConfig) {
			wantRT := map[string]Runtime{"custom": {Path: "/usr/local/bin/my-runc"}, "kata": {Path: "/bin/kata"}}
			if !reflect.DeepEqual(c.Runtimes, wantRT) {
				t.Errorf("runtimes %v, want %v", c.Runtimes, wantRT)
			}
			wantUL := map[string]*units.Ulimit{"nofile": {Name: "nofile", Soft: 10, Hard: 20}, "nproc": {Name: "nproc", Soft: 512, Hard: 512}}
			if !reflect.DeepEqual(c.DefaultUlimits, wantUL) {
				t.Errorf("ulimits %v, want %v", c.DefaultUlimits, wantUL)
			}
			if !reflect.DeepEqual(c.LogOpts, map[string]string{"max-size": "10m", "max-file": "3"}) {
				t.Errorf("log opts %v", c.LogOpts)
			}
		}},
		{"booleans off", []string{"--icc=false", "--ip-masq=false", "--iptables=false", "--ip-forward=false", "--userland-proxy=false", "--live-restore"}, func(t *testing.T, c *DaemonConfig) {
			if c.ICC || c.IPMasq || c.IPTables || c.IPForward || c.UserlandProxy || !c.LiveRestore {
				t.Errorf("got %+v", c)
			}
		}},
		{"deprecated -g", []string{"-g", "/srv/berth"}, func(t *testing.T, c *DaemonConfig) {
			if c.Graph != "/srv/berth" {
				t.Errorf("graph = %q", c.Graph)
			}
		}},
		{"front-end flags", []string{"--validate", "--config-file", "/x.json", "-v"}, func(t *testing.T, c *DaemonConfig) {
			if !c.Validate || c.ConfigFile != "/x.json" || !c.ShowVersion {
				t.Errorf("got validate=%v config-file=%q version=%v", c.Validate, c.ConfigFile, c.ShowVersion)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDaemonConfig()
			fs := NewDaemonFlagSet(cfg)
			fs.SetOutput(&strings.Builder{})
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestDaemonFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-H", "foo://x"}, `invalid argument "foo://x" for "-H, --host" flag: Invalid bind address format: foo://x`},
		{[]string{"--label", "novalue"}, "bad attribute format: novalue"},
		{[]string{"--registry-mirror", "mirror.example.com"}, "no scheme specified"},
		{[]string{"--registry-mirror", "ftp://m"}, "unsupported scheme"},
		{[]string{"--insecure-registry", "-bad"}, "Cannot begin or end with a hyphen"},
		{[]string{"--add-runtime", "runc=/x"}, "runtime name 'runc' is reserved"},
		{[]string{"--add-runtime", "nopath"}, "invalid runtime argument: nopath"},
		{[]string{"--add-runtime", "a=/x", "--add-runtime", "a=/y"}, "runtime 'a' was already defined"},
		{[]string{"--default-ulimit", "nofile=2048:1024"}, "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"},
		{[]string{"--default-ulimit", "bogus=1"}, "invalid ulimit type: bogus"},
		{[]string{"--default-ulimit", "nofile"}, "invalid ulimit argument: nofile"},
		{[]string{"--dns", "not-an-ip"}, "IP address is not correctly formatted: not-an-ip"},
		{[]string{"--dns-search", "-bad-"}, "is not a valid domain"},
		{[]string{"--log-opt", "novalue"}, "invalid key=value format: novalue"},
		{[]string{"--max-concurrent-downloads", "x"}, `invalid argument "x" for "--max-concurrent-downloads" flag`},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
	}
	for _, tt := range tests {
		fs := NewDaemonFlagSet(NewDaemonConfig())
		fs.SetOutput(&strings.Builder{})
		err := fs.Parse(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error %v, want it to contain %q", tt.args, err, tt.want)
		}
	}
}
