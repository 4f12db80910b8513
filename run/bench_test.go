package run

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// BenchmarkRunRemove is `docker run --rm --network none busybox true`
// without the HTTP layer: create, wait for removal, start, removed.
func BenchmarkRunRemove(b *testing.B) {
	for _, network := range []string{"none", "default"} {
		b.Run(network, func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := e.m.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}},
					HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: container.NetworkMode(network)}})
				if err != nil {
					b.Fatal(err)
				}
				removed, err := e.m.Wait(ctx, resp.ID, container.WaitConditionRemoved)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.m.Start(ctx, resp.ID); err != nil {
					b.Fatal(err)
				}
				select {
				case <-removed:
				case <-time.After(time.Minute):
					b.Fatal("not removed")
				}
			}
		})
	}
}

// BenchmarkList is GET /containers/json?all=1 with 100 containers.
func BenchmarkList(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := e.m.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.m.List(ctx, ListOptions{All: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
