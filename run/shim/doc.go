// Package shim is the per-container shim and the protocol berthd speaks
// with it. The shim runs the OCI runtime (`runc run --detach`), becomes
// the container's reaper as a child subreaper, owns its stdio (json-file
// log, attach streams, stdin) and records the exit in <bundle>/exit, so a
// container outlives the berthd that started it.
//
// The shim is its own small binary (cmd/berth-shim) or berthd in shim
// mode; both call Main. Starting a process is much of a container start's
// cost on a small machine, so this package imports nothing but the
// standard library and golang.org/x/sys, and not even package net (its
// cgo resolver would make the binary dynamically linked: see sock.go).
// Keep it that way; TestShimImportsStayLean checks.
//
// Protocol: berthd connects to <bundle>/shim.sock, sends one JSON Request
// line and reads one JSON Response line; "attach", "stdin" and "exec" then
// turn the connection into a byte stream. With a terminal (Config.Terminal,
// or an exec's) the shim holds the pty master it receives from the runtime
// over the console socket, and "resize" sets its window size. A Launcher starts shims and keeps one
// idle spare that only waits for its bundle, so a start does not pay for
// an exec.
//
// It must not know about records, images or HTTP: that is package run.
package shim
