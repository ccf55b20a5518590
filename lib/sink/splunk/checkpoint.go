package splunk

import (
	"bytes"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// CheckpointSuffix is added to the records' sourcetype for the checkpoint
// events (seal --emit-checkpoints): declaragent:audit:checkpoint by default.
// Each event is
//
//	{"host":…,"source":…,"sourcetype":"declaragent:audit:checkpoint","index":…,
//	 "event":"{\"checkpoint\":\"<note>\"}",
//	 "fields":{"type":"checkpoint","checkpointSize":"300","origin":"…"}}
//
// with no time (HEC stamps the arrival) and no fields.seq, so nothing that
// selects records selects it.
const CheckpointSuffix = ":checkpoint"

var sourcetypeKey = []byte(`"sourcetype":`)

// checkpointMeta returns meta with the sourcetype's value suffixed by
// CheckpointSuffix (meta always holds a sourcetype: New defaults it).
func checkpointMeta(meta []byte) []byte {
	i := bytes.Index(meta, sourcetypeKey)
	if i < 0 {
		return meta
	}
	j := i + len(sourcetypeKey) + 1 // past the opening quote
	for j < len(meta) && meta[j] != '"' {
		if meta[j] == '\\' {
			j++
		}
		j++
	}
	out := make([]byte, 0, len(meta)+len(CheckpointSuffix))
	out = append(out, meta[:j]...)
	out = append(out, CheckpointSuffix...)
	return append(out, meta[j:]...)
}

// appendCheckpointEvent appends the HEC event of a checkpoint line, after
// its opening '{' (appendRoutedEvent wrote it).
func appendCheckpointEvent(dst, meta []byte, index string, r *sink.Record) []byte {
	dst = append(dst, checkpointMeta(meta)...)
	if index != "" {
		dst = append(dst, `"index":`...)
		dst = httpsink.AppendJSONString(dst, index)
		dst = append(dst, ',')
	}
	dst = append(dst, `"event":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	dst = append(dst, `,"fields":{`...)
	dst = httpsink.AppendCheckpointFields(dst, r, true)
	return append(dst, "}}"...)
}
