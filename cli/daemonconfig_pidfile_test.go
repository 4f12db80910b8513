package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func readPid(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWritePidfileFreshAndRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "berth.pid") // parent created
	release, err := WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readPid(t, path); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q, want %d", got, os.Getpid())
	}
	// A second daemon cannot take it while the first holds it.
	if _, err := WritePidfile(path); err == nil || err.Error() != "pid file found, ensure berthd is not running or delete "+path {
		t.Errorf("second WritePidfile: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pid file still there after release: %v", err)
	}
	if err := release(); err != nil {
		t.Errorf("second release: %v", err)
	}
	// Free again.
	release, err = WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
}

func TestWritePidfileLiveProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.pid")
	// This test process is alive: a file naming it means a running daemon.
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := WritePidfile(path)
	want := "pid file found, ensure berthd is not running or delete " + path
	if err == nil || err.Error() != want {
		t.Fatalf("WritePidfile = %v, want %q", err, want)
	}
	if got := readPid(t, path); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("refused pid file was modified: %q", got)
	}
}

func TestWritePidfileStale(t *testing.T) {
	// A process that has exited and been reaped leaves a stale PID.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	if processAlive(dead) {
		t.Fatalf("pid %d was reused already", dead)
	}
	for name, content := range map[string]string{
		"dead pid": strconv.Itoa(dead),
		"garbage":  "not a pid",
		"empty":    "",
		"longer":   "123456789012345678901234567890",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.pid")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			release, err := WritePidfile(path)
			if err != nil {
				t.Fatalf("stale pid file refused: %v", err)
			}
			defer release()
			if got := readPid(t, path); got != strconv.Itoa(os.Getpid()) {
				t.Errorf("pid file holds %q, want %d", got, os.Getpid())
			}
		})
	}
}

func TestWritePidfileReleaseLeavesOthersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.pid")
	release, err := WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone deletes our file and another daemon writes its own.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if got := readPid(t, path); got != "1" {
		t.Errorf("release removed or changed another daemon's pid file: %q", got)
	}
}

func TestWritePidfileErrors(t *testing.T) {
	if _, err := WritePidfile(""); err == nil {
		t.Error("empty path accepted")
	}
	// The parent is a file, so the pid file cannot be created.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WritePidfile(filepath.Join(parent, "berth.pid")); err == nil {
		t.Error("pid file under a regular file accepted")
	}
}
