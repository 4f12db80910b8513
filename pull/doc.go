// Package pull owns the client side of the registry protocol: name
// resolution, mirrors and insecure registries, platform choice, the
// daemon-wide transfer manager (concurrency limit, dedupe of a blob across
// pulls, retries with Range resume) and the Docker JSON progress stream.
//
// A pull resolves the manifest (mirrors first for docker.io), computes every
// ChainID from the config, and for each missing layer watches one transfer
// per blob digest. The transfer writes the compressed blob into a cas ingest
// keyed by the digest (so a cut download resumes, even after a restart) at
// network speed; the layer's chain.Stage reads the same bytes back from the
// ingest as they land, so layers extract during download and in parallel,
// and a slow extraction never holds up a download. Layers are committed in
// chain order, with their distribution records, only once every layer is
// verified and applied; then the image and its references are created. A
// failed pull leaves no image and no layer record.
//
// It writes layers and images only through chain and cas; it must not serve
// HTTP.
package pull
