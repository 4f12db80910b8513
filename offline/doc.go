// Package offline owns save/load (docker-archive and OCI image layout) and
// import/export of container filesystems.
//
// It writes and reads images only through chain and cas.
package offline
