package cas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Store is the whole content-addressed store of one data root: blobs on
// disk and the metadata index in <root>/meta.
type Store struct {
	Root  string
	Blobs *Blobs
	Index *Index
}

// Open opens the store under a data root, creating what is missing.
func Open(ctx context.Context, root string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	blobs, err := OpenBlobs(root)
	if err != nil {
		return nil, err
	}
	ix, err := OpenIndex(ctx, filepath.Join(root, "meta"))
	if err != nil {
		return nil, err
	}
	return &Store{Root: root, Blobs: blobs, Index: ix}, nil
}

// TempDir is a directory on the store's filesystem for staging work that
// must later be renamed into place.
func (s *Store) TempDir() string { return filepath.Join(s.Root, "tmp") }

// Close closes the index.
func (s *Store) Close() error { return s.Index.Close() }
