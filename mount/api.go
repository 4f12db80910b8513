package mount

import (
	"context"
	"io"
)

// Driver manages layer directories under <data-root>/layers. A layer is
// identified by its cache-id (random hex chosen by the caller); parent is the
// cache-id of the layer below it, "" for a base layer.
//
// Contract relied on by package chain:
//   - Create makes the directory of a new, empty layer. For overlay2 this
//     needs only the parent's directory to exist (not its content), so a
//     caller may Create a whole chain in order and then ApplyDiff all of its
//     layers concurrently when IndependentLayers reports true.
//   - ApplyDiff reads an uncompressed layer tar (Docker/AUFS whiteout format:
//     ".wh.<name>", ".wh..wh..opq") from r and writes it into the layer. It
//     does not read past the tar's end-of-archive marker; the caller drains
//     the rest. Any breakout attempt fails with an error naming the entry.
//   - DiffPath is where the layer's own files can be read back by the name
//     they had in the tar (used to reassemble the tar with tar-split).
//   - If ApplyDiff fails, the layer's DiffPath is left empty (nothing
//     half-applied remains); for vfs this also drops the copy of the
//     parent, so the caller should Remove the layer and start over.
//   - Remove deletes everything Create and ApplyDiff made, including the
//     short link, and unmounts the layer if it is still mounted; it is
//     idempotent.
type Driver interface {
	Name() string
	// IndependentLayers reports whether a layer's directory depends only on
	// its own tar (overlay2: true; vfs: false, it starts as a copy of its
	// parent).
	IndependentLayers() bool
	Create(ctx context.Context, id, parent string) error
	ApplyDiff(ctx context.Context, id string, r io.Reader, opts ApplyOptions) (ApplyStats, error)
	DiffPath(id string) string
	Exists(id string) bool
	Remove(ctx context.Context, id string) error
	// List returns the ids of every layer directory on disk (for startup
	// sweeps of directories that have no record).
	List(ctx context.Context) ([]string, error)
	// Mount mounts the layer id with all its parents and returns the merged
	// root path; Unmount undoes it. Calls are reference counted per id.
	Mount(ctx context.Context, id string) (string, error)
	Unmount(ctx context.Context, id string) error
	// Sync flushes the filesystem holding the layer to stable storage
	// (syncfs). ApplyDiff never fsyncs file by file; the caller syncs once
	// before it records the layer as complete.
	Sync(ctx context.Context, id string) error
}

// ApplyOptions tunes one ApplyDiff.
type ApplyOptions struct {
	// AllowDeviceNodes permits character and block device entries (other
	// than whiteouts). Off, such an entry is refused.
	AllowDeviceNodes bool
}

// ApplyStats tells what ApplyDiff wrote.
type ApplyStats struct {
	// Size is the sum of the sizes of regular files in the tar, which is
	// what Docker reports as a layer's size.
	Size int64
	// Entries counts tar headers processed.
	Entries int
}
