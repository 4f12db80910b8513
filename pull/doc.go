// Package pull owns the client side of the registry protocol: name
// resolution, mirrors and insecure registries, platform choice, the
// daemon-wide transfer manager (concurrency limit, dedupe of a blob across
// pulls, retries with Range resume) and the Docker JSON progress stream.
//
// It writes layers and images only through chain and cas; it must not serve
// HTTP.
package pull
