// Package cli owns the berth client (cobra commands talking HTTP to a
// daemon) and the berthd front end: dockerd-compatible flags, daemon.json
// merging and validation, reload on SIGHUP.
//
// It may import only httpapi's client-side types; it must not reach into
// the store.
package cli
