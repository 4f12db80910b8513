package shim

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkLaunch is what a container start waits for before it can ask
// its shim to run the container: a fresh exec, or a spare told its
// bundle, until the shim answers a first request.
func BenchmarkLaunch(b *testing.B) {
	// The real shim binary: the test binary is several times its size.
	bin := filepath.Join(b.TempDir(), "berth-shim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/berth-shim").CombinedOutput(); err != nil {
		b.Fatalf("build berth-shim: %v: %s", err, out)
	}
	for _, spare := range []bool{false, true} {
		b.Run(fmt.Sprintf("spare=%v", spare), func(b *testing.B) {
			e := newTestEnv(b, spare)
			e.l = NewLauncher([]string{bin}, e.dir, spare)
			defer e.l.Close()
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bundle := e.bundle(fmt.Sprintf("b%d", i), "true\n", nil)
				if spare {
					e.l.Refill()
					waitSpare(b, e.l)
				}
				b.StartTimer()
				p, err := e.l.Launch(ctx, bundle)
				if err != nil {
					b.Fatal(err)
				}
				w, err := p.Open(ctx, Request{Op: OpWait})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				w.Close()
				p.Kill()
				b.StartTimer()
			}
		})
	}
}
