package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var (
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

// berthBinary is $BERTH_BIN/berth or a fresh build of cmd/berth.
func berthBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		if p := filepath.Join(dir, "berth"); fileExists(p) {
			return p
		}
	}
	berthOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-test-bin-")
		if err != nil {
			berthErr = err
			return
		}
		berthBin = filepath.Join(dir, "berth")
		if out, err := exec.Command("go", "build", "-o", berthBin, "../berth").CombinedOutput(); err != nil {
			berthErr = err
			berthBin = string(out)
		}
	})
	if berthErr != nil {
		t.Fatalf("build berth: %v\n%s", berthErr, berthBin)
	}
	return berthBin
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (d *daemonProc) berth(args ...string) (string, string, int) {
	cmd := exec.Command(berthBinary(d.t), append([]string{"-H", d.host}, args...)...)
	cmd.Env = []string{"HOME=" + d.t.TempDir(), "PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// berth and docker print the same for the same daemon.
// sortedRows sorts the rows of a listing, below its header if it has one.
func sortedRows(out string) string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	rows := lines
	if len(lines) > 0 && strings.HasPrefix(lines[0], "REPOSITORY") {
		rows = lines[1:]
	}
	slices.Sort(rows)
	return strings.Join(lines, "\n") + "\n"
}

func TestBerthCLIMatchesDockerCLIAgainstBerthd(t *testing.T) {
	dir := t.TempDir()
	seedImages(t, filepath.Join(dir, "data"), map[string]v1.Image{"busybox:latest": busybox(t)})
	d := startDaemon(t, dir)
	for _, args := range [][]string{
		{"images"},
		{"images", "--digests", "--no-trunc"},
		{"history", "busybox"},
		{"image", "inspect", "--format", "{{.Id}} {{.Size}}", "busybox"},
		{"rmi", "nope"},
		{"inspect", "nope"},
		{"tag", "busybox", "bb:v1"},
		{"images", "--format", "{{.Repository}}:{{.Tag}}"},
		{"rmi", "bb:v1"},
		{"system", "df"},
	} {
		bo, be, bc := d.berth(args...)
		if args[0] == "tag" || (args[0] == "rmi" && args[1] == "bb:v1") {
			// These change the store: berth does it, the next listing
			// (by both clients) shows it happened.
			if bc != 0 {
				t.Fatalf("berth %v: %d %s", args, bc, be)
			}
			continue
		}
		do, de, dc := d.docker(args...)
		if args[0] == "images" {
			// The docker CLI groups an image's tags by repository in a
			// map: the order of its rows for one image changes from run
			// to run.
			bo, do = sortedRows(bo), sortedRows(do)
		}
		if bo != do || strings.ReplaceAll(be, "berth", "docker") != de || bc != dc {
			t.Errorf("%v:\nberth (%d): %q %q\ndocker (%d): %q %q", args, bc, bo, be, dc, do, de)
		}
	}
}
