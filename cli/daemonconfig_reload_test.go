package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func rewrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadAppliesReloadableKeys(t *testing.T) {
	cleanEnv(t)
	path := writeConfigFile(t, `{
		"labels": ["a=1"],
		"max-concurrent-downloads": 3,
		"storage-driver": "overlay2",
		"runtimes": {"custom": {"path": "/bin/custom"}}
	}`)
	running, err := LoadDaemonConfig([]string{"--config-file", path, "-H", "unix:///tmp/x.sock", "--exec-root", "/run/b"})
	if err != nil {
		t.Fatal(err)
	}
	before := running.clone()

	rewrite(t, path, `{
		"debug": true,
		"labels": ["a=1", "b=2"],
		"max-concurrent-downloads": 10,
		"max-concurrent-uploads": 1,
		"registry-mirrors": ["https://mirror.example.com"],
		"insecure-registries": ["http://r:5000"],
		"default-runtime": "other",
		"runtimes": {"custom": {"path": "/bin/custom"}, "other": {"path": "/bin/other", "runtimeArgs": ["--x"]}},
		"storage-driver": "vfs",
		"data-root": "/elsewhere",
		"live-restore": true
	}`)
	res, err := running.Reload()
	if err != nil {
		t.Fatal(err)
	}
	wantChanged := []string{"debug", "labels", "max-concurrent-downloads", "max-concurrent-uploads", "registry-mirrors", "insecure-registries", "default-runtime", "runtimes"}
	slices.Sort(wantChanged)
	gotChanged := slices.Sorted(slices.Values(res.Changed))
	if !slices.Equal(gotChanged, wantChanged) {
		t.Errorf("changed %q, want %q", gotChanged, wantChanged)
	}
	wantNR := []string{"data-root", "live-restore", "storage-driver"}
	if got := slices.Sorted(slices.Values(res.NotReloadable)); !slices.Equal(got, wantNR) {
		t.Errorf("not reloadable %q, want %q", got, wantNR)
	}

	n := res.Config
	if !n.Debug || !slices.Equal(n.Labels, []string{"a=1", "b=2"}) || n.MaxConcurrentDownloads != 10 || n.MaxConcurrentUploads != 1 {
		t.Errorf("reloadable values not applied: %+v", n)
	}
	if !slices.Equal(n.RegistryMirrors, []string{"https://mirror.example.com/"}) || !slices.Equal(n.InsecureRegistries, []string{"r:5000"}) {
		t.Errorf("registry settings not applied: %q %q", n.RegistryMirrors, n.InsecureRegistries)
	}
	if n.DefaultRuntime != "other" || n.Runtimes["other"].Path != "/bin/other" {
		t.Errorf("runtimes not applied: %q %v", n.DefaultRuntime, n.Runtimes)
	}
	// Keys that need a restart keep their running values.
	if n.StorageDriver != "overlay2" || n.DataRoot != DefaultDataRoot || n.LiveRestore {
		t.Errorf("non-reloadable values changed: %q %q %v", n.StorageDriver, n.DataRoot, n.LiveRestore)
	}
	// Flags from the start stay in force.
	if !slices.Equal(n.Hosts, []string{"unix:///tmp/x.sock"}) || n.ExecRoot != "/run/b" {
		t.Errorf("start flags lost: %q %q", n.Hosts, n.ExecRoot)
	}
	if !slices.ContainsFunc(n.Warnings, func(w string) bool { return strings.Contains(w, "http://r:5000") }) {
		t.Errorf("reload warnings missing: %q", n.Warnings)
	}
	// The running configuration is untouched.
	if !reflect.DeepEqual(running, before) {
		t.Errorf("Reload modified the running configuration")
	}

	// Reloading again from the new state reports nothing changed.
	rewrite(t, path, `{"labels": ["a=1", "b=2"], "max-concurrent-downloads": 10, "max-concurrent-uploads": 1,
		"registry-mirrors": ["https://mirror.example.com/"], "insecure-registries": ["r:5000"], "debug": true,
		"default-runtime": "other", "runtimes": {"custom": {"path": "/bin/custom"}, "other": {"path": "/bin/other", "runtimeArgs": ["--x"]}},
		"storage-driver": "overlay2"}`)
	res2, err := res.Config.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Changed) != 0 || len(res2.NotReloadable) != 0 {
		t.Errorf("second reload: changed %q not reloadable %q", res2.Changed, res2.NotReloadable)
	}

	// The result shares nothing with the running configuration.
	n.Labels[0] = "mutated=1"
	n.Runtimes["custom"] = Runtime{Path: "/mutated"}
	if running.Labels[0] != "a=1" || running.Runtimes["custom"].Path != "/bin/custom" {
		t.Errorf("reload result aliases the running configuration")
	}
}

func TestReloadRemovedKeyFallsBack(t *testing.T) {
	cleanEnv(t)
	path := writeConfigFile(t, `{"max-concurrent-downloads": 9, "labels": ["a=1"]}`)
	running, err := LoadDaemonConfig([]string{"--config-file", path, "-D"})
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, path, `{}`)
	res, err := running.Reload()
	if err != nil {
		t.Fatal(err)
	}
	// Back to the default, and -D from the command line still holds.
	if res.Config.MaxConcurrentDownloads != DefaultMaxConcurrentDownloads || len(res.Config.Labels) != 0 || !res.Config.Debug {
		t.Errorf("got downloads %d labels %q debug %v", res.Config.MaxConcurrentDownloads, res.Config.Labels, res.Config.Debug)
	}
	if got := slices.Sorted(slices.Values(res.Changed)); !slices.Equal(got, []string{"labels", "max-concurrent-downloads"}) {
		t.Errorf("changed %q", got)
	}
}

func TestReloadRejectsBadFile(t *testing.T) {
	cleanEnv(t)
	tests := []struct{ name, content, want string }{
		{"syntax", `{"debug": tru}`, "invalid JSON"},
		{"bad value", `{"max-concurrent-downloads": -5}`, "invalid max-concurrent-downloads: -5"},
		{"bad type", `{"labels": "a"}`, `invalid value for "labels"`},
		{"unknown key", `{"debugg": true}`, "don't match any configuration option: debugg"},
		{"conflict with a start flag", `{"max-concurrent-uploads": 2}`, "max-concurrent-uploads: (from flag: 4, from file: 2)"},
		{"conflict with a start flag, non-reloadable key", `{"hosts": ["unix:///y"]}`, "hosts: (from flag: [unix:///tmp/x.sock], from file: [unix:///y])"},
		{"missing runtime", `{"default-runtime": "gone"}`, "specified default runtime 'gone' does not exist"},
		{"label conflict", `{"labels": ["a=1", "a=2"]}`, "conflict labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfigFile(t, `{"debug": true}`)
			running, err := LoadDaemonConfig([]string{"--config-file", path, "--max-concurrent-uploads", "4", "-H", "unix:///tmp/x.sock"})
			if err != nil {
				t.Fatal(err)
			}
			before := running.clone()
			rewrite(t, path, tt.content)
			res, err := running.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload = %v, %v; want error containing %q", res, err, tt.want)
			}
			if !reflect.DeepEqual(running, before) {
				t.Error("a failed reload modified the running configuration")
			}
		})
	}
}

func TestReloadConfigFileDisappears(t *testing.T) {
	cleanEnv(t)
	// An explicitly named file that disappears is an error.
	path := writeConfigFile(t, `{"debug": true}`)
	running, err := LoadDaemonConfig([]string{"--config-file", path})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Reload(); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reload of a removed explicit file: %v", err)
	}
}

func TestReloadDefaultConfigFile(t *testing.T) {
	cleanEnv(t)
	// The default file may come and go: absent means "no settings".
	def := filepath.Join(t.TempDir(), "daemon.json")
	running, err := loadDaemonConfig([]string{"--label", "from=flag"}, def)
	if err != nil {
		t.Fatal(err)
	}
	if running.ConfigFile != def {
		t.Errorf("config file %q", running.ConfigFile)
	}
	rewrite(t, def, `{"debug": true, "max-concurrent-uploads": 8}`)
	res, err := running.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Config.Debug || res.Config.MaxConcurrentUploads != 8 || !slices.Equal(res.Config.Labels, []string{"from=flag"}) {
		t.Errorf("after creating the default file: %+v", res.Config)
	}
	if err := os.Remove(def); err != nil {
		t.Fatal(err)
	}
	res, err = res.Config.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.Debug || res.Config.MaxConcurrentUploads != DefaultMaxConcurrentUploads {
		t.Errorf("after removing the default file: debug %v uploads %d", res.Config.Debug, res.Config.MaxConcurrentUploads)
	}
	if got := slices.Sorted(slices.Values(res.Changed)); !slices.Equal(got, []string{"debug", "max-concurrent-uploads"}) {
		t.Errorf("changed %q", got)
	}
}

func TestApplyReloadComparesNilAndEmpty(t *testing.T) {
	cleanEnv(t)
	a, b := NewDaemonConfig(), NewDaemonConfig()
	a.Labels, b.Labels = nil, []string{}
	a.Runtimes = nil
	a.Runtimes, b.Runtimes = map[string]Runtime{"x": {Path: "/x"}}, map[string]Runtime{"x": {Path: "/x", RuntimeArgs: []string{}}}
	if res := a.ApplyReload(b); len(res.Changed)+len(res.NotReloadable) != 0 {
		t.Errorf("nil vs empty counted as a change: %q %q", res.Changed, res.NotReloadable)
	}
}

func TestReloadableKeysAreConfigKeys(t *testing.T) {
	for _, k := range ReloadableKeys() {
		if !slices.Contains(configKeys(), k) {
			t.Errorf("reloadable key %q is not a configuration key", k)
		}
	}
}
