// Package depcheck holds the test that keeps imports flowing the way
// ARCHITECTURE.md draws them.
package depcheck
