package cas

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The checkpoint is rewritten in place; a record shorter than the one
// before it is padded, so what a resume reads always parses.
func TestWriterCheckpointRewrittenInPlace(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 3*checkpointEvery+100)
	dgst := digest.FromBytes(data)
	w, err := b.Writer(ctx, "inplace", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:2*checkpointEvery+10])
	state := filepath.Join(w.dir, "state")
	before, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	// A longer record than the next one will be, as an earlier checkpoint
	// with a longer timestamp would leave.
	w.stateLen += 40
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("checkpoint replaced the state file instead of rewriting it")
	}
	raw, _ := os.ReadFile(state)
	if !bytes.HasSuffix(raw, []byte("  ")) {
		t.Fatalf("shorter record not padded: %q", raw)
	}

	w, err = b.Writer(ctx, "inplace", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 2*checkpointEvery+10 {
		t.Fatalf("resumed at %d, want %d", w.Offset(), 2*checkpointEvery+10)
	}
	w.Write(data[w.Offset():])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// A follower reads every byte a Write has returned for, and keeps reading
// after the blob is committed.
func TestWriterFollowSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	b := newBlobs(t)
	data := randomBytes(t, 2*checkpointEvery+333)
	dgst := digest.FromBytes(data)
	w, err := b.Writer(ctx, "follow", WithExpected(dgst, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:100]) // buffered before Follow: flushed by it
	f, err := w.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 100; off < len(data); off += 7777 {
		end := min(off+7777, len(data))
		w.Write(data[off:end])
		got := make([]byte, end)
		if _, err := f.ReadAt(got, 0); err != nil {
			t.Fatalf("read back %d bytes: %v", end, err)
		}
		if !bytes.Equal(got, data[:end]) {
			t.Fatalf("read back differs at %d bytes", end)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after commit: %d bytes, %v", len(got), err)
	}
}
