//go:build !linux

package ndjson

import "os"

// SetPipeSize is a no-op on this system: only Linux can resize pipes.
func SetPipeSize(f *os.File, size int) {}
