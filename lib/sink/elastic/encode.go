package elastic

import (
	"strconv"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: for each record
// an action line and a document line, each ending in "\n":
//
//	{"create":{"_index":"<index>","_id":"<id>"}}
//	{"@timestamp":"…","seq":42,"tenantId":"…","kind":"…","recordHash":"…","prevHash":"…"[,"chain":"…"],"message":"<line>"}
//
// Every string is escaped by appendString, so neither the index nor the id
// nor any record byte can end a line or a JSON string early.

// appendActionPrefix returns `{"create":{"_index":"<index>","_id":`.
func appendActionPrefix(dst []byte, index string) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = httpsink.AppendJSONString(dst, index)
	return append(dst, `,"_id":`...)
}

// appendAction appends the action line for a document with id, and its "\n".
func appendAction(dst, prefix, id []byte) []byte {
	dst = append(dst, prefix...)
	dst = httpsink.AppendJSONString(dst, id)
	return append(dst, "}}\n"...)
}

// maxTimestampMS is the last millisecond of year 9999: RFC 3339 has four
// digits for the year.
const maxTimestampMS = 253402300799999

// appendDoc appends the "message"-shaped document for r, and its "\n".
func appendDoc(dst []byte, r *sink.Record) []byte {
	dst = append(dst, '{')
	if r.TS >= 0 && r.TS <= maxTimestampMS {
		dst = append(dst, `"@timestamp":"`...)
		dst = time.UnixMilli(r.TS).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = httpsink.AppendChainFields(dst, r)
	dst = append(dst, `,"message":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	return append(dst, "}\n"...)
}

// docID returns the _id of r under idField ("" if r has none).
func docID(idField string, r *sink.Record, buf []byte) []byte {
	if idField == IDSeq {
		if r.Chain != "" { // seqs repeat across the chains of a fleet: <chain>:<seq>
			buf = append(append(buf[:0], r.Chain...), ':')
			return strconv.AppendInt(buf, r.Seq, 10)
		}
		return strconv.AppendInt(buf[:0], r.Seq, 10)
	}
	return append(buf[:0], r.Hash...)
}

// appendBulk appends the bulk body for records[i] for every i in sent.
// With indexFor, each action line names the record's own index, and prefix
// is not used.
func appendBulk(dst, prefix []byte, indexFor func(*sink.Record) string, shape, idField string, records []sink.Record, sent []int) []byte {
	var idBuf [64]byte
	for _, i := range sent {
		r := &records[i]
		id := docID(idField, r, idBuf[:0])
		if indexFor != nil {
			dst = appendActionPrefix(dst, indexFor(r))
			dst = httpsink.AppendJSONString(dst, id)
			dst = append(dst, "}}\n"...)
		} else {
			dst = appendAction(dst, prefix, id)
		}
		if shape == ShapeLine {
			dst = append(dst, r.Line...)
			dst = append(dst, '\n')
		} else {
			dst = appendDoc(dst, r)
		}
	}
	return dst
}

// encode builds the request body for records[i], i in sent.
func (s *Sink) encode(records []sink.Record, sent []int) (httpsink.Body, error) {
	size := 0
	for _, i := range sent {
		size += len(records[i].Line) + len(s.action) + 320
	}
	return httpsink.Encode(s.cfg.Gzip, size, len(sent), func(dst []byte, k int) []byte {
		return appendBulk(dst, s.action, s.cfg.IndexFor, s.cfg.DocShape, s.cfg.IDField, records, sent[k:k+1])
	})
}
