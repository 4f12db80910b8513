// Package push owns the upload side of the registry protocol: blob existence
// checks, cross-repo mounts, recompression of layers we no longer hold
// compressed, manifest put and progress.
//
// It reads layers and images only through chain and cas.
package push
