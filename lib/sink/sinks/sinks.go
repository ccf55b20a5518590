// Package sinks is the registry of sink kinds: one line per sink. The
// order is the order of --kind values in messages and of the doc tables.
package sinks

import (
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/datadog"
	"github.com/auditpipe/auditpipe/lib/sink/elastic"
	"github.com/auditpipe/auditpipe/lib/sink/file"
	"github.com/auditpipe/auditpipe/lib/sink/kafka"
	"github.com/auditpipe/auditpipe/lib/sink/splunk"
)

// All are the sink kinds audit-ship ships to and audit-batch has presets for.
var All = []*sink.Decl{
	splunk.Decl,
	elastic.Decl,
	datadog.Decl,
	file.Decl,
	kafka.Decl,
}
