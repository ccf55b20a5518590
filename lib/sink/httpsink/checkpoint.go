package httpsink

import (
	"bytes"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// CheckpointType is the "type" field of every checkpoint event (issue 16
// item 1; docs/siems/*.md): what audit-fetch --checkpoints selects.
const CheckpointType = "checkpoint"

// CheckpointOrigin returns the origin of a checkpoint record's note (its
// first line).
func CheckpointOrigin(r *sink.Record) []byte {
	o, _, _ := bytes.Cut(r.Checkpoint, []byte("\n"))
	return o
}

// AppendCheckpointFields appends `"type":"checkpoint","checkpointSize":<N>,"origin":"…"`
// (the size quoted when quoted is set: Splunk's indexed fields are
// strings), the searchable part of a checkpoint event; the evidence is
// the checkpoint line itself, in the event's message.
func AppendCheckpointFields(dst []byte, r *sink.Record, quoted bool) []byte {
	dst = append(dst, `"type":"`+CheckpointType+`","checkpointSize":`...)
	if quoted {
		dst = append(dst, '"')
	}
	dst = strconv.AppendInt(dst, r.Seq, 10)
	if quoted {
		dst = append(dst, '"')
	}
	dst = append(dst, `,"origin":`...)
	return AppendJSONString(dst, CheckpointOrigin(r))
}
