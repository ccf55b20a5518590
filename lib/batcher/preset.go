package batcher

import (
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/sinks"
)

// Preset is a SIEM's default batch and its hard per-request limits (0:
// none), from its sink declaration (sink.Decl.Batch and Limits). The byte
// figures are of record lines before compression.
type Preset struct {
	Count     int
	Bytes     int64
	HardCount int
	HardBytes int64
	Limit     string // the hard limit in words, for the usage error
}

// NoSIEM is the preset without a SIEM.
var NoSIEM = Preset{Count: 500, Bytes: 800_000}

// PresetFor returns the preset of SIEM kind ("" is NoSIEM).
func PresetFor(kind string) (Preset, bool) {
	if kind == "" {
		return NoSIEM, true
	}
	d := sink.Lookup(sinks.All, kind)
	if d == nil {
		return Preset{}, false
	}
	return Preset{Count: d.Batch.Records, Bytes: d.Batch.Bytes,
		HardCount: d.Limits.Records, HardBytes: d.Limits.Bytes, Limit: d.Limits.Why}, true
}
