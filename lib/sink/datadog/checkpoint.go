package datadog

import (
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// A checkpoint line (seal --emit-checkpoints) is the log
//
//	{"ddsource":…,"ddtags":…,"hostname":…,"service":…,"message":"{\"checkpoint\":\"<note>\"}",
//	 "type":"checkpoint","checkpointSize":"300","origin":"…"}
//
// with the records' ddsource, hostname and service (so that a search or
// audit-fetch --host/--source for the shipment finds its checkpoints too)
// and no seq and no timestamp (Datadog stamps the arrival): "type" tells it
// from a record.
func appendCheckpointLog(dst, meta []byte, tags string, r *sink.Record) []byte {
	dst = append(dst, '{')
	dst = append(dst, meta...)
	if tags != "" {
		dst = append(dst, `"ddtags":`...)
		dst = httpsink.AppendJSONString(dst, tags)
		dst = append(dst, ',')
	}
	dst = append(dst, `"message":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	dst = append(dst, ',')
	dst = httpsink.AppendCheckpointFields(dst, r, true)
	return append(dst, '}')
}
