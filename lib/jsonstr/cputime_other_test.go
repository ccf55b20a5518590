//go:build !linux

package jsonstr

import "time"

// threadCPU is not measured here.
func threadCPU() time.Duration { return 0 }
