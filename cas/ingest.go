package cas

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// ErrDigestMismatch is returned (wrapped) when committed data does not hash
// to, or is not the size of, what the writer was told to expect.
var ErrDigestMismatch = fmt.Errorf("%w: digest or size mismatch", errdefs.ErrFailedPrecondition)

// checkpointEvery bounds how much a resumed ingest may have to fetch again
// after a crash: the hash state is saved this often, after the data it
// covers was handed to the kernel. That survives kill -9; after a power
// loss the data may be shorter than the state says, which the final digest
// check catches (the ingest is then discarded and fetched again).
const checkpointEvery = 1 << 20

// WriterOption tunes a Writer.
type WriterOption func(*writerConfig)

type writerConfig struct {
	expected     digest.Digest
	expectedSize int64
}

// WithExpected names the digest (and size, -1 when unknown) the content must
// have. With it, writers are keyed by the digest: a second writer of the same
// digest waits for the first and then sees the committed blob.
func WithExpected(dgst digest.Digest, size int64) WriterOption {
	return func(c *writerConfig) { c.expected, c.expectedSize = dgst, size }
}

// ingestState is saved beside the data so an ingest resumes where it was
// without hashing again what it already holds.
type ingestState struct {
	Ref       string        `json:"ref"`
	Expected  digest.Digest `json:"expected,omitempty"`
	Size      int64         `json:"size"`
	Offset    int64         `json:"offset"`
	HashState []byte        `json:"hashState"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// Writer writes one blob. Close keeps the partial data for a later resume;
// Commit verifies and publishes it; Discard drops it.
type Writer struct {
	blobs   *Blobs
	dir     string
	lock    *os.File
	data    *os.File
	buf     *bufio.Writer
	hash    hash.Hash
	state   ingestState
	offset  int64
	lastCkp int64
	done    bool
	// direct: writes skip buf, so a follower reads every byte written.
	direct bool
	// stateFile holds the checkpoint, rewritten in place; stateLen is the
	// length of the record it holds.
	stateFile *os.File
	stateLen  int
}

// ingestKey names the directory of an ingest. Refs come from callers and may
// hold any characters, so the directory is named by a digest of them.
func ingestKey(ref string, expected digest.Digest) string {
	if expected != "" {
		return "blob-" + expected.Encoded()
	}
	return "ref-" + digest.FromString(ref).Encoded()[:32]
}

// Writer opens (or resumes) the ingest for ref. When the expected blob is
// already committed it returns an error wrapping errdefs.ErrAlreadyExists.
// It blocks while another writer holds the same ingest, until ctx ends.
func (b *Blobs) Writer(ctx context.Context, ref string, opts ...WriterOption) (*Writer, error) {
	var cfg writerConfig
	cfg.expectedSize = -1
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.expected != "" {
		if err := validBlobDigest(cfg.expected); err != nil {
			return nil, err
		}
		if b.Has(ctx, cfg.expected) {
			return nil, fmt.Errorf("blob %s: %w", cfg.expected, errdefs.ErrAlreadyExists)
		}
	}
	dir := filepath.Join(b.ingestDir, ingestKey(ref, cfg.expected))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	lock, err := lockFile(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	// The holder we waited for may have committed what we wanted.
	if cfg.expected != "" && b.Has(ctx, cfg.expected) {
		unlockFile(lock)
		return nil, fmt.Errorf("blob %s: %w", cfg.expected, errdefs.ErrAlreadyExists)
	}
	w := &Writer{blobs: b, dir: dir, lock: lock, hash: sha256.New()}
	w.state = ingestState{Ref: ref, Expected: cfg.expected, Size: cfg.expectedSize}
	if err := w.resume(); err != nil {
		unlockFile(lock)
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	return w, nil
}

// resume restores the data file and hash to the last checkpoint. Bytes past
// the checkpoint are dropped: their hash was never saved.
func (w *Writer) resume() error {
	data, err := os.OpenFile(filepath.Join(w.dir, "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	w.data = data
	var saved ingestState
	raw, err := os.ReadFile(filepath.Join(w.dir, "state"))
	w.stateLen = len(raw)
	switch {
	case err == nil && json.Unmarshal(raw, &saved) == nil && saved.Expected == w.state.Expected:
		fi, err := data.Stat()
		if err != nil {
			return err
		}
		if fi.Size() >= saved.Offset && w.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved.HashState) == nil {
			w.offset = saved.Offset
		} else {
			w.hash.Reset()
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := data.Truncate(w.offset); err != nil {
		return err
	}
	if _, err := data.Seek(w.offset, 0); err != nil {
		return err
	}
	w.lastCkp = w.offset
	// Large writes (downloads) bypass the buffer; it gathers small ones.
	w.buf = bufio.NewWriterSize(data, 64<<10)
	return nil
}

// Written reads back what the ingest holds (the first Offset bytes), so a
// resumed download can feed a consumer what an earlier attempt wrote.
func (w *Writer) Written() (io.ReadCloser, error) {
	if err := w.buf.Flush(); err != nil {
		return nil, err
	}
	f, err := os.Open(w.data.Name())
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, 0, w.offset), f}, nil
}

// Follow flushes what is buffered and opens the ingest's data for reading
// while it is being written: from then on Write hands every byte to the file
// before it returns, so the reader finds the first Offset bytes there. The
// file stays readable after Commit or Discard; the caller closes it.
func (w *Writer) Follow() (*os.File, error) {
	if w.done {
		return nil, errors.New("ingest writer already closed")
	}
	if err := w.buf.Flush(); err != nil {
		return nil, err
	}
	f, err := os.Open(w.data.Name())
	if err != nil {
		return nil, err
	}
	w.direct = true
	return f, nil
}

// Offset is how many bytes the ingest holds: where a resumed download
// should continue (an HTTP Range start).
func (w *Writer) Offset() int64 { return w.offset }

// Digest is the digest of what has been written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.hash) }

func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("ingest writer already closed")
	}
	var n int
	var err error
	if w.direct {
		n, err = w.data.Write(p)
	} else {
		n, err = w.buf.Write(p)
	}
	w.hash.Write(p[:n])
	w.offset += int64(n)
	if err == nil && w.offset-w.lastCkp >= checkpointEvery {
		err = w.checkpoint()
	}
	return n, err
}

// checkpoint hands the data to the kernel, then saves the state, in that
// order, so the state never claims bytes the data file lacks.
func (w *Writer) checkpoint() error {
	if err := w.buf.Flush(); err != nil {
		return err
	}
	hs, err := w.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	w.state.Offset = w.offset
	w.state.HashState = hs
	w.state.UpdatedAt = time.Now().UTC()
	raw, _ := json.Marshal(w.state)
	// The record is rewritten in place, padded to cover the last one
	// (JSON allows the trailing spaces). A rename over the old file would
	// make ext4 flush the new one and wait for the old one's writeback, a
	// blocking call every MiB of a download. A write torn by a power loss
	// fails to parse (the ingest starts over) or fails the final digest
	// check, like data shorter than the state says.
	for len(raw) < w.stateLen {
		raw = append(raw, ' ')
	}
	if w.stateFile == nil {
		f, err := os.OpenFile(filepath.Join(w.dir, "state"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		w.stateFile = f
	}
	if _, err := w.stateFile.WriteAt(raw, 0); err != nil {
		return err
	}
	w.stateLen = len(raw)
	w.lastCkp = w.offset
	return nil
}

func (w *Writer) closeState() {
	if w.stateFile != nil {
		w.stateFile.Close()
		w.stateFile = nil
	}
}

// Commit verifies the content and publishes it as a blob. On a mismatch the
// partial data is discarded. When the blob already exists (another writer
// got there through a different ref) the ingest is dropped and the error
// wraps errdefs.ErrAlreadyExists.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return errors.New("ingest writer already closed")
	}
	if err := w.buf.Flush(); err != nil {
		w.Close()
		return fmt.Errorf("commit blob: %w", err)
	}
	got := w.Digest()
	if (w.state.Size >= 0 && w.offset != w.state.Size) || (w.state.Expected != "" && got != w.state.Expected) {
		w.Discard()
		return fmt.Errorf("commit blob: %w: expected %s (%d bytes), got %s (%d bytes)",
			ErrDigestMismatch, w.state.Expected, w.state.Size, got, w.offset)
	}
	target := w.blobs.Path(got)
	if _, err := os.Stat(target); err == nil {
		w.Discard()
		return fmt.Errorf("blob %s: %w", got, errdefs.ErrAlreadyExists)
	}
	if err := w.data.Sync(); err != nil {
		w.Close()
		return fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := w.data.Chmod(0o444); err != nil {
		w.Close()
		return fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), target); err != nil {
		w.Close()
		return fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := syncDir(w.blobs.blobDir); err != nil {
		w.Discard()
		return fmt.Errorf("commit blob %s: %w", got, err)
	}
	w.Discard()
	return nil
}

// Close keeps what was written for a later resume and releases the ingest.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.checkpoint()
	w.closeState()
	w.data.Close()
	unlockFile(w.lock)
	return err
}

// Discard drops the ingest and what it held.
func (w *Writer) Discard() {
	if w.done {
		return
	}
	w.done = true
	w.closeState()
	w.data.Close()
	os.RemoveAll(w.dir)
	unlockFile(w.lock)
}

// IngestInfo describes a partial ingest left on disk.
type IngestInfo struct {
	Ref       string
	Expected  digest.Digest
	Offset    int64
	UpdatedAt time.Time
}

// SweepIngests removes ingests not touched for longer than maxAge and not
// held by a live writer, and returns how many it removed.
func (b *Blobs) SweepIngests(ctx context.Context, maxAge time.Duration) (int, error) {
	entries, err := os.ReadDir(b.ingestDir)
	if err != nil {
		return 0, fmt.Errorf("sweep ingests: %w", err)
	}
	removed := 0
	for _, e := range entries {
		dir := filepath.Join(b.ingestDir, e.Name())
		lock, err := tryLockFile(filepath.Join(dir, "lock"))
		if err != nil {
			continue // held by a writer, or not an ingest we can judge
		}
		age := time.Duration(0)
		if fi, err := os.Stat(filepath.Join(dir, "state")); err == nil {
			age = time.Since(fi.ModTime())
		} else if fi, err := os.Stat(dir); err == nil {
			age = time.Since(fi.ModTime())
		}
		if age >= maxAge {
			if os.RemoveAll(dir) == nil {
				removed++
			}
		}
		unlockFile(lock)
	}
	return removed, nil
}

func lockFile(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

func tryLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func unlockFile(f *os.File) {
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}
