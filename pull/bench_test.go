package pull_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"

	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/pull"
)

// BenchmarkColdPullBenchImage pulls the bench image of BENCH.md from
// Debian's docker-registry on loopback into an empty data root each
// iteration. BERTH_BENCH_SCALE (default 1) scales the image. Page caches
// are not dropped here; `make bench` does that around its own runs.
func BenchmarkColdPullBenchImage(b *testing.B) {
	scale := 1.0
	if s := os.Getenv("BERTH_BENCH_SCALE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatal(err)
		}
		scale = v
	}
	ctx := context.Background()
	img, err := fixtures.BenchImageScaled(ctx, scale)
	if err != nil {
		b.Fatal(err)
	}
	dr, err := fixtures.StartDockerRegistry(b)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := dr.Push(ctx, "bench/image", "latest", img); err != nil {
		b.Fatal(err)
	}
	size := int64(0)
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		e := openEnv(b, b.TempDir(), testDriver(b), pull.Config{}, pull.WithLogger(slog.New(slog.DiscardHandler)))
		b.StartTimer()
		if _, err := e.puller.Pull(ctx, dr.Host+"/bench/image", pull.Options{}, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		e.close()
		b.StartTimer()
	}
}
