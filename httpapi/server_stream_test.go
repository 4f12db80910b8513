package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/pkg/stdcopy"
)

func TestJSONStreamFlushesEachLine(t *testing.T) {
	step := make(chan struct{})
	ts := startUnix(t, Options{}, Backends{}, func(s *Server) {
		s.Echo().POST("/test/pull", func(c echo.Context) error {
			p, err := NewProgressWriter(c)
			if err != nil {
				return err
			}
			<-step // headers must reach the client before anything else
			if err := p.Status("latest", "Pulling from library/busybox"); err != nil {
				return err
			}
			<-step // each line must reach the client on its own
			if err := p.Progress("abc123456789", "Downloading", 512, 2048); err != nil {
				return err
			}
			<-step
			if err := p.Aux(map[string]any{"ID": "sha256:feed"}); err != nil {
				return err
			}
			if err := p.Stream("Step 1/2 : FROM busybox\n"); err != nil {
				return err
			}
			if err := p.ErrorCode(3, "The command '/bin/sh -c exit 3' returned a non-zero code: 3"); err != nil {
				return err
			}
			if err := p.Write(ProgressMessage{Error: "only the legacy field"}); err != nil {
				return err
			}
			return p.Error(errors.New("boom"))
		})
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://x/v1.41/test/pull", nil)
	respC := make(chan *http.Response, 1)
	go func() {
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Error(err)
		}
		respC <- resp
	}()
	var resp *http.Response
	select {
	case resp = <-respC:
	case <-time.After(5 * time.Second):
		t.Fatal("stream headers not flushed before the first message")
	}
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	wantHeader(t, resp.Header, "Content-Type", "application/json")
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	readLine := func() map[string]any {
		t.Helper()
		type result struct {
			line string
			err  error
		}
		rc := make(chan result, 1)
		go func() {
			l, err := br.ReadString('\n')
			rc <- result{l, err}
		}()
		select {
		case r := <-rc:
			if r.err != nil {
				t.Fatal(r.err)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(r.line), &m); err != nil {
				t.Fatalf("line %q: %v", r.line, err)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("line not flushed")
			return nil
		}
	}

	step <- struct{}{}
	if m := readLine(); m["status"] != "Pulling from library/busybox" || m["id"] != "latest" {
		t.Errorf("status line %v", m)
	}
	step <- struct{}{}
	m := readLine()
	pd, _ := m["progressDetail"].(map[string]any)
	if m["status"] != "Downloading" || pd["current"] != 512.0 || pd["total"] != 2048.0 || !strings.HasPrefix(m["progress"].(string), "[============>") {
		t.Errorf("progress line %v", m)
	}
	step <- struct{}{}
	if m := readLine(); m["aux"].(map[string]any)["ID"] != "sha256:feed" {
		t.Errorf("aux line %v", m)
	}
	if m := readLine(); m["stream"] != "Step 1/2 : FROM busybox\n" {
		t.Errorf("stream line %v", m)
	}
	for _, want := range []struct {
		code float64
		msg  string
	}{{3, "The command '/bin/sh -c exit 3' returned a non-zero code: 3"}, {0, "only the legacy field"}, {0, "boom"}} {
		m := readLine()
		ed, _ := m["errorDetail"].(map[string]any)
		if ed == nil || ed["message"] != want.msg || m["error"] != want.msg {
			t.Errorf("error line %v, want errorDetail and error %q", m, want.msg)
		}
		if c, _ := ed["code"].(float64); c != want.code {
			t.Errorf("error code %v, want %v", ed["code"], want.code)
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		cur, total int64
		want       string
	}{
		{0, 0, ""},
		{1000, 0, "     1kB"},
		{1000, 2000, "[=========================>                         ]      1kB/2kB"},
		{3000, 2000, "[==================================================>]      3kB"},
	} {
		if got := ProgressBar(tc.cur, tc.total); got != tc.want {
			t.Errorf("ProgressBar(%d, %d) = %q, want %q", tc.cur, tc.total, got, tc.want)
		}
	}
}

func TestStdWritersRoundTrip(t *testing.T) {
	var buf lockedWriter
	stdout, stderr, _ := NewStdWriters(&buf)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); fmt.Fprintf(stdout, "out %02d\n", i) }()
		go func() { defer wg.Done(); fmt.Fprintf(stderr, "err %02d\n", i) }()
	}
	wg.Wait()

	raw := buf.Bytes()
	if raw[0] != 1 && raw[0] != 2 || raw[1] != 0 || raw[2] != 0 || raw[3] != 0 || raw[4] != 0 || raw[5] != 0 || raw[6] != 0 || raw[7] != 7 {
		t.Errorf("first header % x", raw[:8])
	}
	var outB, errB bytes.Buffer
	if _, err := stdcopy.StdCopy(&outB, &errB, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(outB.String(), "out "); n != 50 || strings.Contains(outB.String(), "err") {
		t.Errorf("stdout: %d lines, %q", n, outB.String())
	}
	if n := strings.Count(errB.String(), "err "); n != 50 || strings.Contains(errB.String(), "out") {
		t.Errorf("stderr: %d lines", n)
	}

	// systemerr surfaces as an error in the client.
	var sys bytes.Buffer
	_, _, se := NewStdWriters(&sys)
	fmt.Fprint(se, "runtime failed")
	if _, err := stdcopy.StdCopy(&outB, &errB, &sys); err == nil || !strings.Contains(err.Error(), "runtime failed") {
		t.Errorf("systemerr: %v", err)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Bytes()
}

func TestFilters(t *testing.T) {
	f, err := ParseFilters(`{"label":{"a=1":true,"b":true},"name":{"web":true},"dangling":{"true":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.MatchKVList("label", map[string]string{"a": "1", "b": "x"}) || f.MatchKVList("label", map[string]string{"a": "2", "b": "x"}) || f.MatchKVList("label", map[string]string{"a": "1"}) {
		t.Error("MatchKVList")
	}
	if !f.FuzzyMatch("name", "web-1") || f.FuzzyMatch("name", "db") || !f.ExactMatch("name", "web") || f.ExactMatch("name", "web-1") {
		t.Error("name matching")
	}
	if !f.ExactMatch("absent", "anything") || !f.FuzzyMatch("absent", "x") {
		t.Error("absent key must match everything")
	}
	if v, ok, err := f.GetBool("dangling"); !v || !ok || err != nil {
		t.Errorf("GetBool = %v %v %v", v, ok, err)
	}
	if err := f.Validate("label", "name"); err == nil || StatusFromError(err) != 400 || err.Error() != "invalid filter 'dangling'" {
		t.Errorf("Validate: %v", err)
	}
	if _, err := ParseFilters(`{"x":`); err == nil || StatusFromError(err) != 400 {
		t.Errorf("bad JSON: %v", err)
	}
	if f, err := ParseFilters(""); err != nil || f.Len() != 0 {
		t.Errorf("empty: %v %v", f, err)
	}
	var g Filters
	g.Add("status", "exited")
	if !g.Contains("status") || g.Get("status")[0] != "exited" {
		t.Error("Add")
	}
}
