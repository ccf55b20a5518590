//go:build !unix

package ndjson

import "time"

func cpuTime() time.Duration { return 0 }
