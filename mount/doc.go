// Package mount owns the graph drivers: overlay2 (diff/link/lower/work/merged,
// l/ short links, -init layers are just ids ending in "-init") and the vfs
// fallback. It applies a layer tar into a driver directory with
// overlay-format whiteouts (or, for vfs, whiteouts as deletions), refusing
// every tar breakout, and mounts and unmounts read-write layers.
//
// It must not keep metadata records (that is cas) nor know about images: it
// imports no other berth package.
package mount
