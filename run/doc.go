// Package run owns containers: records, the OCI spec built from an image
// config and a host config, the runtime invoked through a per-container
// shim, the lifecycle, logs, exec, attach, restart policies and volumes.
//
// It must not speak HTTP; images come from chain, filesystems from mount,
// network namespaces from netns.
package run
