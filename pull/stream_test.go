package pull

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// growingFile is an ingest data file being written, and a read-only handle
// on it like cas.Writer.Follow returns.
func growingFile(t *testing.T, name string) (w, r *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

func readAllAsync(r io.Reader) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(r)
		if err != nil {
			b = append(b, []byte("ERR:"+err.Error())...)
		}
		out <- b
	}()
	return out
}

// Readers get the bytes as they are written, wait while there are no new
// ones, and see the end only when the blob is finished.
func TestStreamReadersFollowTheDownload(t *testing.T) {
	ctx := context.Background()
	s := newBlobStream()
	early := s.reader(ctx) // joins before the file exists
	w, r := growingFile(t, "data")
	s.setFile(r, 0)
	want := bytes.Repeat([]byte("0123456789"), 50000)

	got := readAllAsync(early)
	var lateGot <-chan []byte
	for off := 0; off < len(want); off += 64 << 10 {
		end := min(off+64<<10, len(want))
		if _, err := w.Write(want[off:end]); err != nil {
			t.Fatal(err)
		}
		s.advance(int64(end))
		if off == 0 {
			// A reader joining mid-download starts from the first byte.
			late := s.reader(ctx)
			defer late.Close()
			lateGot = readAllAsync(late)
		}
	}
	select {
	case b := <-got:
		t.Fatalf("reader ended before the stream was finished: %d bytes", len(b))
	case <-time.After(50 * time.Millisecond):
	}
	s.finish(nil)
	for _, c := range []<-chan []byte{got, lateGot} {
		if b := <-c; !bytes.Equal(b, want) {
			t.Fatalf("got %d bytes (%.40q), want %d", len(b), b[max(0, len(b)-40):], len(want))
		}
	}
	early.Close()
}

// A failed download fails its readers at once, even those with bytes
// left to read.
func TestStreamFailureReachesReaders(t *testing.T) {
	ctx := context.Background()
	s := newBlobStream()
	w, r := growingFile(t, "data")
	s.setFile(r, 0)
	w.Write(make([]byte, 1000))
	s.advance(1000)
	rd := s.reader(ctx)
	defer rd.Close()
	if _, err := rd.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("digest mismatch")
	s.finish(boom)
	s.finish(nil) // only the first result counts
	if _, err := rd.Read(make([]byte, 10)); !errors.Is(err, boom) {
		t.Fatalf("read after failure: %v", err)
	}
}

// A reader waiting for bytes gives up when its context ends.
func TestStreamReaderWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newBlobStream()
	_, r := growingFile(t, "data")
	s.setFile(r, 0)
	rd := s.reader(ctx)
	defer rd.Close()
	errc := make(chan error, 1)
	go func() { _, err := rd.Read(make([]byte, 10)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not end with its context")
	}
}

// When the download restarts from zero into a new file, readers go on
// from where they were once the new file gets there, and the old file
// stays readable for whoever still reads it.
func TestStreamRestartFromZero(t *testing.T) {
	ctx := context.Background()
	s := newBlobStream()
	want := bytes.Repeat([]byte("abcdefgh"), 4096)
	w1, r1 := growingFile(t, "first")
	s.setFile(r1, 0)
	w1.Write(want[:10000])
	s.advance(10000)
	rd := s.reader(ctx)
	defer rd.Close()
	head := make([]byte, 8000)
	if _, err := io.ReadFull(rd, head); err != nil {
		t.Fatal(err)
	}
	w2, r2 := growingFile(t, "second")
	s.setFile(r2, 0)
	got := readAllAsync(rd)
	w2.Write(want[:5000])
	s.advance(5000) // still behind the reader
	w2.Write(want[5000:])
	s.advance(int64(len(want)))
	s.finish(nil)
	if b := append(head, <-got...); !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes, not the blob's %d", len(b), len(want))
	}
}

// The files are closed with the last reference, and a released stream
// hands out no more readers.
func TestStreamClosesFilesWithLastReference(t *testing.T) {
	ctx := context.Background()
	s := newBlobStream()
	_, r := growingFile(t, "data")
	s.setFile(r, 0)
	rd := s.reader(ctx)
	s.finish(nil)
	s.release() // the transfer's
	if _, err := r.Stat(); err != nil {
		t.Fatalf("file closed while a reader holds the stream: %v", err)
	}
	rd.Close()
	rd.Close()
	if _, err := r.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file still open after the last reference: %v", err)
	}
	if s.reader(ctx) != nil {
		t.Fatal("released stream handed out a reader")
	}
}
