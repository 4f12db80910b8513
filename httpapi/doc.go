// Package httpapi serves the Docker Engine API (on echo) and, in mirror
// mode, the registry /v2/ API. It decodes requests, streams responses and
// maps errors to HTTP status codes in one place.
//
// It holds no state of its own beyond connections: everything it answers
// comes from the pipeline packages.
package httpapi
