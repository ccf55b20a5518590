//go:build !amd64 || purego

package jsonstr

// useBlocks is false: there is no vector kernel on this platform (or with
// the purego build tag), Append is the word loop alone.
var useBlocks = false

// appendBlocks does nothing here: see block_amd64.go.
func appendBlocks(out []byte, j int, b []byte, i int) (int, int) { return i, j }
