// Package run owns containers: records, the OCI spec built from an image
// config and a host config, the runtime invoked through a per-container
// shim, the lifecycle, logs, exec, attach, restart policies and volumes.
//
// It must not speak HTTP; images come from chain, filesystems from mount,
// network namespaces from netns.
//
// Process model: a Manager (in berthd) keeps one record per container in
// the metadata index and a copy-on-write snapshot of it in memory, so
// reads (List, Inspect) never wait behind an operation. Starting a
// container mounts its layer, pins a network namespace and writes the OCI
// bundle to <ExecRoot>/<id>/ while a shim (package shim: the small
// berth-shim binary, or berthd in shim mode) gets ready for it in its own
// session, usually a spare started ahead of time. The shim runs the
// runtime (`runc run --detach`), becomes the container's reaper as a
// child subreaper, owns its stdio (json-file log, attach streams), and
// writes the exit to <ExecRoot>/<id>/exit; berthd talks to it over
// <ExecRoot>/<id>/shim.sock with one JSON request line per connection
// (start, wait, state, kill, attach, stdin).
//
// The shim is the source of truth for a run: a start is recorded in the
// background, and a restarted berthd finds a running container's shim on
// its socket, or its exit in the file, whatever the record says. An exit
// is recorded before the bundle goes; an --rm container is gone for
// callers as soon as it exits, its record deleted before its files.
package run
