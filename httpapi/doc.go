// Package httpapi serves the Docker Engine API (on echo) and, in mirror
// mode, the registry /v2/ API. It decodes requests, streams responses and
// maps errors to HTTP status codes in one place (StatusFromError).
//
// It owns the transport: listeners (unix, tcp+TLS, systemd fd), routing
// with and without the /v{N} prefix, version negotiation, hijacked
// connections and graceful shutdown. Besides connections, its only state
// is the daemon-wide event bus (Events), an in-memory ring of recent
// events that pipelines publish to through a one-method interface of
// their own; everything else it answers comes from the pipeline packages
// through the small interfaces in Backends.
package httpapi
