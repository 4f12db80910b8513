// Package chain owns layers and images: it registers a layer from a tar
// stream in one pass (diffID, size, tar-split metadata, driver directory),
// computes ChainIDs, counts references, reassembles the exact original tar,
// creates/gets/lists/deletes images and collects garbage.
//
// Layer gzip is inflated, and tar-split's crc64s computed, by Intel's ISA-L
// (libisal, through cgo): measured 2.2–2.6× and 17× faster than the Go
// code ARCHITECTURE.md lists, on the two costs that bound a cold pull.
// zstd stays with klauspost/compress.
//
// It stores through cas and applies diffs through mount. It must not speak
// HTTP, talk to registries or run containers.
package chain
