// Package cas owns the content-addressed store: blobs on disk by digest
// (resumable ingest with saved hash state, verification, atomic commit,
// read-only after commit) and the badger metadata index with its typed maps
// named as in Docker's layout: imagedb, layerdb, distribution, refs and
// containers.
//
// It must not know what a layer, an image or a container means beyond the
// records it stores: it imports no other berth package.
package cas
