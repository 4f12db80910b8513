package shim

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readLog(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestJSONLogFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := openJSONLog(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	if err := w.write("stdout", []byte("hi \"there\"\n"), at); err != nil {
		t.Fatal(err)
	}
	if err := w.write("stderr", []byte("\x00bin\xff"), at); err != nil {
		t.Fatal(err)
	}
	w.close()
	if err := w.write("stdout", []byte("late"), at); err == nil {
		t.Fatal("write after close succeeded")
	}
	b, _ := os.ReadFile(path)
	first := strings.SplitN(string(b), "\n", 2)[0]
	if want := `{"log":"hi \"there\"\n","stream":"stdout","time":"2026-01-02T02:04:05.000000006Z"}`; first != want {
		t.Fatalf("line\n%s\nwant\n%s", first, want)
	}
	got := readLog(t, path)
	if len(got) != 2 || got[1]["stream"] != "stderr" || got[1]["log"] != "\x00bin\ufffd" {
		t.Fatalf("entries %q", got)
	}
	// Reopening appends.
	w, _ = openJSONLog(path, 0, 0)
	w.write("stdout", []byte("again\n"), at)
	w.close()
	if got := readLog(t, path); len(got) != 3 {
		t.Fatalf("after reopen: %d entries", len(got))
	}
}

func TestJSONLogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := openJSONLog(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(strings.Repeat("x", 100) + "\n")
	for i := 0; i < 10; i++ {
		if err := w.write("stdout", msg, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w.close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.Size() > 400 {
			t.Fatalf("%s has %d bytes", p, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatalf("more files than max-file: %v", err)
	}
	// max-file 1 keeps only the live file.
	path1 := filepath.Join(t.TempDir(), "one.log")
	w, _ = openJSONLog(path1, 150, 1)
	for i := 0; i < 5; i++ {
		w.write("stdout", msg, time.Now())
	}
	w.close()
	if _, err := os.Stat(path1 + ".1"); !os.IsNotExist(err) {
		t.Fatalf("rotated file with max-file 1: %v", err)
	}
	if got := readLog(t, path1); len(got) != 1 {
		t.Fatalf("live file has %d entries", len(got))
	}
}

func TestLineSplitter(t *testing.T) {
	var got []string
	s := &lineSplitter{emit: func(m []byte) { got = append(got, string(m)) }}
	s.write([]byte("a\nb"))
	s.write([]byte("c\n\nd"))
	long := strings.Repeat("y", maxLogLine+10)
	s.write([]byte(long))
	s.flush()
	want := []string{"a\n", "bc\n", "\n", "d" + long[:maxLogLine-1], long[maxLogLine-1:]}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: %q, want %q", i, got[i][:min(len(got[i]), 20)], want[i][:min(len(want[i]), 20)])
		}
	}
	s.flush()
	if len(got) != len(want) {
		t.Fatal("empty flush emitted")
	}
}
