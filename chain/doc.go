// Package chain owns layers and images: it registers a layer from a tar
// stream in one pass (diffID, size, tar-split metadata, driver directory),
// computes ChainIDs, counts references, reassembles the exact original tar,
// creates/gets/lists/deletes images and collects garbage.
//
// It stores through cas and applies diffs through mount. It must not speak
// HTTP, talk to registries or run containers.
package chain
