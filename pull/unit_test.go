package pull

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestDecodeAuthHeader(t *testing.T) {
	want := AuthConfig{Username: "alice", Password: "p+/s?w>rd", ServerAddress: "127.0.0.1:5000"}
	raw, _ := json.Marshal(want)
	for name, enc := range map[string]*base64.Encoding{
		"url padded": base64.URLEncoding, "url raw": base64.RawURLEncoding,
		"std padded": base64.StdEncoding, "std raw": base64.RawStdEncoding,
	} {
		got, err := DecodeAuthHeader(enc.EncodeToString(raw))
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	for _, anon := range []string{"", "e30=", "e30", " e30= "} {
		got, err := DecodeAuthHeader(anon)
		if err != nil || !got.Anonymous() {
			t.Errorf("%q: %+v, %v, want anonymous", anon, got, err)
		}
	}
	for _, bad := range []string{"!!!", base64.StdEncoding.EncodeToString([]byte("not json"))} {
		if _, err := DecodeAuthHeader(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v, want invalid argument", bad, err)
		}
	}
}

func TestProgressBarLikeDockerd(t *testing.T) {
	for _, tc := range []struct {
		cur, total int64
		want       string
	}{
		{0, 0, ""},
		{1200, 0, "   1.2kB"},
		{0, 3400000, "[>                                                  ]       0B/3.4MB"},
		{1200000, 3400000, "[=================>                                 ]    1.2MB/3.4MB"},
		{3400000, 3400000, "[==================================================>]    3.4MB/3.4MB"},
		{5000000, 3400000, "[==================================================>]      5MB"},
	} {
		if got := progressBar(tc.cur, tc.total); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.cur, tc.total, got, tc.want)
		}
	}
	// The wire form of a layer line without a count.
	b, _ := json.Marshal(Message{Status: statusPullingFSLayer, ID: "abc", Detail: nil})
	if string(b) != `{"status":"Pulling fs layer","id":"abc"}` {
		t.Errorf("%s", b)
	}
	var e emitter
	var got []Message
	e.fn = func(m Message) { got = append(got, m) }
	e.layer("abc", statusPullingFSLayer)
	b, _ = json.Marshal(got[0])
	if string(b) != `{"status":"Pulling fs layer","progressDetail":{},"id":"abc"}` {
		t.Errorf("layer line %s", b)
	}
	b, _ = json.Marshal(ErrorMessage(errors.New("boom")))
	if string(b) != `{"errorDetail":{"message":"boom"},"error":"boom"}` {
		t.Errorf("error line %s", b)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2)
	ctx := context.Background()
	var inFlight, peak atomic.Int32
	var waited atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Acquire(ctx, func() { waited.Add(1) }); err != nil {
				t.Error(err)
				return
			}
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			inFlight.Add(-1)
			l.Release()
		}()
	}
	wg.Wait()
	if peak.Load() != 2 || waited.Load() < 6 {
		t.Errorf("peak %d, waited %d", peak.Load(), waited.Load())
	}

	// Lowering the limit holds new holders back until enough release.
	l = newLimiter(3)
	for range 3 {
		l.Acquire(ctx, nil)
	}
	l.SetLimit(1)
	got := make(chan struct{})
	go func() {
		l.Acquire(ctx, nil)
		close(got)
	}()
	l.Release()
	l.Release()
	select {
	case <-got:
		t.Fatal("acquired with 1 slot held under a limit of 1")
	case <-time.After(30 * time.Millisecond):
	}
	l.Release()
	<-got

	// A waiter whose context ends leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- l.Acquire(cctx, nil) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled acquire: %v", err)
	}
	l.Release()
	if err := l.Acquire(ctx, nil); err != nil {
		t.Errorf("slot lost to a cancelled waiter: %v", err)
	}
}

func TestPlatforms(t *testing.T) {
	for in, want := range map[string]platform{
		"linux/amd64":    {"linux", "amd64", ""},
		"linux/x86_64":   {"linux", "amd64", ""},
		"linux/arm64/v8": {"linux", "arm64", ""},
		"linux/aarch64":  {"linux", "arm64", ""},
		"linux/arm":      {"linux", "arm", "v7"},
		"linux/arm/v6":   {"linux", "arm", "v6"},
		"arm64":          {"linux", "arm64", ""},
		"LINUX/S390X":    {"linux", "s390x", ""},
	} {
		got, err := parsePlatform(in)
		if err != nil || got != want {
			t.Errorf("parsePlatform(%q) = %+v, %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"linux/", "/amd64", "a/b/c/d"} {
		if _, err := parsePlatform(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parsePlatform(%q): %v", bad, err)
		}
	}
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "01"}, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "02"}, Platform: &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "03"}, Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "04"}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}},
	}}
	for want, hex := range map[platform]string{
		{"linux", "arm64", ""}:   "03",
		{"linux", "arm", "v7"}:   "02", // a v7 machine runs v6
		{"linux", "amd64", ""}:   "04",
		{"linux", "arm", "v5"}:   "",
		{"linux", "riscv64", ""}: "",
	} {
		d, ok := pickManifest(idx, want)
		if (hex == "") == ok || (ok && d.Digest.Hex != hex) {
			t.Errorf("pick %v: %v %v, want %q", want, d.Digest, ok, hex)
		}
	}
}

func TestInsecureRegistries(t *testing.T) {
	ctx := context.Background()
	cfg := Config{InsecureRegistries: []string{"myreg:5000", "other.example", "192.168.0.0/16"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000":       true,
		"127.5.6.7":            true,
		"localhost:5000":       true,
		"[::1]:5000":           true,
		"myreg:5000":           true,
		"myreg:5001":           false,
		"other.example:443":    true,
		"192.168.3.4:80":       true,
		"10.0.0.1:5000":        false,
		"registry-1.docker.io": false,
	} {
		if got := isInsecure(ctx, cfg, host); got != want {
			t.Errorf("isInsecure(%q) = %v, want %v", host, got, want)
		}
	}
	eps, err := endpointsFor(ctx, Config{Mirrors: []string{"http://127.0.0.1:5001/", "mirror.example"}}, "docker.io")
	if err != nil {
		t.Fatal(err)
	}
	want := []endpoint{
		{host: "127.0.0.1:5001", scheme: "http", insecure: true, mirror: true},
		{host: "mirror.example", mirror: true},
		{host: "registry-1.docker.io"},
	}
	if len(eps) != len(want) {
		t.Fatalf("endpoints %+v", eps)
	}
	for i := range want {
		if eps[i] != want[i] {
			t.Errorf("endpoint %d = %+v, want %+v", i, eps[i], want[i])
		}
	}
	if eps, _ := endpointsFor(ctx, Config{Mirrors: []string{"http://m"}}, "quay.io"); len(eps) != 1 || eps[0].host != "quay.io" {
		t.Errorf("mirrors used for another registry: %+v", eps)
	}
	if _, err := endpointsFor(ctx, Config{Mirrors: []string{"ftp://m"}}, "docker.io"); err == nil {
		t.Error("a mirror with a bad scheme was accepted")
	}
}

func TestManifestMediaTypeAndContentRange(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		want     types.MediaType
	}{
		{"application/vnd.docker.distribution.manifest.v2+json", `{"schemaVersion":2}`, types.DockerManifestSchema2},
		{"application/json", `{"mediaType":"application/vnd.oci.image.index.v1+json"}`, types.OCIImageIndex},
		{"application/octet-stream", `{"schemaVersion":2,"manifests":[{}]}`, types.OCIImageIndex},
		{"", `{"schemaVersion":2,"config":{}}`, types.OCIManifestSchema1},
		{"application/vnd.oci.image.manifest.v1+json; charset=utf-8", `{}`, types.OCIManifestSchema1},
	} {
		if got := manifestMediaType(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("manifestMediaType(%q, %s) = %s, want %s", tc.ct, tc.body, got, tc.want)
		}
	}
	for h, want := range map[string]int64{"bytes 100-199/200": 100, "bytes 0-0/1": 0, "bytes */200": -1, "": -1} {
		got, ok := contentRangeStart(h)
		if (want < 0) == ok || (ok && got != want) {
			t.Errorf("contentRangeStart(%q) = %d %v", h, got, ok)
		}
	}
}

// Tickets are granted in the order they were reserved, whenever their
// holders get to wait on them; one given up passes its turn on.
func TestTicketsGrantInReserveOrder(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(1)
	first := l.Reserve()
	var tickets []*ticket
	for range 4 {
		tickets = append(tickets, l.Reserve())
	}
	tickets[1].Release() // gave up before its turn
	order := make(chan int, len(tickets))
	var wg sync.WaitGroup
	for i := len(tickets) - 1; i >= 0; i-- {
		if i == 1 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			waited := false
			if err := tickets[i].Wait(ctx, func() { waited = true }); err != nil {
				t.Error(err)
				return
			}
			if !waited {
				t.Errorf("ticket %d did not report waiting", i)
			}
			order <- i
			tickets[i].Release()
		}()
		time.Sleep(5 * time.Millisecond) // later tickets wait first
	}
	if err := first.Wait(ctx, func() { t.Error("first ticket waited") }); err != nil {
		t.Fatal(err)
	}
	first.Release()
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	if want := []int{0, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("granted in order %v, want %v", got, want)
	}
	first.Release() // a second release gives back nothing
	a, b := l.Reserve(), l.Reserve()
	if err := a.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.granted:
		t.Fatal("two slots granted under a limit of 1")
	default:
	}
}
