// Package build turns a Dockerfile and a context into an image: parse,
// instructions, the build cache, RUN through package run, COPY/ADD from the
// context.
//
// It must not speak HTTP; it writes images only through chain.
package build
