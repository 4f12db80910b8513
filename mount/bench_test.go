package mount

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchLayer makes a layer tar of about size bytes: a fifth in 1 MiB files,
// the rest in files of 1-16 KiB spread over directories, like a base image.
func benchLayer(b *testing.B, seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{byte(seed)}).Read(data)
	var entries []te
	total := 0
	for i := 0; total < size/5; i++ {
		entries = append(entries, tfile(fmt.Sprintf("big/%d", i), "", content(data)))
		total += len(data)
	}
	for i := 0; total < size; i++ {
		if i%50 == 0 {
			entries = append(entries, tdir(fmt.Sprintf("d%d/", i/50)))
		}
		n := 1024 + rng.IntN(15*1024)
		entries = append(entries, tfile(fmt.Sprintf("d%d/f%d", i/50, i), "", content(data[:n]), mode(0o644)))
		total += n
	}
	return buildTar(b, entries...)
}

// BenchmarkApplyParallel registers five layers at once, as a pull does:
// extract concurrently, then one syncfs. "disk" is under $TMPDIR, "shm" on
// tmpfs, which shows the extractor's own cost without the disk's.
func BenchmarkApplyParallel(b *testing.B) {
	for _, where := range []string{"disk", "shm"} {
		b.Run(where, func(b *testing.B) {
			base := b.TempDir()
			if where == "shm" {
				dir, err := os.MkdirTemp("/dev/shm", "berth-bench-")
				if err != nil {
					b.Skip("no /dev/shm:", err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
				base = dir
			}
			f := factories[0]
			const layers = 5
			tars := make([][]byte, layers)
			var total int64
			for i := range tars {
				tars[i] = benchLayer(b, uint64(i), 40<<20)
				total += int64(len(tars[i]))
			}
			d, err := f.open(filepath.Join(base, "layers"))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetBytes(total)
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				var wg sync.WaitGroup
				errs := make([]error, layers)
				for i := range tars {
					id := fmt.Sprintf("b%d-%d", n, i)
					if err := d.Create(ctx, id, ""); err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						_, errs[i] = d.ApplyDiff(ctx, id, bytes.NewReader(tars[i]), ApplyOptions{})
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Sync(ctx, fmt.Sprintf("b%d-0", n)); err != nil {
					b.Fatal(err)
				}
			}
			// Layers are removed only at the end: on ext4 without a journal,
			// inodes freed in the last minutes make creating files slow
			// (ext4's recently_deleted scan), which would charge one
			// iteration for the cleanup of the previous one.
			b.StopTimer()
			removeAllLayers(b, d)
		})
	}
}
