package cas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Blobs is the blob half of the store: <root>/blobs/sha256/<hex>, written
// through resumable ingests under <root>/ingest.
type Blobs struct {
	root      string
	blobDir   string
	ingestDir string
}

// OpenBlobs prepares the blob directories under a data root.
func OpenBlobs(root string) (*Blobs, error) {
	b := &Blobs{
		root:      root,
		blobDir:   filepath.Join(root, "blobs", "sha256"),
		ingestDir: filepath.Join(root, "ingest"),
	}
	for _, d := range []string{b.blobDir, b.ingestDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
	}
	return b, nil
}

// Path is where a committed blob lives. It does not check existence.
func (b *Blobs) Path(dgst digest.Digest) string {
	return filepath.Join(b.blobDir, dgst.Encoded())
}

func validBlobDigest(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("blob %q: %w: %w", dgst, errdefs.ErrInvalidArgument, err)
	}
	if dgst.Algorithm() != digest.SHA256 {
		return fmt.Errorf("blob %s: %w: only sha256 is supported", dgst, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Stat returns the size of a committed blob.
func (b *Blobs) Stat(ctx context.Context, dgst digest.Digest) (int64, error) {
	if err := validBlobDigest(dgst); err != nil {
		return 0, err
	}
	fi, err := os.Stat(b.Path(dgst))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
		}
		return 0, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return fi.Size(), nil
}

// Has reports whether a blob is committed.
func (b *Blobs) Has(ctx context.Context, dgst digest.Digest) bool {
	_, err := b.Stat(ctx, dgst)
	return err == nil
}

// Open opens a committed blob for reading; the file supports ReadAt and Seek.
func (b *Blobs) Open(ctx context.Context, dgst digest.Digest) (*os.File, error) {
	if err := validBlobDigest(dgst); err != nil {
		return nil, err
	}
	f, err := os.Open(b.Path(dgst))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open blob %s: %w", dgst, err)
	}
	return f, nil
}

// ReadAll returns a committed blob's bytes (for configs and manifests).
func (b *Blobs) ReadAll(ctx context.Context, dgst digest.Digest) ([]byte, error) {
	f, err := b.Open(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Put stores small in-memory content (configs, manifests) as a blob. The
// digest is computed; when expected is not empty it must match.
func (b *Blobs) Put(ctx context.Context, data []byte, expected digest.Digest) (digest.Digest, error) {
	dgst := digest.FromBytes(data)
	if expected != "" && expected != dgst {
		return "", fmt.Errorf("put blob: %w: expected %s, got %s", ErrDigestMismatch, expected, dgst)
	}
	w, err := b.Writer(ctx, "put-"+dgst.Encoded(), WithExpected(dgst, int64(len(data))))
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return dgst, nil
	}
	if err != nil {
		return "", err
	}
	if _, err := w.Write(data); err != nil {
		w.Discard()
		return "", err
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return "", err
	}
	return dgst, nil
}

// Delete removes a committed blob; a missing blob is not an error.
func (b *Blobs) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := validBlobDigest(dgst); err != nil {
		return err
	}
	if err := os.Remove(b.Path(dgst)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", dgst, err)
	}
	return nil
}

// Walk calls fn for every committed blob.
func (b *Blobs) Walk(ctx context.Context, fn func(dgst digest.Digest, size int64) error) error {
	entries, err := os.ReadDir(b.blobDir)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dgst := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if dgst.Validate() != nil {
			continue // a temp file of a commit in progress
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(dgst, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes a rename or unlink inside dir durable.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}
