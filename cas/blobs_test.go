package cas

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

func newBlobs(t *testing.T) *Blobs {
	t.Helper()
	b, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriterCommitVerifiesAndPublishesReadOnly(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 3<<20)
	dgst := digest.FromBytes(data)
	w, err := b.Writer(ctx, "layer-1", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadAll(ctx, dgst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: err=%v equal=%v", err, bytes.Equal(got, data))
	}
	fi, err := os.Stat(b.Path(dgst))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("committed blob is writable: %v", fi.Mode())
	}
	entries, _ := os.ReadDir(b.ingestDir)
	if len(entries) != 0 {
		t.Fatalf("ingest left behind: %v", entries)
	}
	if _, err := b.Writer(ctx, "again", WithExpected(dgst, int64(len(data)))); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("writer for a committed digest: %v, want already exists", err)
	}
}

func TestWriterRejectsWrongDigestAndSize(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := []byte("hello world")
	for name, opt := range map[string]WriterOption{
		"digest": WithExpected(digest.FromString("other"), int64(len(data))),
		"size":   WithExpected(digest.FromBytes(data), int64(len(data)+1)),
	} {
		t.Run(name, func(t *testing.T) {
			w, err := b.Writer(ctx, "bad-"+name, opt)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			if err := w.Commit(ctx); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("commit: %v, want digest mismatch", err)
			}
			if b.Has(ctx, digest.FromBytes(data)) {
				t.Fatal("mismatched content was published")
			}
			entries, _ := os.ReadDir(b.ingestDir)
			if len(entries) != 0 {
				t.Fatalf("mismatched ingest kept: %v", entries)
			}
		})
	}
}

func TestWriterResumesAtOffsetAfterClose(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 5<<20)
	dgst := digest.FromBytes(data)
	w, err := b.Writer(ctx, "resume", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:2<<20])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A second store on the same root stands for a restarted daemon.
	b2, err := OpenBlobs(b.root)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b2.Writer(ctx, "resume", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if w2.Offset() != 2<<20 {
		t.Fatalf("resumed at %d, want %d", w2.Offset(), 2<<20)
	}
	w2.Write(data[w2.Offset():])
	if err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !b2.Has(ctx, dgst) {
		t.Fatal("blob missing after resumed commit")
	}
}

func TestWriterAfterCrashResumesAtLastCheckpoint(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, checkpointEvery+checkpointEvery/2)
	dgst := digest.FromBytes(data)
	w, err := b.Writer(ctx, "crash", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 64 << 10 {
		w.Write(data[off:min(off+64<<10, len(data))])
	}
	// Crash: the process dies without Close. Flushed-but-unsaved bytes
	// after the checkpoint must be dropped, not trusted.
	w.buf.Flush()
	w.data.Close()
	unlockFile(w.lock)

	w2, err := b.Writer(ctx, "crash", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if w2.Offset() != checkpointEvery {
		t.Fatalf("resumed at %d, want the checkpoint %d", w2.Offset(), checkpointEvery)
	}
	w2.Write(data[w2.Offset():])
	if err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTwoWritersOfOneDigestOneWritesOtherSeesIt(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 1<<20)
	dgst := digest.FromBytes(data)
	first, err := b.Writer(ctx, "a", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var secondErr error
	var waited time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		_, secondErr = b.Writer(ctx, "b", WithExpected(dgst, int64(len(data))))
		waited = time.Since(start)
	}()
	time.Sleep(100 * time.Millisecond)
	first.Write(data)
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(secondErr, errdefs.ErrAlreadyExists) {
		t.Fatalf("second writer: %v, want already exists", secondErr)
	}
	if waited < 90*time.Millisecond {
		t.Fatalf("second writer did not wait (%v)", waited)
	}
}

func TestWriterWaitEndsWithContext(t *testing.T) {
	b := newBlobs(t)
	dgst := digest.FromString("x")
	w, err := b.Writer(context.Background(), "x", WithExpected(dgst, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Discard()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Writer(ctx, "x", WithExpected(dgst, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked writer: %v, want deadline exceeded", err)
	}
}

func TestPutAndDeleteAndWalk(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	d1, err := b.Put(ctx, []byte(`{"a":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, []byte(`{"a":1}`), d1); err != nil {
		t.Fatalf("put twice: %v", err)
	}
	if _, err := b.Put(ctx, []byte(`x`), d1); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("put with wrong digest: %v", err)
	}
	var seen []digest.Digest
	b.Walk(ctx, func(d digest.Digest, _ int64) error { seen = append(seen, d); return nil })
	if len(seen) != 1 || seen[0] != d1 {
		t.Fatalf("walk: %v", seen)
	}
	if err := b.Delete(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, d1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("stat deleted: %v", err)
	}
	if _, err := b.Open(ctx, "sha256:zz"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("open of a bad digest: %v", err)
	}
}

func TestSweepIngestsRemovesOnlyOldUnheld(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	held, err := b.Writer(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Discard()
	old, err := b.Writer(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	old.Write([]byte("partial"))
	old.Close()
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(old.dir, "state"), past, past)
	fresh, _ := b.Writer(ctx, "fresh")
	fresh.Write([]byte("partial"))
	fresh.Close()

	n, err := b.SweepIngests(ctx, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	if _, err := os.Stat(old.dir); !os.IsNotExist(err) {
		t.Fatal("old ingest kept")
	}
	for _, d := range []string{held.dir, fresh.dir} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s removed: %v", d, err)
		}
	}
}

func TestWriterWrittenReadsBackThePartialData(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 3<<20)
	dgst := digest.FromBytes(data)
	w, _ := b.Writer(ctx, "partial", WithExpected(dgst, int64(len(data))))
	w.Write(data[:1<<20+17])
	w.Close()
	w, err := b.Writer(ctx, "partial", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Discard()
	r, err := w.Written()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data[:w.Offset()]) || w.Offset() != 1<<20+17 {
		t.Fatalf("read back %d bytes (offset %d)", len(got), w.Offset())
	}
}
