package elastic

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// A checkpoint line (seal --emit-checkpoints) is the document
//
//	{"@timestamp":"<now>","type":"checkpoint","checkpointSize":300,"origin":"…","message":"{\"checkpoint\":\"<note>\"}"}
//
// in the records' index, under the _id "checkpoint-" + the SHA-256 of the
// note: sent again it is a 409 (Duplicate), and a cosigned note, another
// note, is another document. It has no seq; its @timestamp is when it was
// encoded (a data stream requires one; the note itself has no time),
// whatever --doc-shape and --id-field say.

// checkpointID returns the _id of a checkpoint record.
func checkpointID(r *sink.Record, buf []byte) []byte {
	sum := sha256.Sum256(r.Checkpoint)
	buf = append(buf[:0], "checkpoint-"...)
	return hex.AppendEncode(buf, sum[:])
}

// appendCheckpointDoc appends the document of a checkpoint record, and its "\n".
func appendCheckpointDoc(dst []byte, r *sink.Record) []byte {
	dst = append(dst, `{"@timestamp":"`...)
	dst = time.Now().UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `",`...)
	dst = httpsink.AppendCheckpointFields(dst, r, false)
	dst = append(dst, `,"message":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	return append(dst, "}\n"...)
}
